"""Exceptions raised by rnamotif-data, and how to tell a failure of the machine from bad input.

Every error names the file, entry or selection it concerns and what is wrong, so a
failure in a batch build can be recorded per motif without a traceback.

One base, two branches::

    RNAMotifError                      every error the package raises on purpose
    ├── InputError (also ValueError)   bad input: a file, setting, selection, manifest or store
    │   ├── ConfigError (TileSizeError), MapFormatError, StructureError, SelectionError,
    │   │   MotifOutsideMapError (ModelOutsideMapError), NoRNAError, StoreError, ManifestError,
    │   │   RegistryError, AnnotationError, CheckpointMismatchError, UnknownMotifTypeError
    │   └── MissingFileError (also FileNotFoundError)   a file or folder the user named is absent
    ├── SourceError, SearchError, ZenodoError          the world failed (network, services,
    │                                                  a downloaded table such as HomologyTableError)
    ├── MissingDependencyError (also ImportError)      an optional extra is not installed
    └── DiskFullError (also OSError)                   a file could not be written (disk full?)

``except RNAMotifError`` catches every error of the package and ``except ValueError`` every
input error, ours or numpy's. ``rnamotif`` (:func:`rnamotif_data.cli.run`) prints an
:class:`RNAMotifError` or an ``OSError`` (disk full, permission denied) as one line and
shows the traceback of anything else (a bug).
``ValueError`` itself is raised only where Python's protocols expect it or for an internal
invariant (a bug); ``tests/test_errors.py`` keeps the list.
"""

from __future__ import annotations

import errno


class RNAMotifError(Exception):
    """Base class of every error this package raises on purpose (bad input, a failed
    download or service, a missing extra); ``rnamotif`` prints it as one line."""


class InputError(RNAMotifError, ValueError):
    """Bad input: a value, file, setting or store the caller gave cannot be used.

    Also a ``ValueError``, so code that expects Python's convention keeps working. Raised
    directly for a bad argument that no subclass below names better."""


class MissingFileError(InputError, FileNotFoundError):
    """A file or folder the user named does not exist (also a ``FileNotFoundError``).

    Example message: ``runs/m.pt: no such checkpoint``."""


class MapFormatError(InputError):
    """A density map file is unreadable, truncated, or not an orthogonal EM map.

    Example message: ``emd_20353.map: cell angles (90, 94.3, 90) are not orthogonal``.
    """


class StructureError(InputError):
    """An atomic model (PDB/mmCIF) cannot be read or has no usable atoms."""


class SelectionError(InputError):
    """A residue selection names a chain or residue that is not in the model.

    Example message: ``6PJ6 chain J has no residue 92 (selection J:85-92)``.
    """


class SelectionSyntaxError(SelectionError):
    """A selection string does not follow the ``CHAIN:RESIDUES`` syntax."""


class MotifOutsideMapError(InputError):
    """Motif atoms lie outside the density map's box, so the map cannot describe them."""


class ConfigError(InputError):
    """A configuration field has an invalid value."""


class NoRNAError(InputError):
    """A model has no RNA nucleotide inside its map, so there is nothing to label
    (:func:`rnamotif_data.samples.volumes.label_volumes`)."""


class ModelOutsideMapError(MotifOutsideMapError):
    """Too many of a model's heavy atoms lie outside its map's box to label the map."""


class TileSizeError(ConfigError):
    """A tile size or stride does not fit the map (a tile larger than the map, a stride
    of zero or larger than the tile)."""


class StoreError(InputError):
    """A store is missing, incomplete, or inconsistent."""


class SourceError(RNAMotifError):
    """A file or record could not be obtained."""


class DownloadError(SourceError):
    """A download failed after all retries, the server answered 404, or a downloaded file failed
    its checksum (models and maps from RCSB/EMDB, releases from Zenodo)."""


class HomologyTableError(SourceError):
    """A homology table (BGSU representative sets, Rfam PDB mapping or clan list) is missing,
    does not parse, or fails its checksum; the message names the file and the line."""


class OfflineError(SourceError):
    """Offline, and the files named in the message are in neither mirror nor cache."""


class NotEMEntryError(SourceError):
    """The PDB entry is not an electron-microscopy structure (no map to build from)."""


class NoMapError(SourceError):
    """The PDB entry lists no EMDB map."""


class SearchError(RNAMotifError):
    """The search service refused the query or answered something unreadable."""


class ManifestError(InputError):
    """A manifest cannot be used: missing columns, wrong types, or (strict) bad rows."""


class RegistryError(InputError):
    """A version is unknown, malformed, or already registered, or the registry file is bad."""


class ZenodoError(RNAMotifError):
    """Zenodo refused a request; the message carries Zenodo's own message and field errors.

    Attributes: ``status`` (HTTP status or None), ``errors`` (``[{field, message}]``).
    """

    def __init__(self, message: str, status: int | None = None, errors: list | None = None):
        super().__init__(message)
        self.status = status
        self.errors = errors or []


class ZenodoAuthError(ZenodoError):
    """401 (bad or missing token) or 403 (token lacks a scope, or the draft is someone else's)."""


class CheckpointMismatchError(InputError):
    """The checkpoint was trained on another split or class set than the data given."""


class UnknownMotifTypeError(InputError):
    """A motif type is not one of the 25 fine types (or ``unknown``)."""


class AnnotationError(InputError):
    """A model cannot be annotated (no annotator installed, unreadable file, no RNA)."""


class MissingDependencyError(RNAMotifError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it,
    e.g. ``training needs torch: pip install 'rnamotif-data[learn]'``."""


class DiskFullError(RNAMotifError, OSError):
    """A file could not be written because the machine ran out of room (or a writer failed
    as it does then, e.g. torch's ``inline_container.cc`` error); the message names the file
    and says to free space. The partial file is removed before it is raised."""


#: errno values that say the machine, not the input, failed: no space, file too large
#: (``ulimit -f``), quota exceeded, an I/O error, a read-only file system
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS})


def is_environment_failure(exc: BaseException) -> bool:
    """True for a failure of the machine (:data:`ENVIRONMENT_ERRNOS`, ``MemoryError``): it
    must stop a build, never be recorded as a failed manifest row."""
    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS)


def one_line(exc: BaseException) -> str:
    """An exception as one line for a message: ``Type: first line of its text``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
