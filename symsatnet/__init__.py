"""symsatnet: differentiable MAXSAT layers (SATNet) with parameters tied by symmetry.

Importing the package loads the compiled custom ops (``symsatnet._C``); if they are
not built, the ImportError says how to build them.
"""

from . import ops  # noqa: F401  (loads the extension and registers autograd)
from . import functional
from .functional import MixInfo
from .layers import MixingLayer, SATNet

__version__ = "0.1.0"

__all__ = ["functional", "MixInfo", "MixingLayer", "SATNet", "__version__"]
