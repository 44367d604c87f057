"""Samples: the fixed-size labelled cube cut around a motif (placement, zone, labels), the
rules a sample must pass (strands, placement in the map, quality) and the structural
negatives ("unknown" background sites) matched to the motifs; and whole maps at 1 Å with
every voxel labelled (element, part, nucleotide, loop instance).

Owns: :mod:`~rnamotif_data.samples.cubes`, :mod:`~rnamotif_data.samples.rules`,
:mod:`~rnamotif_data.samples.background`,
:mod:`~rnamotif_data.samples.candidates`, :mod:`~rnamotif_data.samples.volumes`, and the ``rnamotif segment`` program
(:mod:`~rnamotif_data.samples.extract`).

May import: :mod:`rnamotif_data.em`, :mod:`rnamotif_data.rna`, :mod:`rnamotif_data.errors`.
Never imports: storage, splitting, learning, building, torch, Dask.
"""
