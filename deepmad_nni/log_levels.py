"""``loggers_at``: named loggers held at a level for the duration of a block, then restored."""
from __future__ import annotations

import contextlib
import logging


@contextlib.contextmanager
def loggers_at(names, level: int):
    """Set each logger in ``names`` to ``level`` inside the block; restore their own levels after it."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, levels):
            lg.setLevel(old)
