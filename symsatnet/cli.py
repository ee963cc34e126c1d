"""The ``symsatnet`` command line.

    symsatnet discover INPUT [--method auto|symfind|graph|both] [--rtol R] [--max-err E]
                             [--n N] [--full] [--key KEY] [--ignore-diagonal]
                             [--json] [--orbitals OUT.npy] [--max-degree N]

``discover`` finds a permutation group under which a matrix is nearly invariant
(:func:`symsatnet.discovery.discover`) and prints its expression, number of parameters,
projection error and the best candidates. INPUT is one of

* a ``.npy`` file with a square matrix, analysed as it is (with ``--full`` or ``--n`` it is
  taken to be a layer's full matrix, see below);
* a torch file (``.pt``, ``.pth``, ``.ckpt``) with a tensor or a state dict of a C-form layer
  (``CSATNet``'s ``weight``), possibly nested under ``state_dict``, ``model`` or
``model_state`` (a ``puzzles.train`` checkpoint). The matrix
  is the entry named ``C``, ``weight`` or ``matrix`` (or ending in ``.C``, ``.weight``,
  ``.matrix``) that is square; an S-form ``S`` (N x m) gives C = S Sᵀ, whose diagonal is
  then ignored (``--ignore-diagonal`` implied). ``--key`` picks an
  entry by its exact name. It is a full matrix: row and column 0 are the truth variable,
  1..n the problem variables, the rest auxiliaries, so rows/columns 1..n are analysed;
  ``--n`` says n when there are auxiliary variables (default: all but the truth row).

Exit status: 0 on success, 1 for input that cannot be used (unreadable, not square,
non-finite, ...), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import numpy as np

from . import discovery
from .files import write_atomically

_TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")
_MATRIX_NAMES = ("C", "weight", "matrix")


class InputError(Exception):
    """Input that exists but cannot be analysed; reported with exit status 1."""


def _load_torch(path: str, key: str | None) -> tuple[np.ndarray, bool]:
    """The matrix of a torch file, and whether it is C = S Sᵀ of an S-form layer."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        if "weights_only" in str(error) or "Weights only" in str(error):
            # torch's message advises weights_only=False, which would run any code in the file.
            reason = "it holds Python objects besides tensors and plain data; they are not loaded, for safety"
        else:
            reason = " ".join(str(error).split())[:160]
        raise InputError(f"cannot read {path} as a torch file: {reason}") from None
    if isinstance(payload, torch.Tensor):
        return payload.detach().to(torch.float64).numpy(), False
    if not isinstance(payload, dict):
        raise InputError(f"{path} holds a {type(payload).__name__}, not a tensor or a state dict")
    # "model_state" is where puzzles.train checkpoints keep the layer's state dict.
    for nested in ("state_dict", "model", "model_state_dict", "model_state"):
        if key is None and isinstance(payload.get(nested), dict):
            payload = payload[nested]
            break
    tensors = {name: value for name, value in payload.items() if isinstance(value, torch.Tensor)}
    if key is not None:
        if key not in tensors:
            raise InputError(f"{path} has no tensor named {key!r}; it has: {', '.join(tensors) or 'none'}")
        return _as_square(tensors[key].detach().to(torch.float64).numpy(), key), False
    found = [name for name in tensors
             if name.rsplit(".", 1)[-1] in _MATRIX_NAMES and tensors[name].ndim == 2
             and tensors[name].shape[0] == tensors[name].shape[1]]
    if len(found) > 1:
        raise InputError(f"{path} has several matrices ({', '.join(found)}); choose one with --key")
    if found:
        return tensors[found[0]].detach().to(torch.float64).numpy(), False
    clause_keys = [name for name in tensors if name.rsplit(".", 1)[-1] == "S" and tensors[name].ndim == 2]
    if len(clause_keys) == 1:
        clauses = tensors[clause_keys[0]].detach().to(torch.float64).numpy()
        return clauses @ clauses.T, True
    raise InputError(
        f"{path} holds no interaction matrix: expected a square tensor named "
        f"{', '.join(_MATRIX_NAMES)} or an S-form 'S'; it has: {', '.join(tensors) or 'no tensors'}")


def _load_npy(path: str) -> np.ndarray:
    """The array of a .npy file; InputError naming what the file is when it is not one."""
    with open(path, "rb") as stream:
        head = stream.read(6)
    if not head.startswith(b"\x93NUMPY"):
        if head.startswith(b"PK"):
            kind = "it is a .npz archive or another zip file"
        elif head.isascii() and all(character.isprintable() or character.isspace() for character in head.decode()):
            kind = "it is a text file"
        else:
            kind = "it does not start with \\x93NUMPY"
        raise InputError(f"cannot read {path} as a .npy array: {kind}; save the matrix with numpy.save")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error):  # numpy's message advises allow_pickle, which runs code
            raise InputError(f"cannot read {path} as a .npy array: it holds Python objects, "
                             f"which are not loaded, for safety") from None
        raise InputError(f"cannot read {path} as a .npy array: {error}") from None
    except Exception as error:
        raise InputError(f"cannot read {path} as a .npy array: {error}") from None


def _as_square(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise InputError(f"{what} is not a square matrix (shape {tuple(array.shape)})")
    return array


def load_matrix(
    path: str, n: int | None = None, full: bool | None = None, key: str | None = None
) -> tuple[np.ndarray, bool]:
    """The matrix to analyse from INPUT, as the ``discover`` command reads it (module docs),
    and whether it came from an S-form layer's clause matrix (C = S Sᵀ)."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    suffix = os.path.splitext(path)[1].lower()
    from_clauses = False
    if suffix == ".npy":
        matrix = _load_npy(path)
        full = bool(full) or n is not None
    elif suffix in _TORCH_SUFFIXES:
        matrix, from_clauses = _load_torch(path, key)
        full = True if full is None else full
    else:
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; use .npy or .pt")
    if not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise InputError(f"{path} does not hold a real numeric matrix (dtype {matrix.dtype})")
    matrix = _as_square(np.asarray(matrix, dtype=np.float64), path)
    if full:
        size = matrix.shape[0]
        problem = size - 1 if n is None else n
        if problem < 1 or 1 + problem > size:
            raise InputError(f"--n {problem} does not fit a {size}x{size} matrix (truth row + n + aux)")
        matrix = matrix[1 : 1 + problem, 1 : 1 + problem]
    return matrix, from_clauses


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symsatnet", description="SymSATNet command line tools.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    find = commands.add_parser(
        "discover", help="find the symmetry group of a (learned) matrix",
        description="Find a large permutation group under which a square matrix is nearly invariant.",
        epilog="INPUT: a .npy matrix (analysed as is) or a torch file with a C-form layer's full "
               "matrix or state dict (rows/columns 1..n are analysed). Exit status 1 for unusable input.")
    find.add_argument("input", metavar="INPUT", help=".npy matrix or .pt checkpoint / tensor")
    find.add_argument("--method", choices=discovery.METHODS, default="auto",
                      help="auto (default): symfind, and graph as well on small matrices or when "
                           "symfind finds nothing; "
                           "symfind: natural index order, structured expression; "
                           "graph: any order, needs pynauty; both")
    find.add_argument("--rtol", type=_positive_float, default=discovery.DEFAULT_RTOL,
                      help=f"tolerance of the structural tests (default {discovery.DEFAULT_RTOL})")
    find.add_argument("--max-err", type=_positive_float, default=discovery.DEFAULT_MAX_ERR,
                      help=f"largest relative projection error accepted (default {discovery.DEFAULT_MAX_ERR})")
    find.add_argument("--n", type=_positive_int, default=None,
                      help="number of problem variables of a full matrix with auxiliary rows")
    find.add_argument("--full", action="store_true", default=None,
                      help="INPUT .npy is a full layer matrix: drop the truth row 0 (and aux rows)")
    find.add_argument("--key", default=None, help="name of the matrix entry in a state dict")
    find.add_argument("--ignore-diagonal", action="store_true",
                      help="set C_ii to zero first (the layer never reads it; use when it is random; "
                           "always done for an S-form layer's C = S S^T)")
    find.add_argument("--json", action="store_true", help="print the result as JSON")
    find.add_argument("--orbitals", metavar="OUT.npy", default=None,
                      help="write the closed orbital map (int64 n x n) of the group found to exactly this "
                           "path (a new file)")
    find.add_argument("--force", action="store_true", help="replace an existing --orbitals file")
    find.add_argument("--limit", type=_positive_int, default=8, help="candidates to show (default 8)")
    find.add_argument("--max-degree", type=_positive_int, default=discovery.DISCOVER_MAX_DEGREE,
                      help="largest matrix searched; larger ones are refused at once (default "
                           f"{discovery.DISCOVER_MAX_DEGREE}; the time grows about as n^2.5)")
    return parser


def _check_output(path: str, force: bool) -> None:
    """Refuse to replace a file (the input matrix, a checkpoint) unless --force."""
    if os.path.isdir(path):
        raise InputError(f"--orbitals {path} is a folder, not a file name")
    if os.path.exists(path) and not force:
        raise InputError(f"--orbitals {path} already exists; use --force to replace it, or choose another name")


def _discover(args: argparse.Namespace) -> int:
    if args.orbitals:  # before the search, which can take long
        _check_output(args.orbitals, args.force)
    matrix, from_clauses = load_matrix(args.input, n=args.n, full=args.full, key=args.key)
    # The diagonal of S Sᵀ holds |s_i|², which the solver never reads: it would only
    # dilute the comparison, so it is ignored for clause matrices.
    diagonal = "ignore" if args.ignore_diagonal or from_clauses else "include"
    try:
        result = discovery.discover(matrix, rtol=args.rtol, max_err=args.max_err, method=args.method,
                                    diagonal=diagonal, max_degree=args.max_degree)
    except ValueError as error:
        raise InputError(f"{args.input}: {error}") from None
    if args.orbitals:
        try:
            # np.save would add ".npy" to a name given as a string; the stream keeps it exact.
            write_atomically(args.orbitals, lambda stream: np.save(stream, result.orbitals), make_folder=False)
        except OSError as error:
            raise InputError(f"cannot write {args.orbitals}: {error.strerror or error}") from None
    if args.json:
        summary = result.to_dict(limit=args.limit)
        summary["input"] = args.input
        summary["orbitals_file"] = args.orbitals
        print(json.dumps(summary, indent=2))
    else:
        print(result.summary(args.limit))
        if args.orbitals:
            print(f"\nclosed orbital map written to {args.orbitals}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``symsatnet`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on usage errors
    try:
        if args.command == "discover":
            return _discover(args)
    except InputError as error:
        print(f"symsatnet {args.command}: error: {error}", file=sys.stderr)
        return 1
    except ImportError as error:  # an optional dependency, e.g. pynauty for --method graph
        print(f"symsatnet {args.command}: error: {error}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
