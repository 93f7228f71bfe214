"""``python -m pytest_otel_overhead list | compare A B | report RUN``: see :mod:`pytest_otel_overhead.cli`."""

import sys

from pytest_otel_overhead.cli import main

sys.exit(main())
