"""Learning: the PyTorch dataset over a store, augmentations, the 3D-CNN networks,
training, evaluation, metrics and checkpoints.

Owns: :mod:`~rnamotif_data.learn.dataset`, :mod:`~rnamotif_data.learn.transforms`,
:mod:`~rnamotif_data.learn.networks`, :mod:`~rnamotif_data.learn.train`,
:mod:`~rnamotif_data.learn.evaluate`, :mod:`~rnamotif_data.learn.metrics`,
:mod:`~rnamotif_data.learn.checkpoints`; whole maps: the tile dataset
(:mod:`~rnamotif_data.learn.tiles`), the segmentation network (:mod:`~rnamotif_data.learn.segnet`),
its metrics and training (:mod:`~rnamotif_data.learn.segmetrics`,
:mod:`~rnamotif_data.learn.segtrain`, :mod:`~rnamotif_data.learn.tilerun`), tile stitching
(:mod:`~rnamotif_data.learn.stitch`) and ``rnamotif detect`` (:mod:`~rnamotif_data.learn.detect`);
and :mod:`~rnamotif_data.learn.backend` (torch, imported in one place).

The only package that imports torch (the ``[learn]`` extra), except the test fixtures.
:mod:`~rnamotif_data.learn.metrics` and :mod:`~rnamotif_data.learn.segmetrics` import no
torch, so reports can use them.
May import: storage, split, samples (the label volumes' grid and tiles), rna, em, errors.
"""
