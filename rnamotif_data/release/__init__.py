"""What is done with a built store: verification, the QC report, the shortcut audit,
export to MRC/HDF5, recoding to another chunk codec, the dataset card, the release
package and its publication on Zenodo.

May import: build, split, storage, science, :mod:`rnamotif_data.learn.metrics` (no torch),
errors. Never imports torch.
"""
