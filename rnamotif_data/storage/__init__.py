"""The store: sharded Zarr v3 cubes plus Parquet tables, their layout constants, chunk
codecs, checksums, the release registry and the verified download of a release.

Owns: :mod:`~rnamotif_data.storage.layout`, :mod:`~rnamotif_data.storage.shards`,
:mod:`~rnamotif_data.storage.checksums`, :mod:`~rnamotif_data.storage.store`,
:mod:`~rnamotif_data.storage.registry`, :mod:`~rnamotif_data.storage.download`.

May import: :mod:`rnamotif_data.errors` and third-party I/O libraries (zarr, pyarrow,
fsspec, pooch). Never imports the science (em, rna, samples), splitting, learning or torch,
so reading a store needs only the core install.
"""
