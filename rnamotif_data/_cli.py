"""Minimal CLI runner for the library's own entry points (train, evaluate): logging set
up, known errors as one line without traceback (exit 1)."""

from __future__ import annotations

import logging
import sys

from .errors import RNAMotifError


def run(main, argv=None) -> int:
    """Run ``main(argv)``; return its exit status, 1 on a known error, 130 on Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        return main(argv)
    except (RNAMotifError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
