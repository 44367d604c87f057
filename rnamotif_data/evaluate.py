"""Deprecated since 0.8: ``python -m rnamotif_data.evaluate`` runs ``rnamotif evaluate``; removed in 0.9."""

if __name__ == "__main__":
    from rnamotif_data.cli import deprecated_module

    raise SystemExit(deprecated_module("rnamotif_data.evaluate"))
