"""Helpers every layer may use: command-line flags generated from frozen config
dataclasses. Imports nothing of the package but :mod:`rnamotif_data.errors`."""
