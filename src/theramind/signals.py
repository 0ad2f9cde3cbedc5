"""Signals on long work: log records that say what is being loaded or done, as it starts.

Library code logs them at INFO with `extra=SIGNAL`; the command line shows them even when it
is not verbose, and Python callers see them through `logging` like any other record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

SIGNAL: Mapping[str, object] = {"signal": True}
"""Pass as `extra=` to mark a log record as a signal on long work."""


def is_signal(record: logging.LogRecord) -> bool:
    """Whether a log record was marked with `SIGNAL`."""
    return bool(getattr(record, "signal", False))
