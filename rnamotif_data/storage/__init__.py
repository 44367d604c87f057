"""The store: sharded Zarr v3 cubes plus Parquet tables, their layout constants and typed
rows, chunk codecs, checksums, the lock and out-folder rules, the one store writer, the
release registry and the verified download of a release.

Owns: :mod:`~rnamotif_data.storage.layout`, :mod:`~rnamotif_data.storage.shards`,
:mod:`~rnamotif_data.storage.checksums`, :mod:`~rnamotif_data.storage.store`,
:mod:`~rnamotif_data.storage.lock`, :mod:`~rnamotif_data.storage.outdir`,
:mod:`~rnamotif_data.storage.writer` (every store is written through it),
:mod:`~rnamotif_data.storage.registry`, :mod:`~rnamotif_data.storage.download`.
The only package that imports zarr (an import contract).

May import: :mod:`rnamotif_data.errors` and third-party I/O libraries (zarr, pyarrow,
fsspec, pooch). Never imports the science (em, rna, samples), splitting, learning or torch,
so reading a store needs only the core install.
"""
