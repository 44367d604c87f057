"""Deprecated since 0.8: ``python -m builders.export`` runs ``rnamotif export``; removed in 0.9."""

if __name__ == "__main__":
    from rnamotif_data.cli import deprecated_module

    raise SystemExit(deprecated_module("builders.export"))
