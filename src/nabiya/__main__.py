"""``python -m nabiya``: the same as the ``nabiya`` command."""

from nabiya.cli import main

raise SystemExit(main())
