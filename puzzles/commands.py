"""What the puzzle command lines share: a one-line message and an exit status for every
error a user can cause, never a traceback."""

from __future__ import annotations

import sys
from typing import Callable, Optional

__all__ = ["describe_os_error", "run_command"]


def describe_os_error(error: OSError) -> str:
    """'PATH: reason' for a failed file operation, in one line (no errno numbers, no repr)."""
    reason = error.strerror or str(error) or type(error).__name__
    return f"{error.filename}: {reason}" if error.filename else reason


def run_command(
    action: Callable[[], Optional[int]],
    *,
    program: Optional[str] = None,
    failures: tuple[type[Exception], ...] = (),
    usage_errors: tuple[type[Exception], ...] = (),
    os_error_status: int = 1,
    out_of_memory: Optional[str] = None,
    interrupted: Optional[str] = None,
) -> int:
    """Run ``action`` and turn the errors a user can cause into a message on stderr.

    Args:
        action: the command; returns its exit status (None counts as 0).
        program: name in front of each message (``PROGRAM: error: ...``); None: no name.
        failures: errors that mean the command failed (status 1).
        usage_errors: errors that mean it was called wrongly (status 2, as in argparse);
            checked after ``failures``, so a failure may be a subclass of one of them.
        os_error_status: status of a failed file operation (``OSError``).
        out_of_memory: the advice printed on ``MemoryError`` (status 1); None lets it rise.
        interrupted: the message printed on Ctrl-C (status 130); None lets it rise.

    Returns:
        The exit status.
    """
    prefix = f"{program}: " if program else ""

    def report(message: str, status: int) -> int:
        print(prefix + message, file=sys.stderr)
        return status

    try:
        status = action()
    except failures as error:
        return report(f"error: {error}", 1)
    except usage_errors as error:
        return report(f"error: {error}", 2)
    except OSError as error:
        return report(f"error: {describe_os_error(error)}", os_error_status)
    except MemoryError:
        if out_of_memory is None:
            raise
        return report(f"error: {out_of_memory}", 1)
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        return report(interrupted, 130)
    return 0 if status is None else status
