"""``python -m wsx``: the ``wsx`` command (see :mod:`wsx.tools.cli`)."""

from __future__ import annotations

import sys

from .tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
