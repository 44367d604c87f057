"""Splitting a store into folds no similarity crosses: relations between samples
(similarity), chain homology from the BGSU classes and Rfam families (homology), fold
assignment (folds; levels, at a chain-homology level), split files and schemes (splits), the
leakage report (leakage) and the upstream benchmark's folds (upstream). The ``rnamotif split``
program is :mod:`rnamotif_data.cli.split`.

May import: storage, rna (the motif taxonomy), inputs (manifest schema, for metadata-only
splits of a manifest), errors. Never imports torch or learning.
"""
