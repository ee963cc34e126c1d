"""The four published models, and layers rebuilt from a plain-data description.

A *layer config* is a small dict (layer class, sizes, solver settings, group expression)
that is stored in every checkpoint, so a run -- including a SymSATNet-Auto run whose
group was found during training -- can be rebuilt from the file alone.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from symsatnet import CSATNet, SATNet, SymSATNet
from symsatnet.soft import SoftSymSATNet
from symsatnet.symsatnet import TRUTH_MODES
from symsatnet.groups import parse_group

from .tasks import Task

MODELS = ("satnet-plain", "satnet-300aux", "symsatnet", "symsatnet-auto", "symsatnet-soft")
# Published learning rates (docs/design.md, "Experiments and tests").
DEFAULT_LR = {"satnet-plain": 2e-3, "satnet-300aux": 2e-3, "symsatnet": 4e-2, "symsatnet-auto": 2e-3,
              "symsatnet-soft": 4e-2}
# Published numbers of auxiliary variables; --aux changes them (an extension: auxiliary
# variables let the relaxation express rules on more than two variables at a time).
DEFAULT_AUX = {"satnet-plain": 0, "satnet-300aux": 300, "symsatnet": 0, "symsatnet-auto": 0, "symsatnet-soft": 0}
#: --kernel values: a model takes those of its layers (SymSATNet-Auto those of both its
#: plain SATNet phase and its tied SymSATNet phase). Kernels change speed, not results.
KERNELS = tuple(dict.fromkeys(SymSATNet.kernels + SATNet.kernels))
MODEL_KERNELS = {
    "satnet-plain": SATNet.kernels,
    "satnet-300aux": SATNet.kernels,
    "symsatnet": SymSATNet.kernels,
    "symsatnet-auto": KERNELS,
    "symsatnet-soft": SoftSymSATNet.kernels,
}
# Epochs of plain training before SymSATNet-Auto looks for its group.
DEFAULT_AUTO_EPOCHS = {"sudoku": 10, "cube": 20}


#: How SymSATNet ties its truth row by default: measured on 9x9 Sudoku (seed 0, 3,500
#: puzzles, lr 4e-2, 40 sweeps), 'tied' (one coefficient per point orbit) leaves the
#: uniform-prediction plateau within 200 steps (board accuracy 0.41), the published
#: 'free' row (n entries, N(0, 1)) was still at 0.00 after 1,000 steps. --truth free
#: gives the published layer.
DEFAULT_TRUTH = "tied"


def initial_config(
    model: str, task: Task, max_iter: int, truth: str = DEFAULT_TRUTH, aux: int | None = None,
    group: str | None = None, soft_groups: str | None = None,
    soft_path_lr: float = 1.0,
) -> dict[str, Any]:
    """Layer config of ``model`` at the start of training (``aux`` None: the published number;
    ``group`` None: the task's symmetry group, else a group expression for SymSATNet).

    SATNet-Plain (and the plain phase of SymSATNet-Auto) is the S-form layer with
    m = n + 1 clauses and no auxiliary variables, as in the published experiments
    (``satnet.SATNet(n, n + 1, 0)``); discovery reads its C = S Sᵀ.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if truth not in TRUTH_MODES:
        raise ValueError(f"unknown truth mode {truth!r}; choose one of {', '.join(TRUTH_MODES)}")
    aux = DEFAULT_AUX[model] if aux is None else aux
    if aux < 0:
        raise ValueError(f"aux must be >= 0, got {aux}")
    settings = {"max_iter": max_iter}
    if model in ("satnet-plain", "symsatnet-auto"):
        return {"layer": "SATNet", "n": task.n, "m": task.n + 1 + aux, "aux": aux, **settings}
    if model == "satnet-300aux":
        return {"layer": "SATNet", "n": task.n, "m": 600, "aux": aux, **settings}
    if model == "symsatnet-soft":
        groups = {name: repr(group) for name, group in task.symmetry_types(soft_groups).items()}
        shared = task.shared_group(soft_groups)
        return {"layer": "SoftSymSATNet", "n": task.n, "aux": aux, "groups": groups,
                "shared": None if shared is None else repr(shared),
                "pathway_lr": soft_path_lr, **settings}
    chosen = task.group() if group is None else parse_group(group)
    if chosen.degree != task.n:
        raise ValueError(f"the group acts on {chosen.degree} points, the task has {task.n} variables")
    return {"layer": "SymSATNet", "n": task.n, "aux": aux, "group": repr(chosen), "truth": truth, **settings}


def training_memory(config: dict[str, Any]) -> int:
    """Bytes a layer of ``config`` takes in training, roughly: float32 parameters, their
    gradients and two Adam moments (the parameter block is N x m for SATNet's clauses, at
    most N x N otherwise), plus one N x N matrix C that the dense kernels form."""
    size = 1 + int(config["n"]) + int(config.get("aux", 0))
    block = size * max(size, int(config.get("m", 0)))
    return 4 * (4 * block + size * size)


def build_layer(config: dict[str, Any]) -> nn.Module:
    """A fresh layer (random parameters from the global torch RNG) for ``config``."""
    kind = config.get("layer")
    solver = {key: config[key] for key in ("max_iter", "eps", "prox_lam") if key in config}
    if "k" in config:
        solver["k"] = config["k"]
    if kind == "SATNet":
        return SATNet(config["n"], config["m"], aux=config["aux"], **solver)
    if kind == "CSATNet":
        return CSATNet(config["n"], aux=config["aux"], **solver)
    if kind == "SymSATNet":
        # Configs written before the truth option existed had the published free row.
        truth = config.get("truth", "free")
        return SymSATNet(config["n"], parse_group(config["group"]), aux=config["aux"], truth=truth, **solver)
    if kind == "SoftSymSATNet":  # the layer reads its own config (the one it saves)
        return SoftSymSATNet._from_config(config)
    raise ValueError(f"unknown layer kind {kind!r} in the model description")


def layer_config(layer: nn.Module) -> dict[str, Any]:
    """The config that rebuilds ``layer`` (same class, sizes, settings, group)."""
    config: dict[str, Any] = {
        "layer": type(layer).__name__,
        "n": layer.n,
        "aux": layer.aux,
        "max_iter": layer.max_iter,
        "eps": layer.eps,
        "prox_lam": layer.prox_lam,
        "k": layer.k,
    }
    if isinstance(layer, SATNet):
        config["m"] = layer.m
    if isinstance(layer, SymSATNet):
        config["group"] = repr(layer.group)
        config["truth"] = layer.truth_mode
    if isinstance(layer, SoftSymSATNet):
        config.update({key: value for key, value in layer._config().items() if key not in config})
    return config


def use_kernel(layer: nn.Module, kernel: str) -> str:
    """Set ``kernel`` on ``layer`` where its kind has it (``'auto'`` where not: SymSATNet-Auto's
    plain phase under ``'structured'``, its tied phase under ``'clauses'``); returns the
    kernel its next forward runs."""
    if isinstance(layer, SATNet):
        layer.kernel = kernel if kernel in SATNet.kernels else "auto"
        return layer.active_kernel
    if isinstance(layer, SymSATNet):
        layer.kernel = kernel if kernel in SymSATNet.kernels else "auto"
        return layer.active_kernel
    return "dense"


def layer_size(layer: nn.Module) -> int:
    """N = 1 + n + aux, the number of solver variables."""
    return 1 + layer.n + layer.aux


def parameter_count(layer: nn.Module) -> int:
    return sum(parameter.numel() for parameter in layer.parameters())


__all__ = ["DEFAULT_AUTO_EPOCHS", "DEFAULT_AUX", "DEFAULT_LR", "DEFAULT_TRUTH", "KERNELS", "MODEL_KERNELS", "TRUTH_MODES", "MODELS", "build_layer", "initial_config", "training_memory", "layer_config", "layer_size", "parameter_count", "use_kernel"]
