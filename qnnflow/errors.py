"""Errors shared by every stage.

Bad user input raises ``ValueError`` / ``TypeError`` (or ``FileNotFoundError`` for a missing data
file) with a message that says what must hold and what was found. Failures of the flow itself
(a tool that is missing or failed, a design that does not fit or meet timing) raise a
``FlowError``, which carries the path of the log to read when there is one; a hardware decision
that differs from the software's is a ``MismatchError``. Anything else is a bug in qnnflow.

The command line exits with one status per kind (:data:`EXIT_CODES`, documented in the README).
"""

from __future__ import annotations

from pathlib import Path


class FlowError(RuntimeError):
    """A stage of the flow could not complete. ``log`` names the file with the details, if any."""

    def __init__(self, message: str, log: Path | str | None = None):
        self.log = Path(log) if log is not None else None
        super().__init__(message if self.log is None else f"{message} (log: {self.log})")


class ToolError(FlowError):
    """A required external tool is missing, too old, or failed."""


class MismatchError(FlowError):
    """The hardware (or a compiled graph) decided differently from the software it must equal."""


# the package's own source folders: an error raised from code here is one of its deliberate messages
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
OWN_SOURCES = tuple(str(PACKAGE_ROOT / layer) for layer in ("qnnflow", "flows", "sim", "models", "hw"))


def raised_by_qnnflow(err: BaseException) -> bool:
    """True when ``err`` is one of qnnflow's own messages for the user: raised by a ``raise``
    statement in the package's code. The same exception type raised by Python itself (a bug's
    ``float(None)``) or inside a library that qnnflow should have guarded is an internal error."""
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    return last.filename.startswith(OWN_SOURCES) and (last.line or "").lstrip().startswith("raise")


EXIT_OK = 0
EXIT_MISMATCH = 1  # a hardware output or decision differs from the software's
EXIT_BAD_INPUT = 2  # bad input: a file, an option, a model the flow does not take
EXIT_TOOL = 3  # a tool failed or is missing, a design does not fit or misses timing
EXIT_INTERNAL = 4  # a bug in qnnflow: the message names where, the traceback is in a log
EXIT_INTERRUPTED = 130
