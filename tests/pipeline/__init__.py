"""Tests of rnamotif_data.pipeline."""
