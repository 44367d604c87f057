"""Learning: the PyTorch dataset over a store, augmentations, the 3D-CNN networks,
training, evaluation, metrics and checkpoints.

Owns: :mod:`~rnamotif_data.learn.dataset`, :mod:`~rnamotif_data.learn.transforms`,
:mod:`~rnamotif_data.learn.networks`, :mod:`~rnamotif_data.learn.train`,
:mod:`~rnamotif_data.learn.evaluate`, :mod:`~rnamotif_data.learn.metrics`,
:mod:`~rnamotif_data.learn.checkpoints`, the whole-map segmentation network
(:mod:`~rnamotif_data.learn.segnet`), its tile stitching (:mod:`~rnamotif_data.learn.stitch`)
and ``rnamotif detect`` (:mod:`~rnamotif_data.learn.detect`), and :mod:`~rnamotif_data.learn.backend` (torch,
imported in one place).

The only package that imports torch (the ``[learn]`` extra), except the test fixtures.
:mod:`~rnamotif_data.learn.metrics` imports no torch, so reports can use it.
May import: storage, split, samples (the label volumes' grid, for detect), rna, em, errors.
"""
