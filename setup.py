"""Build script: the symsatnet._C custom-op extension (CPU always, CUDA when the
installed torch has CUDA and nvcc is present) and the Cython puzzle solvers.

Build in place against the installed torch with
    pip install --no-build-isolation -e .
"""

import glob
import os
import sys

from setuptools import Extension, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _rel(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def torch_extensions():
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    sources = _rel("csrc/*.cpp") + _rel("csrc/cpu/*.cpp")
    # -O3 lets gcc vectorise the fixed-width inner loops; the AVX2/AVX-512 variants
    # are chosen at run time (csrc/cpu/simd.h), so the build stays portable.
    # -fopenmp: at::parallel_for (the kernels' split of the batch over threads) is an
    # OpenMP pragma in ATen's headers, so without it every kernel ran on one thread
    # whatever torch.set_num_threads said. The library it links, libgomp.so.1, is the
    # one torch has already loaded (same soname), so there is one thread pool.
    cxx_flags = ["-O3", "-std=c++20", "-fno-math-errno", "-ffp-contract=fast", "-fopenmp", "-Wall", "-Wno-unknown-pragmas", "-Wno-psabi"]
    link_flags = ["-fopenmp"]
    want_cuda = os.environ.get("SYMSATNET_CUDA", "auto")
    with_cuda = (
        want_cuda != "0"
        and torch.version.cuda is not None
        and CUDA_HOME is not None
        and bool(_rel("csrc/cuda/*.cu"))
    )
    if want_cuda == "1" and not with_cuda:
        sys.exit("SYMSATNET_CUDA=1 but the installed torch has no CUDA or nvcc was not found")
    if with_cuda:
        sources += _rel("csrc/cuda/*.cu")
        # No hard-coded architecture list: torch's TORCH_CUDA_ARCH_LIST (or the visible
        # GPUs) decides, as cpp_extension does by default.
        ext = CUDAExtension(
            "symsatnet._C",
            sources,
            include_dirs=[os.path.join(ROOT, "csrc")],
            define_macros=[("SYMSATNET_WITH_CUDA", "1")],
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-std=c++20"]},
            extra_link_args=link_flags,
        )
    else:
        ext = CppExtension(
            "symsatnet._C",
            sources,
            include_dirs=[os.path.join(ROOT, "csrc")],
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=link_flags,
        )
    return [ext]


def cython_extensions():
    pyx = _rel("puzzles/**/*.pyx")
    if not pyx:
        return []
    from Cython.Build import cythonize

    exts = [
        Extension(
            os.path.splitext(p)[0].replace(os.sep, "."),
            [p],
            extra_compile_args=["-O3"],
        )
        for p in pyx
    ]
    return cythonize(exts, language_level=3, quiet=True)


def main():
    from torch.utils.cpp_extension import BuildExtension

    # The Makefile installs the package (dependencies, console scripts) with
    # SYMSATNET_SKIP_EXT=1 and then compiles once with `build_ext --inplace`, so the
    # objects stay in build/ and later rebuilds are incremental.
    skip = os.environ.get("SYMSATNET_SKIP_EXT") == "1"
    setup(
        ext_modules=[] if skip else torch_extensions() + cython_extensions(),
        cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    )


if __name__ == "__main__":
    main()
