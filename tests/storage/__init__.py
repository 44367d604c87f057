"""Tests of rnamotif_data.storage."""
