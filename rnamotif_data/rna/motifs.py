"""Motif taxonomy: 25 fine motif types grouped into 4 classes plus ``unknown``.

Class order follows the upstream confusion matrices (symmetric loop, bulge, hairpin,
asymmetric loop, unknown); see design §4 and the upstream 3DEM RNA motif
dataset. Fine type names are those of the CoSSMos database (Vanegas et al., Nucleic
Acids Res. 40:D439, 2012; doi:10.1093/nar/gkr943): ``MxN`` internal loops with M and N
unpaired nucleotides on the two strands, ``bulgeN`` and ``hairpinN`` with N unpaired
nucleotides.
"""

from __future__ import annotations

from rnamotif_data.errors import (
    UnknownMotifTypeError,  # noqa: F401 (defined in rnamotif_data.errors)
)

#: Class names by class index (the index used as the training target).
CLASS_NAMES: tuple[str, ...] = (
    "symmetric_loop",
    "bulge",
    "hairpin",
    "asymmetric_loop",
    "unknown",
)

#: Fine motif types of each class (``unknown`` has the single type ``unknown``).
FINE_TYPES_BY_CLASS: dict[str, tuple[str, ...]] = {
    "symmetric_loop": ("1x1", "2x2", "3x3", "4x4", "5x5"),
    "bulge": ("bulge1", "bulge2", "bulge3", "bulge4", "bulge5"),
    "hairpin": ("hairpin3", "hairpin4", "hairpin5", "hairpin6", "hairpin7"),
    "asymmetric_loop": (
        "1x2", "1x3", "1x4", "1x5", "2x3", "2x4", "2x5", "3x4", "3x5", "4x5",
    ),
    "unknown": ("unknown",),
}

#: The 25 fine motif types, in class order.
FINE_TYPES: tuple[str, ...] = tuple(
    t for c in CLASS_NAMES[:4] for t in FINE_TYPES_BY_CLASS[c]
)

_CLASS_OF_TYPE = {t: c for c, types in FINE_TYPES_BY_CLASS.items() for t in types}


def motif_class(motif_type: str) -> str:
    """Return the class name of a fine motif type.

    Parameters
    ----------
    motif_type:
        A fine type such as ``"hairpin3"``, ``"1x2"`` or ``"unknown"``.

    Raises
    ------
    UnknownMotifTypeError
        If the type is not in the taxonomy; the message lists the valid types.
    """
    try:
        return _CLASS_OF_TYPE[motif_type]
    except KeyError:
        raise UnknownMotifTypeError(
            f"unknown motif type {motif_type!r}; expected one of: "
            + ", ".join(FINE_TYPES + ("unknown",))
        ) from None


def class_index(motif_type: str) -> int:
    """Return the class index (0-4, see :data:`CLASS_NAMES`) of a fine motif type.

    Raises
    ------
    UnknownMotifTypeError
        If the type is not in the taxonomy.
    """
    return CLASS_NAMES.index(motif_class(motif_type))


def strand_lengths(motif_type: str) -> tuple[int, ...]:
    """Strand lengths (nucleotides, closing pairs included) a fine type must have, sorted.

    ``hairpinN``: one strand of N + 2; ``bulgeN``: N + 2 and 2; ``AxB`` internal loops:
    A + 2 and B + 2 (either strand first). Raises :class:`UnknownMotifTypeError` for a type
    outside the 25 fine types.
    """
    motif_class(motif_type)
    if motif_type == "unknown":
        raise UnknownMotifTypeError("'unknown' has no strand layout")
    if motif_type.startswith("hairpin"):
        return (int(motif_type[7:]) + 2,)
    if motif_type.startswith("bulge"):
        return tuple(sorted((2, int(motif_type[5:]) + 2)))
    a, b = motif_type.split("x")
    return tuple(sorted((int(a) + 2, int(b) + 2)))


def layout_mismatch(lengths: list[int] | tuple[int, ...], motif_type: str,
                    flank_pairs: tuple[int, ...] = (1,)) -> str | None:
    """Why strands of ``lengths`` nucleotides (runs of residues consecutive in model order)
    do not fit ``motif_type``, or None when they fit with one of ``flank_pairs`` closing
    base pairs on each side: hairpinN one strand of N + 2k, bulgeN N + 2k and 2k, AxB A + 2k
    and B + 2k in either order. ``flank_pairs=(1,)`` is the build's rule
    (:func:`strand_lengths`: CoSSMos and RNA 3D Motif Atlas listings); ``(1, 2)`` also
    accepts the upstream benchmark's listings, which carry two flanking pairs. The strand
    count alone (one for a hairpin, two for the others) never depends on the convention.

    Raises
    ------
    UnknownMotifTypeError
        For a type outside the 25 fine types.
    """
    got = sorted(int(n) for n in lengths)
    base = list(strand_lengths(motif_type))
    fmt = lambda v: " + ".join(str(n) for n in v)  # noqa: E731
    if len(got) != len(base):
        return (f"{len(got)} strand(s) of {fmt(got)} nucleotides cannot be {motif_type}, which has "
                f"{len(base)} strand(s)")
    options = [sorted(n + 2 * (k - 1) for n in base) for k in flank_pairs]
    if got in options:
        return None
    expects = " or ".join(f"{fmt(o)} with {k} closing pair(s)" for o, k in zip(options, flank_pairs))
    return f"strands of {fmt(got)} nucleotides do not fit {motif_type} (expects {expects})"
