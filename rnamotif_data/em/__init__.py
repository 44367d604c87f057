"""Density maps: reading and writing MRC/CCP4 files, header checks, map simulation from a
model, and the map-model quality metrics (Q-score, CC_mask, fit_z).

Owns: :mod:`~rnamotif_data.em.maps`, :mod:`~rnamotif_data.em.simulate`,
:mod:`~rnamotif_data.em.quality`, :mod:`~rnamotif_data.em.correlation`.

May import: :mod:`rnamotif_data.errors`, :mod:`rnamotif_data.rna` (atoms of the model).
Never imports: storage, splitting, learning, building, torch, Dask.
"""
