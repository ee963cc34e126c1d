"""Result types of :func:`symsatnet.discovery.discover`: every candidate weighed and the
chosen group."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from .. import groups as G

__all__ = ["Candidate", "Discovery"]


class _FittedGroup:
    """What a candidate and the chosen group read off their ``group`` and ``num_orbitals``."""

    group: G.Group
    num_orbitals: int

    @property
    def expression(self) -> str:
        return repr(self.group)

    @property
    def degree(self) -> int:
        return self.group.degree


@dataclasses.dataclass(frozen=True)
class Candidate(_FittedGroup):
    """One group that was weighed: its fit and whether it qualified."""

    group: G.Group
    num_orbitals: int
    error: float
    accepted: bool  # error <= max_err
    consistent: bool  # not rejected by the significance test
    source: str  # "symfind" or "graph"


@dataclasses.dataclass(frozen=True, eq=False)
class Discovery(_FittedGroup):
    """The result of :func:`discover`.

    Attributes:
        group: the discovered group (a :class:`symsatnet.groups.Group`).
        num_orbitals: its number of closed orbitals, the free entries of a tied matrix
            (the JSON summary also writes it as ``num_parameters``, its old name, for
            readers of older files).
        error: relative projection error ``‖M - proj_G(M)‖ / ‖M‖`` of the normalised matrix.
        orbitals: the closed orbital map of ``group``, int64 (n, n).
        candidates: every candidate weighed, best first.
        method, rtol, max_err, diagonal: the settings used.
        seconds: wall-clock time of the search.
    """

    group: G.Group
    num_orbitals: int
    error: float
    orbitals: np.ndarray
    candidates: tuple[Candidate, ...]
    method: str
    rtol: float
    max_err: float
    diagonal: str
    seconds: float

    def table(self, limit: int = 8) -> str:
        """The best ``limit`` candidates as an aligned text table."""
        rows = [("params", "error", "ok", "source", "group")]
        for candidate in self.candidates[:limit]:
            mark = "yes" if candidate.accepted and candidate.consistent else (
                "noisy" if candidate.accepted else "no")
            rows.append((str(candidate.num_orbitals), f"{candidate.error:.4f}", mark,
                         candidate.source, _shorten(candidate.expression, 90)))
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines = ["  ".join(cell.rjust(width) if column < 2 else cell.ljust(width)
                           for column, (cell, width) in enumerate(zip(row[:4], widths)))
                 + "  " + row[4] for row in rows]
        if len(self.candidates) > limit:
            lines.append(f"... and {len(self.candidates) - limit} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def summary(self, limit: int = 8) -> str:
        """Group, parameters, error, settings and the best ``limit`` candidates."""
        n = self.group.degree
        return (f"group: {self.expression}\n"
                f"parameters: {self.num_orbitals} (of {n * (n + 1) // 2} for a free "
                f"symmetric {n}x{n} matrix)\n"
                f"relative projection error: {self.error:.4g}\n"
                f"method: {self.method}, rtol={self.rtol:g}, max_err={self.max_err:g}, "
                f"diagonal={self.diagonal}, {self.seconds:.2f} s\n\n"
                f"candidates:\n{self.table(limit)}")

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """JSON-ready summary (the orbital map is left out; it is ``orbitals``)."""
        chosen = self.candidates if limit is None else self.candidates[:limit]
        return {
            "group": self.expression,
            "degree": self.group.degree,
            "num_orbitals": self.num_orbitals,
            # The key of the first JSON files, kept for the readers of those.
            "num_parameters": self.num_orbitals,
            "error": self.error,
            "order": self._order_text(),
            "method": self.method,
            "rtol": self.rtol,
            "max_err": self.max_err,
            "diagonal": self.diagonal,
            "seconds": self.seconds,
            "candidates": [
                {"group": c.expression, "num_orbitals": c.num_orbitals, "num_parameters": c.num_orbitals, "error": c.error,
                 "accepted": c.accepted, "consistent": c.consistent, "source": c.source}
                for c in chosen
            ],
        }

    def _order_text(self) -> str | None:
        # Generated groups need Schreier-Sims in sympy, which is slow for many points.
        if isinstance(self.group, G.FromGenerators) and self.group.degree > 200:
            return None
        return str(self.group.order())

    def to_json(self, limit: int | None = None) -> str:
        return json.dumps(self.to_dict(limit))


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
