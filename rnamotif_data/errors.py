"""Exceptions raised by rnamotif-data.

Every error names the file, entry or selection it concerns and what is wrong, so a
failure in a batch build can be recorded per motif without a traceback.
"""

from __future__ import annotations


class RNAMotifError(Exception):
    """Base class of every error this package raises on bad input."""


class MapFormatError(RNAMotifError):
    """A density map file is unreadable, truncated, or not an orthogonal EM map.

    Example message: ``emd_20353.map: cell angles (90, 94.3, 90) are not orthogonal``.
    """


class StructureError(RNAMotifError):
    """An atomic model (PDB/mmCIF) cannot be read or has no usable atoms."""


class SelectionError(RNAMotifError):
    """A residue selection names a chain or residue that is not in the model.

    Example message: ``6PJ6 chain J has no residue 92 (selection J:85-92)``.
    """


class SelectionSyntaxError(SelectionError):
    """A selection string does not follow the ``CHAIN:RESIDUES`` syntax."""


class MotifOutsideMapError(RNAMotifError):
    """Motif atoms lie outside the density map's box, so the map cannot describe them."""


class ConfigError(RNAMotifError):
    """A configuration field has an invalid value."""
