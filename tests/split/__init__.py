"""Tests of rnamotif_data.split."""
