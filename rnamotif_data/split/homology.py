"""Chain homology as the field measures it: BGSU equivalence classes and Rfam families.

Two published tables give every RNA chain of the PDB a class without sequences:

- the **BGSU RNA 3D Hub representative sets** (``nrlist_<release>_<resolution>.csv``; Leontis &
  Zirbel 2012, DOI 10.1007/978-3-642-25740-7_13): one row per equivalence class (class id,
  representative, members; a member is ``PDB|model|chain``, ``+`` joins the chains of one
  IFE). Chains of one class are the same molecule from (nearly) the same organism; the
  RNA 3D Motif Atlas is built on these classes.
- **Rfam's PDB mapping** (``pdb_full_region.txt``: rfam_acc, pdb_id, chain, seq_start,
  seq_end, bit_score, evalue, cm_start, cm_end, colour, is_significant) and the **clan
  list** (``Rfam.clanin``: a clan id, then its member families, by id or accession;
  Kalvari et al. 2021, NAR 49:D192, DOI 10.1093/nar/gkaa1047): family-level homology
  across species, the level RNA3DB splits on (Szikszai et al. 2024, JMB 436:168552,
  DOI 10.1016/j.jmb.2024.168552).

Levels (:data:`LEVELS`) of ``rnamotif split --level``:

``entry``
    No chain homology: samples are grouped by EMDB map / PDB entry / model and by motif
    similarity only (the earlier split).
``identity`` (default)
    A chain's class is its BGSU equivalence class where the table lists it; a chain the
    table does not list (counted, logged) is compared by sequence instead: chains with
    ≥ ``min_identity`` (0.95) identity over the shorter chain (parasail semi-global
    alignment, NUC.4.4, gap open 5, extend 2; Daily 2016, DOI 10.1186/s12859-016-0930-z)
    are one class; a chain without a sequence is a class of its own.
``family``
    A chain's family is its best significant Rfam hit (highest bit score), merged by clan;
    a chain without a hit takes the family most of its identity class's chains carry
    (majority over the whole table), else its identity class stands for its family.

Where the tables come from (:class:`HomologySources`): a folder of local copies
(offline), or the pinned releases downloaded once into a cache and checked by sha256
(:func:`fetch_tables`). The tables are never copied into the package: the BGSU classes
carry no stated licence. The only Rfam data in the package is :data:`RFAM_FAMILY_IDS`
(accession -> id of the clan members that occur in the PDB, so ``Rfam.clanin``, which
lists families by id, can be matched to ``pdb_full_region.txt``, which lists accessions);
Rfam data are CC0.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pooch

from rnamotif_data.common.extras import require
from rnamotif_data.errors import ConfigError, DownloadError, HomologyTableError, SelectionSyntaxError
from rnamotif_data.rna.structure import parse_selection, read_model
from rnamotif_data.split.similarity import selection_texts
from rnamotif_data.storage.checksums import sha256_file
from rnamotif_data.storage.download import ResumableDownloader

log = logging.getLogger(__name__)

__all__ = ["LEVELS", "RELATED_LEVELS", "TABLES", "PINNED_SHA256", "RFAM_FAMILY_IDS", "HomologySources",
           "HomologyTables", "SampleHomology", "read_bgsu_classes", "read_rfam_pdb", "read_rfam_clans",
           "fetch_tables", "load_tables", "sample_chains", "chain_classes", "sample_homology", "related_levels",
           "model_chain_sequences"]

#: split levels, loosest first
LEVELS = ("entry", "identity", "family")
#: per validation sample, the strictest level at which it is related to its fold's training
#: set: ``identity`` (a chain of the same identity class in training), ``family`` (only
#: the same clan-merged family), ``none``; ``unknown`` where the sample has no chain.
RELATED_LEVELS = ("identity", "family", "none", "unknown")
#: table name -> (file name in a local folder, description)
TABLES = {"bgsu": "nrlist_{release}_{resolution}.csv", "rfam_pdb": "pdb_full_region.txt",
          "rfam_clans": "Rfam.clanin"}
#: sha256 of the pinned releases' contents (uncompressed): BGSU 4.24 'all' and the Rfam
#: PDB mapping and clan list as copied into ../shared/data/homology (SHA256SUMS there).
PINNED_SHA256 = {
    ("bgsu", "4.24/all"): "599ba5715d4a0cffa71350322b69df4d9ac8980c76429696be31c188b660d91c",
    ("rfam_pdb", "15.0"): "020a8366a86ee14637b2b890bc739d1e43ef40537d1f5a0f5e57069d0edefe93",
    ("rfam_clans", "15.0"): "ff804a5273845c1bfc0273c8d0bd985bd3ead8d56ac2af7aca27cc5e919319b3",
}

#: Rfam accession -> family id for every clan member among the PDB-mapped families (and
#: some of their clan partners), from Rfam's family table (CC0; checked entry by entry against
#: RNAcentral's export of it, rnacentral-import-pipeline data/rfam/families.tsv, and against the
#: ids of Rfam 15.0's ``Rfam.clanin``). Lets ``Rfam.clanin`` (ids) be matched to
#: ``pdb_full_region.txt`` (accessions); a clan file listing accessions needs none.
RFAM_FAMILY_IDS = {
    "RF00001": "5S_rRNA",  # CL00113
    "RF00002": "5_8S_rRNA",  # CL00112
    "RF00003": "U1",  # CL00005
    "RF00004": "U2",  # CL00006
    "RF00005": "tRNA",  # CL00001
    "RF00007": "U12",  # CL00006
    "RF00008": "Hammerhead_3",  # CL00010, not in pdb_full_region
    "RF00009": "RNaseP_nuc",  # CL00002
    "RF00010": "RNaseP_bact_a",  # CL00002
    "RF00011": "RNaseP_bact_b",  # CL00002
    "RF00012": "U3",  # CL00100
    "RF00015": "U4",  # CL00007
    "RF00017": "Metazoa_SRP",  # CL00003
    "RF00023": "tmRNA",  # CL00001
    "RF00024": "Telomerase-vert",  # CL00004
    "RF00025": "Telomerase-cil",  # CL00004
    "RF00026": "U6",  # CL00009
    "RF00030": "RNase_MRP",  # CL00002
    "RF00061": "IRES_HCV",  # CL00017
    "RF00083": "GlmZ_SraJ",  # CL00011
    "RF00100": "7SK",  # CL00013
    "RF00128": "GlmY_tke1",  # CL00011
    "RF00162": "SAM",  # CL00012
    "RF00163": "Hammerhead_1",  # CL00010
    "RF00166": "PrrB_RsmZ",  # CL00106
    "RF00169": "Bacteria_small_SRP",  # CL00003
    "RF00174": "Cobalamin",  # CL00101
    "RF00177": "SSU_rRNA_bacteria",  # CL00111
    "RF00209": "IRES_Pesti",  # CL00017
    "RF00254": "mir-16",  # CL00085
    "RF00373": "RNaseP_arch",  # CL00002
    "RF00455": "mir-15",  # CL00085
    "RF00488": "U1_yeast",  # CL00005
    "RF00548": "U11",  # CL00005
    "RF00618": "U4atac",  # CL00007
    "RF00619": "U6atac",  # CL00009
    "RF00634": "SAM-IV",  # CL00012
    "RF01047": "HBV_epsilon",  # CL00104
    "RF01050": "Sacc_telomerase",  # CL00004, not in pdb_full_region
    "RF01271": "snR30",  # CL00078
    "RF01317": "CRISPR-DR4",  # CL00014
    "RF01482": "AdoCbl_riboswitch",  # CL00101, not in pdb_full_region
    "RF01502": "Fungi_SRP",  # CL00003, not in pdb_full_region
    "RF01689": "AdoCbl-variant",  # CL00101
    "RF01725": "SAM-I-IV-variant",  # CL00012
    "RF01846": "Fungi_U3",  # CL00100
    "RF01847": "Plant_U3",  # CL00100, not in pdb_full_region
    "RF01848": "ACEA_U3",  # CL00100
    "RF01849": "alpha_tmRNA",  # CL00001, not in pdb_full_region
    "RF01850": "beta_tmRNA",  # CL00001, not in pdb_full_region
    "RF01851": "cyano_tmRNA",  # CL00001, not in pdb_full_region
    "RF01852": "tRNA-Sec",  # CL00001
    "RF01854": "Bacteria_large_SRP",  # CL00003
    "RF01855": "Plant_SRP",  # CL00003, not in pdb_full_region
    "RF01856": "Protozoa_SRP",  # CL00003
    "RF01857": "Archaea_SRP",  # CL00003
    "RF01959": "SSU_rRNA_archaea",  # CL00111
    "RF01960": "SSU_rRNA_eukarya",  # CL00111
    "RF01998": "group-II-D1D4-1",  # CL00102
    "RF01999": "group-II-D1D4-2",  # CL00102, not in pdb_full_region
    "RF02001": "group-II-D1D4-3",  # CL00102
    "RF02003": "group-II-D1D4-4",  # CL00102, not in pdb_full_region
    "RF02004": "group-II-D1D4-5",  # CL00102, not in pdb_full_region
    "RF02005": "group-II-D1D4-6",  # CL00102, not in pdb_full_region
    "RF02012": "group-II-D1D4-7",  # CL00102
    "RF02540": "LSU_rRNA_archaea",  # CL00112
    "RF02541": "LSU_rRNA_bacteria",  # CL00112
    "RF02542": "SSU_rRNA_microsporidia",  # CL00111
    "RF02543": "LSU_rRNA_eukarya",  # CL00112
    "RF02544": "mt-tmRNA",  # CL00001, not in pdb_full_region
    "RF02545": "SSU_trypano_mito",  # CL00111
    "RF02546": "LSU_trypano_mito",  # CL00112
    "RF02547": "mtPerm-5S",  # CL00113, not in pdb_full_region
}

_ACC = re.compile(r"^RF\d{5}$")
_CLAN = re.compile(r"^CL\d{5}$")


@dataclass(frozen=True)
class HomologySources:
    """Where the homology tables come from, and which releases.

    Attributes
    ----------
    bgsu_release, bgsu_resolution:
        BGSU RNA 3D Hub representative-set release and resolution cutoff (``4.24``,
        ``all``: every chain, whatever its resolution).
    rfam_release:
        Rfam release of the PDB mapping and clan list (``15.0``).
    directory:
        A folder holding local copies (``nrlist_<release>_<resolution>.csv``,
        ``pdb_full_region.txt``, ``Rfam.clanin``; optionally ``SHA256SUMS``): offline, nothing
        is downloaded. None: download (cached).
    cache:
        Download cache folder (None: ``$RNAMOTIF_CACHE/homology`` or ``~/.cache/rnamotif/homology``).
    bgsu_url, rfam_url:
        URL templates (``{release}``, ``{resolution}``); the Rfam one is the release folder.
    min_identity:
        Sequence identity over the shorter chain (0-1) at which two chains the BGSU table
        does not list are one identity class.
    """

    bgsu_release: str = "4.24"
    bgsu_resolution: str = "all"
    rfam_release: str = "15.0"
    directory: str | None = None
    cache: str | None = None
    bgsu_url: str = "http://rna.bgsu.edu/rna3dhub/nrlist/download/{release}/{resolution}/csv"
    rfam_url: str = "https://ftp.ebi.ac.uk/pub/databases/Rfam/{release}/"
    min_identity: float = 0.95

    def __post_init__(self) -> None:
        if not 0 < self.min_identity <= 1:
            raise ConfigError(f"homology min_identity must be in (0, 1], got {self.min_identity}")

    def file_name(self, table: str) -> str:
        """Local file name of ``table`` (a key of :data:`TABLES`)."""
        return TABLES[table].format(release=self.bgsu_release, resolution=self.bgsu_resolution)

    def release(self, table: str) -> str:
        """Release label of ``table`` (``4.24/all`` for BGSU, the Rfam release otherwise)."""
        return f"{self.bgsu_release}/{self.bgsu_resolution}" if table == "bgsu" else self.rfam_release

    def url(self, table: str) -> str:
        """Download URL of ``table``: the BGSU CSV, Rfam's ``database_files/pdb_full_region.txt.gz``
        or ``Rfam.clanin``."""
        if table == "bgsu":
            return self.bgsu_url.format(release=self.bgsu_release, resolution=self.bgsu_resolution)
        base = self.rfam_url.format(release=self.rfam_release).rstrip("/") + "/"
        return base + ("database_files/pdb_full_region.txt.gz" if table == "rfam_pdb" else "Rfam.clanin")

    @classmethod
    def from_dict(cls, d: dict | None) -> "HomologySources":
        """Inverse of ``dataclasses.asdict`` (unknown keys ignored, missing ones default)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (d or {}).items() if k in names})


@dataclass(frozen=True)
class HomologyTables:
    """The parsed tables.

    Attributes
    ----------
    identity:
        ``(PDB ID upper case, chain) -> BGSU class id`` (e.g. ``NR_all_83717.168``).
    family:
        ``(PDB ID, chain) -> Rfam accession`` of the best significant hit.
    clan:
        ``Rfam accession -> clan accession`` (families in no clan absent).
    versions:
        ``table -> {"file", "release", "sha256", "source"}`` (recorded in split files).
    """

    identity: dict[tuple[str, str], str]
    family: dict[tuple[str, str], str]
    clan: dict[str, str]
    versions: dict[str, dict] = field(default_factory=dict)

    def family_label(self, key: tuple[str, str]) -> str | None:
        """Clan-merged family of a chain (clan accession, else family accession), or None."""
        fam = self.family.get(key)
        return None if fam is None else self.clan.get(fam, fam)

    def class_families(self) -> dict[str, str]:
        """``BGSU class -> clan-merged family`` most of its listed chains carry (ties: the
        smallest label), for classes with at least one chain with an Rfam hit."""
        votes: dict[str, Counter] = {}
        for key, cls in self.identity.items():
            fam = self.family_label(key)
            if fam is not None:
                votes.setdefault(cls, Counter())[fam] += 1
        return {c: min(v, key=lambda f: (-v[f], f)) for c, v in votes.items()}


def read_bgsu_classes(path: str | os.PathLike) -> dict[tuple[str, str], str]:
    """BGSU representative-set CSV -> ``{(PDB ID, chain): class id}``.

    Each row is ``"class id","representative","member,member,..."``; a member is
    ``PDB|model|chain`` with ``+`` joining the chains of one IFE (each chain is listed).
    A chain listed in two classes keeps the first.

    Raises
    ------
    HomologyTableError
        If the file cannot be read or a row does not have that shape (names the line).
    """
    out: dict[tuple[str, str], str] = {}
    try:
        table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise HomologyTableError(f"{path}: not a BGSU representative-set CSV ({exc})") from exc
    if table.shape[1] < 3:
        raise HomologyTableError(f"{path}: not a BGSU representative-set CSV (expected 3 columns: class id, "
                                 f"representative, members; found {table.shape[1]})")
    for line, (cls, members) in enumerate(zip(table[0], table[2]), start=1):
        if not cls.startswith("NR_") or "|" not in members:
            raise HomologyTableError(f"{path}: line {line}: not a BGSU equivalence class row "
                                     f"({cls[:30]!r}, {members[:40]!r})")
        for ife in members.split(","):
            for chain in ife.split("+"):
                parts = chain.strip().split("|")
                if len(parts) < 3:
                    raise HomologyTableError(f"{path}: line {line}: member {chain!r} is not PDB|model|chain")
                out.setdefault((parts[0].upper(), parts[2]), cls)
    return out


def read_rfam_pdb(path: str | os.PathLike, significant_only: bool = True) -> dict[tuple[str, str], str]:
    """Rfam ``pdb_full_region.txt`` -> ``{(PDB ID, chain): Rfam accession}`` of each chain's
    best hit (highest bit score; only rows with ``is_significant`` = 1 unless
    ``significant_only`` is False). Chain ids are case-sensitive.

    Raises
    ------
    HomologyTableError
        If a line does not have the 11 tab-separated columns (names the line).
    """
    best: dict[tuple[str, str], tuple[float, str]] = {}
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                cols = line.rstrip("\n").split("\t")
                if len(cols) < 11 or not _ACC.match(cols[0]):
                    raise HomologyTableError(f"{path}: line {line_no}: not an Rfam PDB mapping row (expected 11 "
                                             f"tab-separated columns starting with an RFxxxxx accession)")
                try:
                    score, significant = float(cols[5]), cols[10].strip() == "1"
                except ValueError as exc:
                    raise HomologyTableError(f"{path}: line {line_no}: bit score {cols[5]!r} is not a number") \
                        from exc
                if significant_only and not significant:
                    continue
                key = (cols[1].upper(), cols[2])
                if key not in best or score > best[key][0]:
                    best[key] = (score, cols[0])
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise HomologyTableError(f"{path}: cannot read the Rfam PDB mapping ({exc})") from exc
    return {k: v[1] for k, v in best.items()}


def read_rfam_clans(path: str | os.PathLike, family_ids: dict[str, str] | None = None) -> dict[str, str]:
    """Rfam clan list (``CLxxxxx<TAB>member<TAB>member...``; members by id or accession) ->
    ``{Rfam accession: clan accession}``. Member ids are matched through ``family_ids``
    (accession -> id; default :data:`RFAM_FAMILY_IDS`); unmatched ids are counted (debug log).

    Raises
    ------
    HomologyTableError
        If a line does not start with a clan accession (names the line).
    """
    by_id = {v: k for k, v in (RFAM_FAMILY_IDS if family_ids is None else family_ids).items()}
    out: dict[str, str] = {}
    unmatched = 0
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise HomologyTableError(f"{path}: cannot read the Rfam clan list ({exc})") from exc
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cols = line.split()
        if not _CLAN.match(cols[0]):
            raise HomologyTableError(f"{path}: line {line_no}: not an Rfam clan row (expected CLxxxxx then "
                                     f"family ids; found {cols[0][:20]!r})")
        for member in cols[1:]:
            acc = member if _ACC.match(member) else by_id.get(member)
            if acc is None:
                unmatched += 1
            else:
                out[acc] = cols[0]
    log.debug("%s: %d clan members mapped to accessions, %d ids without a known accession", path, len(out), unmatched)
    return out


def _cache_dir(sources: HomologySources) -> Path:
    if sources.cache:
        return Path(sources.cache)
    root = os.environ.get("RNAMOTIF_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "rnamotif") / "homology"


def _sums(directory: Path) -> dict[str, str]:
    p = directory / "SHA256SUMS"
    if not p.exists():
        return {}
    out = {}
    for line in p.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[1].lstrip("*")] = parts[0].lower()
    return out


def _download(sources: HomologySources, table: str, offline: bool) -> tuple[Path, str]:
    """Fetch one table into the cache (decompressed), check its sha256; returns (path, url)."""
    cache = _cache_dir(sources) / table / sources.release(table).replace("/", "_")
    dest = cache / sources.file_name(table)
    url = sources.url(table)
    expected = PINNED_SHA256.get((table, sources.release(table)))
    if not dest.exists():
        if offline:
            raise HomologyTableError(f"{dest}: not in the cache and downloads are off; give the folder of local "
                                     f"copies (--homology-dir) or allow the download of {url}")


        cache.mkdir(parents=True, exist_ok=True)
        raw_name = Path(url.split("?")[0]).name or dest.name
        raw_name = raw_name if raw_name.endswith(".gz") else dest.name + ".download"
        try:
            raw = Path(pooch.retrieve(url, known_hash=None, fname=raw_name, path=cache,
                                      downloader=ResumableDownloader(cache / "partial", progress=False)))
        except Exception as exc:  # requests/pooch raise many types; one line naming the URL
            raise DownloadError(f"{url}: download failed ({type(exc).__name__}: {exc})") from exc
        tmp = dest.with_suffix(dest.suffix + ".tmp")
        if raw.name.endswith(".gz"):
            try:
                with gzip.open(raw, "rb") as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out)
            except (OSError, EOFError) as exc:
                raw.unlink(missing_ok=True)
                raise DownloadError(f"{url}: damaged download (not a gzip file: {exc}); removed, run again") from exc
            raw.unlink()
        else:
            raw.replace(tmp)
        got = sha256_file(tmp)
        if expected and got != expected:
            tmp.unlink()
            raise DownloadError(f"{url}: damaged download: sha256 {got[:16]}… but release "
                                f"{sources.release(table)} is pinned at {expected[:16]}…; removed from the cache, "
                                "run again (or name another release)")
        tmp.replace(dest)
        if not expected:
            log.warning("%s: release %s has no pinned sha256 here; recorded %s", url, sources.release(table), got)
    return dest, url


def fetch_tables(sources: HomologySources = HomologySources(), *, offline: bool = False) -> dict[str, dict]:
    """Paths and provenance of the three tables.

    With ``sources.directory``: the local copies there (offline); a copy whose sha256
    differs from the folder's ``SHA256SUMS`` is refused. Otherwise each table is downloaded
    once into the cache (pooch; Rfam's PDB mapping arrives gzipped and is stored
    decompressed) and checked against :data:`PINNED_SHA256` for the pinned releases.

    Returns
    -------
    ``{table: {"path", "file", "release", "sha256", "source"}}`` for ``bgsu``, ``rfam_pdb``,
    ``rfam_clans``.

    Raises
    ------
    HomologyTableError
        A local copy is missing or fails the folder's ``SHA256SUMS``; offline and not cached.
    rnamotif_data.errors.DownloadError
        A download failed or its sha256 differs from the pinned one (the damaged file is
        removed from the cache).
    """
    out: dict[str, dict] = {}
    if sources.directory is not None:
        folder = Path(sources.directory)
        sums = _sums(folder)
        for table in TABLES:
            path = folder / sources.file_name(table)
            if not path.exists():
                raise HomologyTableError(f"{path}: homology table missing from {folder} (needs "
                                         f"{', '.join(sources.file_name(t) for t in TABLES)})")
            got = sha256_file(path)
            if path.name in sums and sums[path.name] != got:
                raise HomologyTableError(f"{path}: sha256 {got[:16]}… differs from {folder / 'SHA256SUMS'} "
                                         f"({sums[path.name][:16]}…): damaged copy")
            out[table] = {"path": str(path), "file": path.name, "release": sources.release(table), "sha256": got,
                          "source": str(path)}
        return out
    for table in TABLES:
        path, url = _download(sources, table, offline)
        out[table] = {"path": str(path), "file": path.name, "release": sources.release(table),
                      "sha256": sha256_file(path), "source": url}
    return out


def load_tables(sources: HomologySources = HomologySources(), *, offline: bool = False) -> HomologyTables:
    """:func:`fetch_tables` then parse the three tables (about 0.3 s for the pinned releases).

    Raises
    ------
    HomologyTableError, rnamotif_data.errors.DownloadError
        As :func:`fetch_tables` and the readers.
    """
    files = fetch_tables(sources, offline=offline)
    versions = {t: {k: v for k, v in d.items() if k != "path"} for t, d in files.items()}
    return HomologyTables(identity=read_bgsu_classes(files["bgsu"]["path"]),
                          family=read_rfam_pdb(files["rfam_pdb"]["path"]),
                          clan=read_rfam_clans(files["rfam_clans"]["path"]), versions=versions)


def sample_chains(meta: pd.DataFrame) -> list[list[tuple[str, str]]]:
    """``(PDB ID upper, chain)`` of the residues of every row (its ``residues`` or
    ``selection`` text, :func:`rnamotif_data.split.similarity.selection_texts`), in order of
    first appearance; empty for a row without residues."""

    out: list[list[tuple[str, str]]] = []
    pdb = meta["pdb_id"].astype(str).str.upper().tolist() if "pdb_id" in meta else [""] * len(meta)
    cache: dict[str, list[str]] = {}
    for p, text in zip(pdb, selection_texts(meta)):
        if not isinstance(text, str):
            out.append([])
            continue
        if text not in cache:
            try:
                chains = [it.start.chain for it in parse_selection(text).items]
            except SelectionSyntaxError:
                chains = []
            cache[text] = list(dict.fromkeys(chains))
        out.append([(p, c) for c in cache[text]])
    return out


def _identity(a: str, b: str) -> float:
    """Matches / length of the shorter sequence, semi-global alignment (free end gaps)."""
    parasail = require("parasail", "chain identity of the homology levels")

    short = min(len(a), len(b))
    if not short:
        return 0.0
    r = parasail.sg_stats_striped_sat(a.replace("U", "T"), b.replace("U", "T"), 5, 2, parasail.nuc44)
    return r.matches / short


def chain_classes(chains, tables: HomologyTables | None, sequences: dict[tuple[str, str], str] | None = None,
                  min_identity: float = 0.95) -> tuple[dict, dict, dict]:
    """Identity class and family of every chain.

    Parameters
    ----------
    chains:
        Iterable of ``(PDB ID upper, chain)``.
    tables:
        The parsed tables (None: every chain is compared by sequence).
    sequences:
        ``(PDB ID, chain) -> one-letter sequence`` for chains the BGSU table may not list.
    min_identity:
        Identity over the shorter chain (0-1) that joins two unlisted chains.

    Returns
    -------
    ``(identity, family, counts)``: ``chain -> identity label`` (``NR_…`` BGSU class,
    ``seq:PDB|chain`` sequence cluster named by its longest chain, or ``chain:PDB|chain``);
    ``chain -> family label`` (clan or Rfam accession; else the identity label); counts of
    ``chains``, ``listed`` (in the BGSU table), ``by_sequence`` (not listed, compared by
    sequence), ``unsequenced`` (not listed, no sequence: own class), ``rfam`` (own Rfam hit),
    ``family_by_class`` (family by majority of the class), ``no_family``.
    """
    chains = sorted(set(chains))
    sequences = sequences or {}
    ident: dict[tuple[str, str], str] = {}
    missing = []
    for key in chains:
        cls = tables.identity.get(key) if tables is not None else None
        if cls is None:
            missing.append(key)
        else:
            ident[key] = cls
    with_seq = sorted((k for k in missing if sequences.get(k)), key=lambda k: (-len(sequences[k]), k))
    reps: list[tuple[str, str]] = []
    for key in with_seq:  # greedy clustering, longest first
        s = sequences[key]
        for rep in reps:
            r = sequences[rep]
            if _identity(s, r) >= min_identity:
                ident[key] = f"seq:{rep[0]}|{rep[1]}"
                break
        else:
            reps.append(key)
            ident[key] = f"seq:{key[0]}|{key[1]}"
    unsequenced = [k for k in missing if k not in ident]
    for key in unsequenced:
        ident[key] = f"chain:{key[0]}|{key[1]}"
    fam: dict[tuple[str, str], str] = {}
    class_fam = tables.class_families() if tables is not None else {}
    votes: dict[str, Counter] = {}
    for key in chains:  # sequence clusters vote among their own chains
        f = tables.family_label(key) if tables is not None else None
        if f is not None and not ident[key].startswith("NR_"):
            votes.setdefault(ident[key], Counter())[f] += 1
    class_fam.update({c: min(v, key=lambda f: (-v[f], f)) for c, v in votes.items()})
    n_rfam = n_class = 0
    for key in chains:
        f = tables.family_label(key) if tables is not None else None
        if f is not None:
            n_rfam += 1
        else:
            f = class_fam.get(ident[key])
            n_class += f is not None
        fam[key] = f if f is not None else ident[key]
    counts = {"chains": len(chains), "listed": len(chains) - len(missing), "by_sequence": len(with_seq),
              "unsequenced": len(unsequenced), "rfam": n_rfam, "family_by_class": n_class,
              "no_family": len(chains) - n_rfam - n_class}
    return ident, fam, counts


@dataclass(frozen=True)
class SampleHomology:
    """Chain classes of a table's samples, as a split uses them.

    Attributes
    ----------
    identity, family:
        ``(N,)`` lists of tuples of labels (a sample's chains' identity classes / families;
        empty for a sample without residues).
    info:
        JSON-ready provenance: table versions (file, release, sha256, source) and the counts
        of :func:`chain_classes`; recorded in the split file.
    """

    identity: list[tuple[str, ...]]
    family: list[tuple[str, ...]]
    info: dict

    def labels(self, level: str) -> list[tuple[str, ...]]:
        """Labels at ``level`` (``identity`` or ``family``)."""
        if level == "identity":
            return self.identity
        if level == "family":
            return self.family
        raise ConfigError(f"no chain labels at level {level!r}; choose identity or family")


def sample_homology(meta: pd.DataFrame, tables: HomologyTables | None,
                    sequences: dict[tuple[str, str], str] | None = None, min_identity: float = 0.95) -> SampleHomology:
    """:class:`SampleHomology` of every row of ``meta`` (:func:`sample_chains`,
    :func:`chain_classes`). Chains the BGSU table does not list are counted and logged
    (a warning), then compared by sequence where ``sequences`` has them."""
    per_sample = sample_chains(meta)
    ident, fam, counts = chain_classes((c for cs in per_sample for c in cs), tables, sequences, min_identity)
    unlisted = counts["chains"] - counts["listed"]
    if tables is not None and unlisted:
        log.warning("%d of %d chains are not in the BGSU table (%s): compared by sequence (%d with a sequence; "
                    "%d without, each its own class)", unlisted, counts["chains"],
                    tables.versions.get("bgsu", {}).get("file", "BGSU classes"), counts["by_sequence"],
                    counts["unsequenced"])
    rows_without = sum(1 for cs in per_sample if not cs)
    info = {"tables": tables.versions if tables is not None else None, "counts": counts,
            "samples_without_chain": rows_without, "min_identity": min_identity}
    return SampleHomology(identity=[tuple(dict.fromkeys(ident[c] for c in cs)) for cs in per_sample],
                          family=[tuple(dict.fromkeys(fam[c] for c in cs)) for cs in per_sample], info=info)


def related_levels(homology: SampleHomology, fold: np.ndarray, exclusion: np.ndarray, k: int,
                   removed: np.ndarray | None = None) -> np.ndarray:
    """``(N,)`` object array: for each placed sample, the strictest level at which it is
    related to its fold's training subset (:data:`RELATED_LEVELS`): a sample of another
    fold, not pruned from this fold's training (``exclusion`` bit), shares an identity
    class (``identity``) or only a family (``family``) with it; ``none`` otherwise;
    ``unknown`` for a sample without chains; None for an unplaced sample.

    ``fold`` is ``(N,)`` int 1..k (0 = unplaced), ``exclusion`` the ``train_exclusion`` masks.
    """
    n = len(fold)
    removed = np.zeros(n, bool) if removed is None else removed
    train_labels: dict[str, list[set]] = {"identity": [set() for _ in range(k + 1)],
                                          "family": [set() for _ in range(k + 1)]}
    for j in range(n):
        if not fold[j]:
            continue
        for f in range(1, k + 1):
            if f != fold[j] and not (int(exclusion[j]) >> (f - 1)) & 1:
                train_labels["identity"][f].update(homology.identity[j])
                train_labels["family"][f].update(homology.family[j])
    out = np.empty(n, dtype=object)
    for i in range(n):
        f = int(fold[i])
        if not f:
            continue
        if not homology.identity[i]:
            out[i] = "unknown"
        elif train_labels["identity"][f].intersection(homology.identity[i]):
            out[i] = "identity"
        elif train_labels["family"][f].intersection(homology.family[i]):
            out[i] = "family"
        else:
            out[i] = "none"
    return out


def model_chain_sequences(path: str | os.PathLike, min_length: int = 10) -> dict[str, str]:
    """One-letter sequence (parent residues of modified ones) of every nucleic-acid chain of
    ``path`` (PDB/mmCIF, gzipped or not) with ≥ ``min_length`` nucleotides, in model order.

    Raises
    ------
    rnamotif_data.errors.StructureError
        If the model cannot be read.
    """

    model = read_model(path)
    nt = np.zeros(len(model.atoms.residues), dtype=bool)
    nt[model.atoms.residue_index[model.atoms.nucleotide > 0]] = True
    out = {}
    seq = model.atoms.sequence()  # one parent letter per residue
    for chain, (order, _) in model.chain_index.items():
        letters = [seq[i] for i in order if nt[i]]
        if len(letters) >= min_length:
            out[chain] = "".join(letters)
    return out


def sources_dict(sources: HomologySources) -> dict:
    """``asdict`` of the sources (JSON-ready)."""
    return asdict(sources)
