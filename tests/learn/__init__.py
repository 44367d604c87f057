"""Tests of rnamotif_data.learn."""
