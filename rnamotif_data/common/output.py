"""The programs' own output: reports, summaries and tables a command prints for its user.

Programs write it to :data:`REPORT`, the logger ``rnamotif_data.output``, never with
``print``: it goes to standard output as plain lines (whatever ``sys.stdout`` is when the
line is written, so captured and redirected output both work), and not to the diagnostic
log on standard error. A caller that wants it elsewhere replaces the handler.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["REPORT", "StdoutHandler"]


class StdoutHandler(logging.StreamHandler):
    """A handler that writes each record as a plain line to the current ``sys.stdout``."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        """``sys.stdout`` at the time of writing."""
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # the base class sets it once; the current stdout wins
        pass


#: the logger of program output (``REPORT.info(text)``)
REPORT = logging.getLogger("rnamotif_data.output")
if not any(isinstance(h, StdoutHandler) for h in REPORT.handlers):
    REPORT.addHandler(StdoutHandler())
REPORT.setLevel(logging.INFO)
REPORT.propagate = False
