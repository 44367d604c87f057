"""Deprecated since 0.8: the programs of 0.7 (``python -m builders.X``), now sub-commands of
the ``rnamotif`` command. Each module only forwards to its sub-command; removed in 0.9."""
