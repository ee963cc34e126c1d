"""symsatnet: differentiable MAXSAT layers (SATNet) with parameters tied by symmetry.

Importing the package loads the compiled custom ops (``symsatnet._C``); if they are
not built, the ImportError says how to build them.
"""

from . import ops  # noqa: F401  (loads the extension and registers autograd)
from . import cube_moves, functional, groups, structured
from .discovery import Discovery, discover
from .invariant import Equivariant, InvariantSpace
from .functional import MixInfo
from .groups import (
    Cyclic,
    DirectSum,
    Extend,
    FromGenerators,
    Product,
    Symmetric,
    Trivial,
    Wreath,
    cube_group,
    parse_group,
    sudoku_group,
)
from .layers import CSATNet, MixingLayer, SATNet
from .symsatnet import SymSATNet

__version__ = "0.1.0"

__all__ = [
    "CSATNet",
    "Cyclic",
    "DirectSum",
    "Discovery",
    "Equivariant",
    "Extend",
    "FromGenerators",
    "InvariantSpace",
    "MixInfo",
    "MixingLayer",
    "Product",
    "SATNet",
    "SymSATNet",
    "Symmetric",
    "Trivial",
    "Wreath",
    "cube_group",
    "cube_moves",
    "discover",
    "functional",
    "groups",
    "parse_group",
    "structured",
    "sudoku_group",
    "__version__",
]
