"""Old home of :class:`~symsatnet.layers.CSATNet` and :class:`~symsatnet.symsatnet.SymSATNet`,
kept so that existing imports (``from symsatnet.symmetric import SymSATNet, KERNELS,
TRUTH_MODES``) go on working; new code imports from :mod:`symsatnet`."""

from .layers import CSATNet
from .symsatnet import TRUTH_MODES, SymSATNet

#: The kernels of :class:`SymSATNet` (``SymSATNet.kernels``).
KERNELS = SymSATNet.kernels

__all__ = ["CSATNet", "SymSATNet", "KERNELS", "TRUTH_MODES"]
