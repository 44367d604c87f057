"""The pipeline that makes a store from a manifest: the build configuration, the per-entry job
(read the model and map once; place, cut, label and score every motif and background site),
the per-model context (everything derived from one model file, made once per worker) and
memo, staging of finished entries, the commit into the store, the Dask runner
and the timing table.

Owns: :mod:`~rnamotif_data.pipeline.config`, :mod:`~rnamotif_data.pipeline.builder`,
:mod:`~rnamotif_data.pipeline.entry`, :mod:`~rnamotif_data.pipeline.context`, :mod:`~rnamotif_data.pipeline.memo`,
:mod:`~rnamotif_data.pipeline.staging`, :mod:`~rnamotif_data.pipeline.commit`,
:mod:`~rnamotif_data.pipeline.runner`, :mod:`~rnamotif_data.pipeline.timing`.

May import: inputs, science (samples, em, rna), storage, common, errors. Dask (the ``[build]``
extra) is imported only by :mod:`~rnamotif_data.pipeline.runner` and
:mod:`~rnamotif_data.pipeline.builder`. Never imports splitting, learning, release or torch.
"""
