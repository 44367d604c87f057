"""Building a store from a manifest: the manifest schema and importers (CoSSMos, RNA 3D
Motif Atlas, upstream folds), sources (RCSB/EMDB clients with a local mirror), search and
annotation of models, the per-entry pipeline, staging, commit, the store lock, the Dask
runner and the ``rnamotif build`` program.

May import: science (samples, em, rna), storage, errors. Dask (the ``[build]`` extra) is
imported only by :mod:`~rnamotif_data.build.runner` and :mod:`~rnamotif_data.build.builder`.
Never imports learning, release or torch.
"""
