"""SymSATNet-Auto: after the plain epochs, find the learned matrix's symmetry and continue tied."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import numpy as np

from symsatnet import SymSATNet

from .data import Splits

if TYPE_CHECKING:
    from .loop import Run, RunState


def discover_and_tie(run: "Run", state: "RunState", splits: Splits) -> None:
    """SymSATNet-Auto: find the group of the plain layer's C and continue with it tied."""
    from symsatnet.discovery import closed_orbitals, discover

    settings, n = run.settings, run.task.n
    C = state.layer.matrix().detach().cpu().double()
    problem_block = C[1 : n + 1, 1 : n + 1].numpy()
    if run.dist.main:
        # The searched matrix, kept so discovery can be rerun with other settings
        # (`symsatnet discover DIR/plain_matrix.npy`) after the plain layer is gone.
        temporary = run.dir / ".plain_matrix.npy.partial"
        with open(temporary, "wb") as stream:
            np.save(stream, problem_block)
        os.replace(temporary, run.dir / "plain_matrix.npy")
    run.log(f"epoch {state.epoch}: looking for the symmetry of the learned {n}x{n} matrix "
            f"({settings.discover_method}, rtol={settings.discover_rtol}, max_err={settings.discover_max_err})")
    found = discover(problem_block, rtol=settings.discover_rtol,
                     max_err=settings.discover_max_err, method=settings.discover_method, diagonal="ignore")
    run.log(f"found {found.expression} with {found.num_orbitals} parameters, "
            f"relative projection error {found.error:.4f} ({found.seconds:.1f} s)")
    candidates, partitions = [], set()
    for candidate in found.candidates:  # qualifying groups, best first, one per orbital partition
        key = closed_orbitals(candidate.group).tobytes()
        if candidate.accepted and candidate.consistent and key not in partitions:
            partitions.add(key)
            candidates.append(candidate)
    candidates = candidates[: settings.auto_candidates]
    solver = dict(max_iter=state.layer.max_iter, eps=state.layer.eps, prox_lam=state.layer.prox_lam, k=state.layer.k)
    weighed = []
    for candidate in candidates:
        tied = SymSATNet.from_matrix(C.float(), candidate.group, truth=settings.truth, **solver).to(run.device)
        accuracy = None
        if len(candidates) > 1 and splits.val is not None:
            accuracy = run.evaluate_layer(tied, splits.val, "val")["val_board_acc"]
            run.log(f"  candidate {candidate.expression} ({candidate.num_orbitals} parameters): "
                    f"validation board accuracy {accuracy:.4f}")
        weighed.append((candidate, tied, accuracy))
    chosen = choose_candidate(weighed, settings.auto_tolerance)
    candidate, tied, accuracy = chosen
    # A group that ties nothing (Trivial, or products of Trivial) would only swap the
    # S-form plain layer for a C-form one with the same C, which trains differently:
    # measured on the cube (epoch 20 plain, test board 0.174), the C-form continuation
    # fell to 0.10 at once and was at 0.11 after 80 more epochs. Keep the plain layer.
    untied = candidate.group.num_orbitals >= n * (n + 1) // 2
    state.discovery = {
        "epoch": state.epoch,
        "group": candidate.expression,
        "num_parameters": candidate.num_orbitals,
        "error": candidate.error,
        "validation_board_acc": accuracy,
        "kept_plain_layer": untied,
        "search": found.to_dict(limit=10),
        "candidates": [{"group": c.expression, "num_parameters": c.num_orbitals, "error": c.error,
                        "validation_board_acc": a} for c, _, a in weighed],
    }
    if run.dist.main:
        (run.dir / "discovery.json").write_text(json.dumps(state.discovery, indent=2) + "\n")
    if untied:
        run.log(f"{candidate.expression} ties no entries (no symmetry within max_err "
                f"{settings.discover_max_err}): continuing with the plain layer from epoch {state.epoch + 1}")
        state.phase = "untied"
        return
    run.log(f"continuing with SymSATNet({candidate.expression}), {candidate.num_orbitals} orbital "
            f"coefficients, from epoch {state.epoch + 1}")
    run.apply_kernel(tied)
    state.layer = tied
    state.optimizer = run.new_optimizer(tied)
    state.phase = "symmetric"


def choose_candidate(weighed: list, tolerance: float):
    """The largest group (fewest parameters) whose validation accuracy is within tolerance of the best."""
    scored = [entry for entry in weighed if entry[2] is not None]
    if not scored:
        return weighed[0]
    best = max(entry[2] for entry in scored)
    return min((entry for entry in scored if entry[2] >= best - tolerance), key=lambda entry: entry[0].num_orbitals)
