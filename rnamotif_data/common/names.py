"""The label vocabularies that the science paints and the store records, in one place.

:mod:`rnamotif_data.rna.labels` paints per-voxel part and nucleotide ids with these
indices; :mod:`rnamotif_data.storage.layout` records the same names in every store's
attributes (``label_names``, ``nucleotide_names``). Both import them from here, the one
module below both layers, so the painted ids and the recorded names cannot drift apart.
"""

from __future__ import annotations

__all__ = ["LABEL_NAMES", "NUCLEOTIDE_NAMES"]

#: part of a nucleotide's heavy atom, by label id (the ``labels`` array: 0 none, 1 backbone
#: (phosphate, O5', O3'), 2 sugar, 3 base)
LABEL_NAMES: tuple[str, ...] = ("none", "backbone", "sugar", "base")
#: nucleotide by id (the ``nucleotide`` array; modified residues as their parent, other
#: parents as "other")
NUCLEOTIDE_NAMES: tuple[str, ...] = ("none", "A", "C", "G", "U", "other")
