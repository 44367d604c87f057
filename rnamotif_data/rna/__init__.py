"""Atomic models of RNA: reading PDB/mmCIF (gemmi), residue selections, modified residues,
per-atom labels, the motif taxonomy (hairpin, bulge, internal loops), base-pair
annotation (RNApolis, the ``[annotate]`` extra) and every residue's secondary-structure
element (stem, loops, junctions, single strands).

Owns: :mod:`~rnamotif_data.rna.structure`, :mod:`~rnamotif_data.rna.modified`,
:mod:`~rnamotif_data.rna.labels`, :mod:`~rnamotif_data.rna.motifs`,
:mod:`~rnamotif_data.rna.annotate`, :mod:`~rnamotif_data.rna.pairs`,
:mod:`~rnamotif_data.rna.elements`.

May import: :mod:`rnamotif_data.errors`. The lowest science layer: never imports maps,
storage, splitting, learning, building, torch or Dask.
"""
