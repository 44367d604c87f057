"""Tests of rnamotif_data.rna."""
