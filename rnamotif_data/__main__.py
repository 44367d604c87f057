"""``python -m rnamotif_data`` is the ``rnamotif`` command."""

from rnamotif_data.cli import main

raise SystemExit(main())
