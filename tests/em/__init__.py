"""Tests of rnamotif_data.em."""
