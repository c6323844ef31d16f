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


EXIT_OK = 0
EXIT_MISMATCH = 1  # a hardware output or decision differs from the software's
EXIT_BAD_INPUT = 2  # bad input: a file, an option, a model the flow does not take
EXIT_TOOL = 3  # a tool failed or is missing, a design does not fit or misses timing
EXIT_INTERNAL = 4  # a bug in qnnflow: the message names where, the traceback is in a log
EXIT_INTERRUPTED = 130
