"""Sequence features: per-nucleotide embeddings of each sample's residues (the ``[embed]`` extra).

* :mod:`~rnamotif_data.features.embedders` -- the embedder interface (name, version, dim,
  ``embed(sequence) -> (L, D)``), one-hot and structRFM, windows for long chains;
* :mod:`~rnamotif_data.features.chains` -- chain sequences of a model, embedded once per
  sequence and cached;
* :mod:`~rnamotif_data.features.stored` -- ``STORE/features/<name>/``: the layout, writing,
  reading, verifying, painting onto cubes;
* :mod:`~rnamotif_data.features.embed` -- the features of a store's samples (``rnamotif embed``).

Nothing here is imported by ``import rnamotif_data``; torch, transformers and structRFM are
imported only when a structRFM embedder is built (through
:func:`rnamotif_data.common.extras.require`).

May import build (where the store's models are: sources, the demos' mirrors), split (the
training subset a projection is fitted on), samples, rna, storage, common and errors;
never learn (the dataset imports this package, not the reverse).
"""
