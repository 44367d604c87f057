"""What comes in: the manifest schema and its importers (CoSSMos, RNA 3D Motif Atlas, upstream
folds), RCSB search, annotation of models, the sources (RCSB/EMDB clients with a local mirror
and cache), the fetch of a mirror and the shipped demos.

Owns: :mod:`~rnamotif_data.inputs.schema` (the manifest contract),
:mod:`~rnamotif_data.inputs.importers`, :mod:`~rnamotif_data.inputs.search`,
:mod:`~rnamotif_data.inputs.annotate`, :mod:`~rnamotif_data.inputs.sources`,
:mod:`~rnamotif_data.inputs.fetch`, :mod:`~rnamotif_data.inputs.demo`. Their programs
(``rnamotif manifest``, ``search``, ``annotate``, ``fetch``) are in :mod:`rnamotif_data.cli`.

May import: science (samples, em, rna), storage, common, errors. Never imports the pipeline,
splitting, learning, release, torch or Dask.
"""
