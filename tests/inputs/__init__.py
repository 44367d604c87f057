"""Tests of rnamotif_data.inputs."""
