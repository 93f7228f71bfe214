"""``python -m pytest_otel_overhead list | compare | report | merge | calibrate``: see the ``cli`` module."""

import sys

from pytest_otel_overhead.cli import main

sys.exit(main())
