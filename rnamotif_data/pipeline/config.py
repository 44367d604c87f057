"""The build configuration: everything that determines a store's content.

Hashed into the store's attributes (``config_hash``), so a store built with other
settings is refused on resume; one frozen dataclass with nested configs, mapped one to
one onto ``rnamotif build`` flags.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from rnamotif_data.em.quality import QualityConfig
from rnamotif_data.errors import ConfigError, RegistryError
from rnamotif_data.samples.background import BackgroundConfig
from rnamotif_data.samples.cubes import SegmentConfig
from rnamotif_data.samples.rules import LOOP_CONVENTIONS, PlacementRules, QualityRules
from rnamotif_data.samples.tiles import TileConfig
from rnamotif_data.samples.volumes import VolumeConfig
from rnamotif_data.storage.registry import parse_version
from rnamotif_data.storage.shards import DEFAULT_CODEC, check_codec

__all__ = ["BuildConfig", "STORAGE_FIELDS", "PAIR_READERS", "LOOP_CONVENTIONS", "check_dataset_version"]

#: BuildConfig fields that change how cubes are stored, not what they are (not hashed)
STORAGE_FIELDS = ("codec", "compression_level")
#: how closing base pairs are read (BuildConfig.pairs)
PAIR_READERS = ("geometric", "rnapolis")


def check_dataset_version(version: str) -> str:
    """A store's ``dataset_version`` must be one ``rnamotif publish`` accepts (PEP 440,
    :func:`rnamotif_data.storage.registry.parse_version`): checked before a build writes
    anything, so a store never records a version its publication would refuse.

    Raises
    ------
    ConfigError
        Naming ``--dataset-version`` and the value.
    """
    try:
        parse_version(version)
    except RegistryError as exc:
        raise ConfigError(f"--dataset-version: {exc}") from None
    return version


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines a store's content (hashed into its attributes).

    Attributes
    ----------
    segment:
        Cube, zone and label choices (:class:`SegmentConfig`).
    background:
        Background site choices (:class:`BackgroundConfig`).
    min_fit_z:
        An entry whose model atoms inside the map have a fit z-score below this fails
        (stage ``placement``): a misplaced map or a wrong model. The real seed-sample
        hairpin gives +3.3; atoms shifted by 8 Å give under +1 (design §2).
    min_motif_fit_z, min_motif_frac_above_1sd:
        Per-motif placement: a motif whose own fit_z is below ``min_motif_fit_z``, or
        whose fraction of heavy atoms above map mean + 1 sd is below
        ``min_motif_frac_above_1sd``, sits in empty density (a part of the model that is
        not in this map) and goes to ``failures.parquet`` (stage ``placement``) with its
        values; None disables a criterion. Defaults and why: ``docs/placement.md``. As
        :class:`~rnamotif_data.samples.rules.PlacementRules`: :attr:`placement_rules`.
    quality:
        Q-score and CC_mask parameters (:class:`QualityConfig`).
    min_q_score, min_cc_mask:
        Motifs whose Q-score (motif mean) or CC_mask is below these, or undefined, go to
        ``failures.parquet`` (stage ``quality``) with the value in the message; None
        (default) keeps every motif. Background samples are never filtered. As
        :class:`~rnamotif_data.samples.rules.QualityRules`: :attr:`quality_rules`.
    shard_size:
        Samples per shard (one writer each).
    codec:
        Chunk codec of the cube arrays (:data:`rnamotif_data.storage.shards.CODECS`): ``lz4``
        (default; fastest to read) or ``zstd`` (~30 % smaller, ~2x slower to decode).
    compression_level:
        Level of ``codec`` (lz4 1-9, zstd 1-22); None: the codec's default (5, 3).
    pairs:
        How closing base pairs are read to check each row's loop lengths (:data:`PAIR_READERS`):
        ``"geometric"`` (default; :func:`rnamotif_data.rna.pairs.watson_crick_partners`,
        milliseconds per model) or ``"rnapolis"`` (RNApolis's canonical pairs, the
        ``[annotate]`` extra; ~20 s for a 50S model, once per model and process). Explicit,
        never chosen by what is installed, so a store's content does not depend on the
        machine. Left out of :meth:`to_dict` at its default, so stores built before it
        existed keep their ``config_hash``.
    loop_convention:
        How a motif's loop lengths, and so its fine type, are counted
        (:data:`LOOP_CONVENTIONS`): ``"span"`` (default), every nucleotide between the
        closing pairs (CoSSMos-like); ``"source"``, only those the source's own residue list
        names (the RNA 3D Motif Atlas's unit ids: ``HL_1U9S_001``, A:84-88 + A:90, is then
        ``hairpin4``, not ``hairpin5``), for rows whose source has such a list
        (:func:`~rnamotif_data.samples.rules.apply_loop_convention`). The metadata holds both
        (``loop_lengths``, ``source_loop_lengths``) either way. Left out of :meth:`to_dict`
        at its default, like ``pairs``.
    tiles:
        Also store each entry's 1 Å density and label volumes and its tile table
        (``rnamotif build --tiles``; :mod:`rnamotif_data.storage.volumes`). Left out of
        :meth:`to_dict` (with ``tile``) when off, so cube-only stores keep their hash.
    tile:
        The tiles' and volumes' settings (:class:`~rnamotif_data.samples.tiles.TileConfig`).
    """

    segment: SegmentConfig = field(default_factory=SegmentConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    min_fit_z: float = 1.5
    min_motif_fit_z: float | None = 1.5
    min_motif_frac_above_1sd: float | None = 0.5
    quality: QualityConfig = field(default_factory=QualityConfig)
    min_q_score: float | None = None
    min_cc_mask: float | None = None
    shard_size: int = 64
    codec: str = DEFAULT_CODEC
    compression_level: int | None = None
    pairs: str = "geometric"
    loop_convention: str = "span"
    tiles: bool = False
    tile: TileConfig = field(default_factory=TileConfig)

    def __post_init__(self) -> None:
        if self.pairs not in PAIR_READERS:
            raise ConfigError(f"pairs must be one of {', '.join(PAIR_READERS)}, got {self.pairs!r}")
        if self.loop_convention not in LOOP_CONVENTIONS:
            raise ConfigError(f"loop_convention must be one of {', '.join(LOOP_CONVENTIONS)}, "
                              f"got {self.loop_convention!r}")
        if int(self.shard_size) != self.shard_size or self.shard_size < 1:
            raise ConfigError(f"shard_size must be an integer >= 1, got {self.shard_size}")
        check_codec(self.codec, self.compression_level)
        for name in ("min_fit_z", "min_motif_fit_z", "min_motif_frac_above_1sd", "min_q_score", "min_cc_mask"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v}")

    @property
    def placement_rules(self) -> PlacementRules:
        """The per-motif placement thresholds (``min_motif_fit_z``, ``min_motif_frac_above_1sd``)."""
        return PlacementRules(self.min_motif_fit_z, self.min_motif_frac_above_1sd)

    @property
    def volume_config(self) -> VolumeConfig:
        """The volumes' :class:`~rnamotif_data.samples.volumes.VolumeConfig`: ``tile``'s grid and
        labels, normalised by the cubes' percentile (``segment.normalise_percentile``)."""
        t = self.tile
        return VolumeConfig(voxel_size=t.voxel_size, label_radius=t.label_radius,
                            normalise_percentile=self.segment.normalise_percentile, slab=t.slab,
                            max_fraction_outside=t.max_fraction_outside)

    @property
    def quality_rules(self) -> QualityRules:
        """The per-motif quality thresholds (``min_q_score``, ``min_cc_mask``)."""
        return QualityRules(self.min_q_score, self.min_cc_mask)

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every field, nested configs included (``pairs`` only
        when it is not ``"geometric"``, ``loop_convention`` only when it is not ``"span"``:
        the hash of a default config is the one stores built before them record)."""
        d = asdict(self)
        for name, default in (("pairs", "geometric"), ("loop_convention", "span")):
            if d[name] == default:
                del d[name]
        if not d["tiles"]:
            del d["tiles"], d["tile"]
        return d

    def config_hash(self) -> str:
        """Stable sha256 (hex, first 16 characters) of the canonical JSON of the fields that
        decide the content: the storage settings (:data:`STORAGE_FIELDS`: how the cubes
        are compressed, not what they are) are left out, so a store recoded to another
        codec (``rnamotif_data.release.recode``) keeps its hash and its split fingerprints."""
        content = {k: v for k, v in self.to_dict().items() if k not in STORAGE_FIELDS}
        blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
