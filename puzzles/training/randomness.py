"""Where the solver's randomness comes from during training and evaluation.

A mixing layer draws, per forward, a (B, N, k) block of Gaussian starting vectors from
its ``.generator`` (and, with ``order="random"``, an update order after them). To make a
run reproducible, resumable and independent of how a batch is split across ranks:

* every batch gets its own generator seeded from (seed, stream, epoch, step), so no state
  has to be carried between batches or saved in checkpoints;
* the update order is drawn from that generator first and set explicitly on the layer
  (``layer.order = permutation``), so every rank uses the single process's order;
* a rank holding examples ``offset..offset+b`` of the batch first draws (and discards) the
  starting vectors of the ``offset`` examples before it, then lets the layer draw its own.
  A CPU generator's ``randn(B, N, k)`` is the concatenation of consecutive per-example
  draws (checked by :func:`check_stream_splits`, which distributed runs call at start-up),
  so each example gets exactly the vectors it gets in a single-process run.

Skipping costs at most the Gaussian draws of one batch, negligible next to the solve. (The
alternative -- one generator per example -- would need the layer to accept per-example
generators, or a forward per example; the first is a library change, the second is slow.)
"""

from __future__ import annotations

import numpy as np
import torch

from .models import layer_size

TRAIN_STREAM, EVAL_STREAM = 1, 2


def batch_generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded from a tuple of non-negative ints."""
    seed = int(np.random.SeedSequence([int(part) for part in parts]).generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(seed >> 1)


def prepare_solver(layer: torch.nn.Module, parts: tuple[int, ...], offset: int) -> None:
    """Seed ``layer`` for the batch named by ``parts``, as seen by a shard starting at ``offset``."""
    generator = batch_generator(*parts)
    size = layer_size(layer)
    layer.order = torch.randperm(size, generator=generator)
    if offset:
        dtype = next(layer.parameters()).dtype
        torch.randn(offset, size, layer.k, generator=generator, dtype=dtype)
    layer.generator = generator


def check_stream_splits(size: int, k: int, dtype: torch.dtype = torch.float32) -> bool:
    """Whether randn(B, N, k) equals consecutive smaller draws on this torch build.

    True for N*k a multiple of 16 (any N at k = 32): the CPU sampler fills uniforms in
    order and transforms them in blocks of 16; a ragged tail is redrawn, which breaks it.
    """
    whole = torch.randn(3, size, k, generator=torch.Generator().manual_seed(5), dtype=dtype)
    generator = torch.Generator().manual_seed(5)
    parts = [torch.randn(1, size, k, generator=generator, dtype=dtype), torch.randn(2, size, k, generator=generator, dtype=dtype)]
    return torch.equal(whole, torch.cat(parts))


def shard(indices: np.ndarray, rank: int, world: int) -> tuple[np.ndarray, int]:
    """This rank's contiguous part of a batch and the position where it starts."""
    bounds = np.linspace(0, len(indices), world + 1).round().astype(int)
    # np.linspace gives near-equal parts; a rank with nothing gets an empty slice.
    start, stop = bounds[rank], bounds[rank + 1]
    return indices[start:stop], int(start)
