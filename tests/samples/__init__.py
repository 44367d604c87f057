"""Tests of rnamotif_data.samples."""
