"""Descriptors of a release package: the dataset card, the Croissant description, SHA256SUMS.

* ``README.md``, the dataset card: what the dataset is, how it was built (package
  version, build config, manifest hash), class counts, a QC summary, each split with its
  leakage report, known limitations, the licence, how to cite it, and the changelog.
* ``croissant.json``: a Croissant 1.0 JSON-LD description (MLCommons, Akhtar et al.,
  NeurIPS Datasets and Benchmarks 2024, doi:10.52202/079017-2610): every file as a
  ``cr:FileObject`` with its sha256, and the ``samples`` record set (one field per
  ``metadata.parquet`` column) and one record set per split file.
* ``SHA256SUMS``: ``sha256sum`` format, every other file of the package.

They are written twice when publishing: once without a DOI (``--dry-run``, and to show
what will be uploaded) and again with the DOI Zenodo reserves for the draft.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from rnamotif_data.common.version import __version__ as package_version
from rnamotif_data.inputs.demo import simulated_maps_note
from rnamotif_data.release.package import LICENCES, Package, PackageFile, ZenodoConfig, hash_file
from rnamotif_data.release.report import audit_section, failures_table, quality_table
from rnamotif_data.split.leakage import format_report, leakage_report
from rnamotif_data.split.splits import Split, store_relations
from rnamotif_data.storage.layout import METADATA_COLUMNS
from rnamotif_data.storage.registry import Release
from rnamotif_data.storage.store import RNAMotifStore, open_store

log = logging.getLogger("rnamotif_data.release.card")

__all__ = ["CROISSANT_CONTEXT", "dataset_card", "croissant", "write_descriptors", "format_size", "DESCRIPTOR_ROLES"]

_SCHEME_TEXT = {
    "similarity": "no similarity crosses a fold (default): samples sharing an EMDB map, PDB entry, model, "
                  "residue or zone are never split; the same canonical motif, near-identical motifs (edit distance "
                  "1) and homologous contexts are grouped, or, where a group is too large to balance, the samples "
                  "related to a fold are left out of that fold's training, so every sample is validated once and "
                  "none has a relative in its fold's training data",
    "entry": "grouped by EMDB map / PDB entry / model (map-level, as Cryo2StructData); motif similarity may cross",
    "upstream": "the upstream dataset's five folds, for comparison with its published numbers; **it leaks** "
                "(most validation entries also supply training motifs)",
}
#: The descriptor files, written last: (name, role).
_DESCRIPTORS = (("README.md", "card"), ("croissant.json", "croissant"), ("SHA256SUMS", "checksums"))
#: Roles of the descriptor files.
DESCRIPTOR_ROLES = frozenset(r for _, r in _DESCRIPTORS)
_ROLE_TEXT = {
    "archive": "the whole store (Zarr v3, sharded; chunk codec in the build config); open with zarr.storage.ZipStore "
               "or unzip; `rnamotif recode` copies it to another codec",
    "metadata": "one row per sample (column dictionary below)",
    "failures": "every manifest row that did not become a sample, and why",
    "split": "sample_id -> fold (1-5) of one split scheme, with its config and fingerprint",
    "figure": "QC histograms per class",
    "card": "this dataset card",
    "croissant": "Croissant 1.0 JSON-LD description",
    "checksums": "sha256 of every other file (`sha256sum -c SHA256SUMS`)",
}
_ENCODING = {".zip": "application/zip", ".parquet": "application/x-parquet", ".png": "image/png"}

#: The Croissant 1.0 JSON-LD context.
CROISSANT_CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty", "samplingRate": "cr:samplingRate",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
    "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField",
    "path": "cr:path", "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex",
    "repeated": "cr:repeated", "replace": "cr:replace", "sc": "https://schema.org/", "separator": "cr:separator",
    "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
}


def format_size(n: float) -> str:
    """Bytes as B, KiB, MiB or GiB for people."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _citation(config: ZenodoConfig, version: str, doi: str | None, year: str) -> tuple[str, str]:
    names = "; ".join(c["name"] for c in config.creators)
    where = f"https://doi.org/{doi}" if doi else "(DOI assigned when Zenodo publishes this version)"
    text = f"{names} ({year}). {config.title}, version {version} [Data set]. Zenodo. {where}"
    key = "rnamotif_data_" + version.replace(".", "_")
    bib = ["@dataset{" + key + ",", "  author    = {" + " and ".join(c["name"] for c in config.creators) + "},",
           "  title     = {" + config.title + "},", f"  version   = {{{version}}},", f"  year      = {{{year}}},",
           "  publisher = {Zenodo},"]
    if doi:
        bib += [f"  doi       = {{{doi}}},", f"  url       = {{https://doi.org/{doi}}},"]
    bib.append("}")
    return text, "\n".join(bib)


def _audit_lines(store: RNAMotifStore) -> list[str]:

    return audit_section(store, None)


def dataset_card(package: Package, config: ZenodoConfig, store: RNAMotifStore, *, doi: str | None = None,
                 concept_doi: str | None = None, year: str, notes: str = "", history: Sequence[Release] = ()) -> str:
    """The dataset card (Markdown) of ``package`` (sections in the module docstring).

    ``history`` is the registry's earlier versions, for the changelog; ``notes`` this
    version's changes.
    """
    meta, failures, attrs = store.metadata, store.failures, store.attrs
    v = package.version
    lines = _card_head(package, config, store, doi, concept_doi)
    lines += _card_usage(package, attrs)
    lines += _card_build(attrs, failures)
    lines += _card_classes(store)
    note = simulated_maps_note(attrs)
    lines += ["", "## Quality", "", *([note, ""] if note else []), "![QC histograms](qc.png)", ""] + quality_table(meta)
    lines += ["", "Manifest rows that failed, by stage:", ""] + failures_table(failures)
    lines += ["", "## Shortcut audit", ""] + _audit_lines(store)
    lines += _card_splits(package, store)
    lines += _card_limitations(store)
    lines += _card_licence(config, v, doi, concept_doi, year)
    lines += ["## Changelog", "", f"* {v}: {notes or 'this version'}"]
    for r in reversed(list(history)):
        lines.append(f"* {r.version} ({r.published}, doi:{r.doi}): {r.notes or '—'}")
    lines += ["", f"*Card written by rnamotif-data {package_version}.*", ""]
    return "\n".join(lines)


def _card_head(package: Package, config: ZenodoConfig, store: RNAMotifStore, doi: str | None,
               concept_doi: str | None) -> list[str]:
    """Title, description, identifiers, the counts and the file table."""
    meta, attrs = store.metadata, store.attrs
    v = package.version
    n_bg = int(meta["is_background"].sum())
    res = meta["resolution"].dropna()
    lines = [f"# {config.title} — version {v}", "", config.description, "",
             f"**Version** {v} · **DOI** {doi or 'assigned on publication'}"
             + (f" · **all versions** {concept_doi}" if concept_doi else "")
             + f" · **licence** {LICENCES[config.license][0]} · **store format** {attrs.get('format_version')}", "",
             f"{len(meta)} samples ({len(meta) - n_bg} motifs, {n_bg} non-motif \"unknown\" cubes) from "
             f"{meta['emdb_id'].nunique()} EMDB maps and {meta['pdb_id'].nunique()} PDB models"
             + (f", resolution {res.min():.1f}–{res.max():.1f} Å (median {res.median():.1f} Å)" if len(res) else "")
             + ".", "",
             "## Files", "", "| file | size | sha256 | what |", "| --- | ---: | --- | --- |"]
    for f in package.files:
        lines.append(f"| `{f.name}` | {format_size(f.size)} | `{f.sha256[:16]}…` | {_ROLE_TEXT[f.role]} |")
    lines += [f"| `{name}` | | | {_ROLE_TEXT[role]} |" for name, role in _DESCRIPTORS]
    return lines


def _card_usage(package: Package, attrs: dict) -> list[str]:
    """How to load the dataset, with and without the package, and what its arrays hold."""
    v = package.version
    return ["", "## Using it", "", "```python",
            "from rnamotif_data import RNAMotifDataset  # pip install rnamotif-data",
            f'ds = RNAMotifDataset(version="{v}", download=True, split="fold1", subset="train")',
            "x, y = ds[0]  # x: float32 (1, D, H, W) z-y-x density in [0, 1]; y: class index", "```", "",
            f"or `rnamotif download --version {v}` (verified with the sha256 sums above). "
            "Without the package:", "", "```python", "import zarr, pandas as pd",
            f'g = zarr.open_group(zarr.storage.ZipStore("{package.archive.name}", mode="r"), mode="r")',
            'cube = g["density"][0]          # (D, H, W) float16, z-y-x, 1 Å voxels',
            'meta = pd.read_parquet("metadata.parquet")  # row i describes sample i', "```", "",
            "Arrays `density` (float16, [0, 1]), `zone` (bool, within "
            f"{attrs['build_config']['segment'].get('zone_radius', '?')} Å of the motif), `labels` (uint8: "
            "0 none, 1 backbone, 2 sugar, 3 base), `nucleotide` (uint8: 0 none, 1 A, 2 C, 3 G, 4 U, 5 other), "
            f"each `(N, D, H, W)` = `(N, {', '.join(map(str, attrs['cube_shape']))})` at {attrs['voxel_size']} Å, "
            "z-y-x; `origin_xyz` in the metadata places voxel [0, 0, 0] in the model's frame (Å).", ""]


def _card_build(attrs: dict, failures) -> list[str]:
    """How the store was built: method, manifest, build config."""
    return ["## How it was built", "",
            f"With rnamotif-data {attrs.get('package_version')} (`rnamotif build`): for each listed motif "
            "occurrence, the EMDB map and PDB model of its entry are read once, the map is resampled to 1 Å voxels "
            "around the motif, divided by the 95th percentile of its non-zero density and clipped to [0, 1] "
            "(Cryo2StructData, doi:10.1038/s41597-024-03299-9); voxels are labelled from the model; Q-score "
            "(Pintilie et al. 2020, doi:10.1038/s41592-020-0731-1) and CC_mask (Afonine et al. 2018, "
            "doi:10.1107/S2059798318009324) are computed per motif. Motif types follow CoSSMos "
            "(doi:10.1093/nar/gkr943).", "",
            f"Manifest `{attrs.get('manifest')}` (sha256 `{attrs.get('manifest_sha256')}`, "
            f"{attrs.get('manifest_rows')} rows; {len(failures)} did not become samples), build config hash "
            f"`{attrs.get('config_hash')}`:", "", "```json", json.dumps(attrs.get("build_config"), indent=2), "```", ""]


def _card_classes(store: RNAMotifStore) -> list[str]:
    """Samples per class and fine type, and the metadata columns."""
    meta = store.metadata
    lines = ["## Classes", "", "| class index | class | samples | fine types |", "| ---: | --- | ---: | --- |"]
    for ci, cname in enumerate(store.class_names):
        sub = meta[meta["class_index"] == ci]
        types = ", ".join(f"{t} {n}" for t, n in sub["motif_type"].value_counts().sort_index().items())
        lines.append(f"| {ci} | {cname} | {len(sub)} | {types or '—'} |")
    lines += ["", "### Columns of `metadata.parquet`", "", "| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {typ} | {desc} |" for name, (typ, desc) in METADATA_COLUMNS.items()]
    return lines


def _card_splits(package: Package, store: RNAMotifStore) -> list[str]:
    """Each split scheme: seed, fingerprint and leakage report."""
    meta = store.metadata
    lines = ["", "## Splits", "",
             "Five folds per scheme; fold k's validation set is fold k (minus removed samples, under the earlier "
             "`prune=val` rule), its training set the other four minus the samples related to fold k (column "
             "`train_exclusion` of the split file). The leakage report gives, per fold, the training set's share "
             "of the other folds, what each relation cost it, the validation samples related to a "
             "training sample (same entry, overlapping, same canonical motif, near-identical, homologous "
             "context; 0 by construction for `similarity`), and the validation samples' highest context "
             "identity to training (per sample: column `max_identity_to_train`).", ""]
    relations = None
    for scheme, split in package.splits.items():
        lines += [f"### `{scheme}`" + (f" (`split-{scheme}.parquet`)" if isinstance(split, Split) else ""), "",
                  _SCHEME_TEXT[scheme] + ".", ""]
        if not isinstance(split, Split):
            lines += [f"Not made: {split}", ""]
            continue
        relations = relations or store_relations(store, split.config)
        lines += [f"Seed {split.config.seed}, fingerprint `{split.fingerprint}`, {split.n_removed} removed.", "",
                  format_report(leakage_report(meta, split, relations, store.class_names), store.class_names)]
    return lines


def _card_limitations(store: RNAMotifStore) -> list[str]:
    """What the dataset cannot tell, with its class counts and background kinds."""
    meta, attrs = store.metadata, store.attrs
    n_cls = meta["class_index"].value_counts()
    bg = (attrs.get("build_config") or {}).get("background") or {}
    return ["## Limitations", "",
            "* What the cube task measures: the four motif classes (and the fine types) follow from the selected "
            "residues' strand layout -- one strand is a hairpin, a strand of 2 a bulge, equal strands a symmetric "
            "loop, others an asymmetric loop -- so a fixed rule on the layout, with no density and no training, "
            "scores macro sensitivity 0.80 on the 5 classes (every motif right, every \"unknown\" wrong). The "
            "part the selection does not give away is motif versus \"unknown\" (the negatives share the motifs' "
            "layouts): report its ROC AUC and balanced accuracy, per layout, beside the 5-class figure and the "
            "layout rule's (`rnamotif evaluate` prints all three).",
            "* Labels come from the deposited model, not from the map: where the model is wrong, so are the "
            "labels; use the Q-score and CC_mask columns to filter.",
            "* Density is normalised per map (95th percentile of non-zero density): absolute levels are not "
            "comparable between maps, and resampling to 1 Å smooths maps finer than that.",
            "* The \"unknown\" class is real structure of the same maps that is not a listed motif (kinds "
            f"{bg.get('kinds', '?')}: helical stems, other RNA stretches; at least {bg.get('min_distance', '?')} Å "
            "from every listed motif), shaped like the entry's motifs (strand layout, size, compactness, "
            "position) and zoned like them; it is a negative class, not a physical category.",
            "* Samples per class: " + ", ".join(f"{c} {int(n_cls.get(i, 0))}" for i, c in enumerate(store.class_names))
            + "; weight or resample if they are unbalanced.",
            "* Motif annotations are those of the source manifest (CoSSMos / RNA 3D Motif Atlas); their errors "
            "carry over.",
            "* Q-score uses at most 24 spiral tries per shell (MapQ: 96) and the paper's \"closer to another "
            "atom\" rule; see the rnamotif_data.em.quality documentation for the expected deviations.",
            "* The `upstream` split (if present) leaks by construction; report results on `similarity`.", ""]


def _card_licence(config: ZenodoConfig, v: str, doi: str | None, concept_doi: str | None, year: str) -> list[str]:
    """Licence and how to cite."""
    lines = ["## Licence", "",
             f"{LICENCES[config.license][0]} ({LICENCES[config.license][1]}). The EMDB maps and PDB models it is cut "
             "from are CC0; please also cite the entries you use (`emdb_id`, `pdb_id` columns).", "",
             "## How to cite", ""]
    text, bib = _citation(config, v, doi, year)
    lines += [text, "", "```bibtex", bib, "```", ""]
    if concept_doi:
        lines += [f"To cite every version at once, use the concept DOI {concept_doi}.", ""]
    return lines


def _data_type(t: pa.DataType) -> tuple[str, bool]:
    """Croissant dataType of an Arrow type, and whether it is a list."""
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
        return _data_type(t.value_type)[0], True
    if pa.types.is_boolean(t):
        return "sc:Boolean", False
    if pa.types.is_integer(t):
        return "sc:Integer", False
    if pa.types.is_floating(t):
        return "sc:Float", False
    return "sc:Text", False


def croissant(package: Package, config: ZenodoConfig, store: RNAMotifStore, *, doi: str | None = None, published: str,
              file_urls: dict[str, str] | None = None) -> dict:
    """The Croissant 1.0 JSON-LD description of ``package`` (a dict, ready for ``json.dump``).

    ``published`` is the ISO date; ``file_urls`` gives each file's download URL (after
    publishing); without it ``contentUrl`` is the bare file name, resolved beside
    ``croissant.json``.
    """
    file_urls = file_urls or {}
    text, _ = _citation(config, package.version, doi, published[:4])
    # before a draft exists (dry run) there is no record yet to point at
    url = f"https://doi.org/{doi}" if doi else "https://zenodo.org/"
    distribution = []
    for f in package.files:
        distribution.append({
            "@type": "cr:FileObject", "@id": f.name, "name": f.name, "description": _ROLE_TEXT[f.role],
            "contentUrl": file_urls.get(f.name, f.name), "contentSize": f"{f.size} B",
            "encodingFormat": _ENCODING[Path(f.name).suffix], "sha256": f.sha256, "md5": f.md5})
    meta_file = next(f.name for f in package.files if f.role == "metadata")
    fields = []
    for name, (typ, desc) in METADATA_COLUMNS.items():
        dtype, repeated = _data_type(typ)
        fld: dict[str, Any] = {"@type": "cr:Field", "@id": f"samples/{name}", "name": name, "description": desc, "dataType": dtype,
               "source": {"fileObject": {"@id": meta_file}, "extract": {"column": name}}}
        if repeated:
            fld["repeated"] = True
        fields.append(fld)
    record_sets = [{"@type": "cr:RecordSet", "@id": "samples", "name": "samples",
                    "description": "One record per sample of the store, in sample order (sample_index = position "
                                   "along the arrays' first axis in the zipped store).",
                    "key": {"@id": "samples/sample_id"}, "field": fields}]
    for f in package.files:
        if f.role != "split":
            continue
        rs = f.name.removesuffix(".parquet")
        record_sets.append({
            "@type": "cr:RecordSet", "@id": rs, "name": rs,
            "description": f"Fold (1-5) of each sample under the {rs.removeprefix('split-')} scheme; null: no fold; "
                           "removed: never in a validation subset (related to another fold; earlier rule); "
                           "train_exclusion: bit k-1 set = left out of fold k's training (related to fold k).",
            "field": [{"@type": "cr:Field", "@id": f"{rs}/{c}", "name": c, "dataType": t,
                       "source": {"fileObject": {"@id": f.name}, "extract": {"column": c}}}
                      for c, t in (("sample_index", "sc:Integer"), ("sample_id", "sc:Text"), ("fold", "sc:Integer"),
                                   ("removed", "sc:Boolean"), ("train_exclusion", "sc:Integer"),
                                   ("max_identity_other_folds", "sc:Float"), ("max_identity_to_train", "sc:Float"))]})
    return {
        "@context": CROISSANT_CONTEXT, "@type": "sc:Dataset", "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": f"rnamotif-data-{package.version}", "description": config.description,
        "alternateName": config.title, "version": package.version, "license": LICENCES[config.license][1],
        "url": url, "citeAs": text, "datePublished": published,
        "creator": [{"@type": "sc:Person" if "," in c["name"] else "sc:Organization", "name": c["name"]}
                    for c in config.creators],
        "keywords": list(config.keywords), "isLiveDataset": False,
        "sameAs": [f"https://doi.org/{doi}"] if doi else [],
        "distribution": distribution, "recordSet": record_sets,
        "numberOfSamples": len(store),
    } | ({"identifier": f"doi:{doi}"} if doi else {})


def write_descriptors(package: Package, config: ZenodoConfig, *, doi: str | None = None,
                      concept_doi: str | None = None, published: str, notes: str = "",
                      history: Sequence[Release] = (), file_urls: dict[str, str] | None = None) -> Package:
    """Write ``README.md``, ``croissant.json`` and ``SHA256SUMS`` into the package folder;
    returns the package with them appended (card, Croissant, checksums last).
    ``published`` is the ISO date of publication (its year goes into the citation)."""
    data = [f for f in package.files if f.role not in DESCRIPTOR_ROLES]
    base = package.with_files(data)
    d = package.directory
    store = open_store(package.store)
    (d / "README.md").write_text(dataset_card(base, config, store, doi=doi, concept_doi=concept_doi, year=published[:4],
                                              notes=notes,
                                              history=history))
    (d / "croissant.json").write_text(json.dumps(croissant(base, config, store, doi=doi, published=published, file_urls=file_urls),
                                                 indent=2) + "\n")
    files: list[PackageFile] = data + [hash_file(d / n, r) for n, r in _DESCRIPTORS[:2]]
    (d / "SHA256SUMS").write_text("".join(f"{f.sha256}  {f.name}\n" for f in files))
    return package.with_files(files + [hash_file(d / "SHA256SUMS", "checksums")])

