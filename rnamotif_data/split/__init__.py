"""Splitting a store into folds no similarity crosses: relations between samples
(similarity), fold assignment (folds), split files and schemes (splits), the leakage
report (leakage) and the ``rnamotif split`` program (command).

May import: storage, rna (the motif taxonomy), inputs (manifest schema, for metadata-only
splits of a manifest), errors. Never imports torch or learning.
"""
