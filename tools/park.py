"""Keep the resumable state of long training runs in git, across working sessions.

``runs/`` is ignored by git and a new checkout starts without it, so a run that needs more
than one session is *parked*: the files ``puzzles.train --resume`` needs are copied to
``docs/results/parked/NAME`` (to be committed) and *unparked* into ``runs/NAME`` on the next
checkout. The repository refuses files over 5 MB, and a SATNet checkpoint with its Adam
moments is larger (7.4 MB for the 9x9 SATNet-300aux), so a file over ``--part-bytes`` is
stored as numbered parts; ``manifest.json`` records every file's size and SHA-256, and
unparking verifies them before the run folder appears, so a resumed run starts from exactly
the parked bytes or not at all.

Only the standard library is used, so ``make park`` works before any virtual environment::

    python tools/park.py park 9x9-satnet-300aux 9x9-satnet-plain
    python tools/park.py unpark
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

RUN_FILES = ("checkpoint.pt", "settings.json", "data.npz", "log.csv", "log.jsonl", "run.log")
MANIFEST = "manifest.json"
PART_BYTES = 4 * 1024 * 1024  # below the repository's 5 MB limit per file


class ParkError(Exception):
    """A run that cannot be parked or unparked; the message says why."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _part_name(name: str, index: int) -> str:
    return f"{name}.part{index:03d}"


def park_run(run: Path, target: Path, part_bytes: int = PART_BYTES) -> dict:
    """Copy the resumable files of ``run`` to ``target`` (replaced as a whole); returns the manifest."""
    if part_bytes < 1:
        raise ParkError(f"part size must be positive, got {part_bytes}")
    if not (run / "checkpoint.pt").is_file():
        raise ParkError(f"{run} has no checkpoint.pt")
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    manifest = {}
    for name in RUN_FILES:
        source = run / name
        if not source.is_file():
            continue
        data = source.read_bytes()
        if len(data) <= part_bytes:
            (staging / name).write_bytes(data)
            parts = 0
        else:
            chunks = [data[i : i + part_bytes] for i in range(0, len(data), part_bytes)]
            for index, chunk in enumerate(chunks):
                (staging / _part_name(name, index)).write_bytes(chunk)
            parts = len(chunks)
        manifest[name] = {"bytes": len(data), "sha256": _sha256(data), "parts": parts}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return manifest


def _read_parked(folder: Path, name: str, entry: dict) -> bytes:
    if entry["parts"] == 0:
        path = folder / name
        if not path.is_file():
            raise ParkError(f"{path} is missing")
        data = path.read_bytes()
    else:
        chunks = []
        for index in range(entry["parts"]):
            path = folder / _part_name(name, index)
            if not path.is_file():
                raise ParkError(f"{path} is missing (part {index + 1} of {entry['parts']})")
            chunks.append(path.read_bytes())
        data = b"".join(chunks)
    if len(data) != entry["bytes"] or _sha256(data) != entry["sha256"]:
        raise ParkError(
            f"{folder / name}: {len(data)} bytes that do not match the manifest "
            f"({entry['bytes']} bytes, sha256 {entry['sha256'][:12]}...); the parked copy is damaged"
        )
    return data


def unpark_run(folder: Path, run: Path) -> None:
    """Rebuild ``run`` from the parked ``folder``, verifying every file before ``run`` appears."""
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError as error:
            raise ParkError(f"{manifest_path} is not valid JSON ({error})") from None
        contents = {name: _read_parked(folder, name, entry) for name, entry in manifest.items()}
    else:  # parked before manifests existed: plain copies
        contents = {p.name: p.read_bytes() for p in folder.iterdir() if p.name in RUN_FILES}
    if "checkpoint.pt" not in contents:
        raise ParkError(f"{folder} holds no checkpoint.pt")
    staging = run.with_name(run.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, data in contents.items():
        (staging / name).write_bytes(data)
    staging.rename(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="park", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders (default runs)")
    parser.add_argument(
        "--parked", type=Path, default=Path("docs/results/parked"), help="where parked runs live (default docs/results/parked)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    park = commands.add_parser("park", help="copy runs/NAME... to the parked folder")
    park.add_argument("names", nargs="+", metavar="NAME")
    park.add_argument("--part-bytes", type=int, default=PART_BYTES, help="largest stored file (default 4 MiB)")
    commands.add_parser("unpark", help="restore every parked run that runs/ does not have")
    args = parser.parse_args(argv)
    try:
        if args.command == "park":
            for name in args.names:
                manifest = park_run(args.runs / name, args.parked / name, args.part_bytes)
                split = [f"{n} in {e['parts']} parts" for n, e in manifest.items() if e["parts"]]
                print(f"parked {args.runs / name} in {args.parked / name}" + (f" ({', '.join(split)})" if split else ""))
        else:
            folders = sorted(p for p in args.parked.glob("*") if p.is_dir() and not p.name.endswith(".tmp"))
            if not folders:
                print(f"nothing parked in {args.parked}")
            for folder in folders:
                run = args.runs / folder.name
                if run.exists():
                    print(f"{run} exists: left as it is")
                    continue
                unpark_run(folder, run)
                print(f"unparked {run} (continue it with puzzles.train ... --out {run} --resume)")
    except ParkError as error:
        print(f"park: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
