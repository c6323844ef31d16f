"""Errors shared by every stage.

Bad user input raises ``ValueError`` / ``TypeError`` (or ``FileNotFoundError`` for a missing data
file) with a message that says what must hold and what was found. Failures of the flow itself
(a tool that is missing or failed, a stage that is not available) raise a ``FlowError``, which
carries the path of the log to read when there is one.
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


class NotAvailableError(FlowError):
    """A stage that this version of qnnflow does not provide yet."""
