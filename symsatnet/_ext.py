"""Loads the compiled custom-op library, or explains how to build it."""

import importlib

_BUILD_HINT = (
    "the compiled extension symsatnet._C is missing or does not load ({error}).\n"
    "Build it in place against the installed torch:\n"
    "    pip install --no-build-isolation -e .      (or: make build)\n"
    "from the repository root. A C++17 compiler is needed; nvcc too for the CUDA kernels."
)


def load():
    """Import symsatnet._C, which registers the symsatnet:: ops with the dispatcher."""
    try:
        return importlib.import_module("symsatnet._C")
    except ImportError as error:
        raise ImportError(_BUILD_HINT.format(error=error)) from None


def has_cuda() -> bool:
    """Whether the loaded library was built with the CUDA kernels."""
    import torch

    return torch._C._dispatch_has_kernel_for_dispatch_key("symsatnet::mix_forward", "CUDA")
