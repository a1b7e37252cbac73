"""``python -m disruptor``: the same as the ``disruptor`` command."""

from .cli import main

raise SystemExit(main())
