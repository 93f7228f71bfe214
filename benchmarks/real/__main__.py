"""``python -m benchmarks.real``: see ``benchmarks/real/cli.py``."""

from benchmarks.real.cli import main

raise SystemExit(main())
