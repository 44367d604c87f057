"""Tests of rnamotif_data.release."""
