"""Tests of rnamotif_data.build."""
