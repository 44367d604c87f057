"""Learning: the PyTorch dataset over a store, augmentations, the 3D-CNN networks,
training, evaluation, metrics and checkpoints.

Owns: :mod:`~rnamotif_data.learn.dataset`, :mod:`~rnamotif_data.learn.transforms`,
:mod:`~rnamotif_data.learn.networks`, :mod:`~rnamotif_data.learn.train`,
:mod:`~rnamotif_data.learn.evaluate`, :mod:`~rnamotif_data.learn.metrics`,
:mod:`~rnamotif_data.learn.checkpoints`, the segmentation metrics and training on tiles
(:mod:`~rnamotif_data.learn.segmetrics`, :mod:`~rnamotif_data.learn.segtrain`), and :mod:`~rnamotif_data.learn.backend` (torch,
imported in one place).

The only package that imports torch (the ``[learn]`` extra), except the test fixtures.
:mod:`~rnamotif_data.learn.metrics` and :mod:`~rnamotif_data.learn.segmetrics` import no
torch, so reports can use them.
May import: storage, split, rna, em, errors.
"""
