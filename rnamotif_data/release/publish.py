"""Publish a built store as a new version of the dataset on Zenodo.

Usage::

    rnamotif publish --store STORE --version 1.0.0 [--out DIR] [--notes TEXT]
        [--zenodo-config zenodo.yaml] [--dry-run] [--sandbox | --api-url URL]
        [--registry FILE] [--parent RECORD_ID | --new-concept]

Steps:

1. check the store (``rnamotif_data.release.verify``) and that the version is new and higher than
   every registered one;
2. write the release package into ``--out`` (default ``<store>-release-<version>``
   beside the store; :mod:`rnamotif_data.release.package`, :mod:`rnamotif_data.release.card`);
3. ``--dry-run``: print the package contents and the planned Zenodo calls, and stop (no
   network, no token needed);
4. otherwise (token from ``$ZENODO_TOKEN`` only): open a draft — a new version of the
   latest registered version (or of ``--parent``), whose inherited files are deleted
   unless identical to a package file, or a new deposition for the first version (or
   with ``--new-concept``); write the card and Croissant again with the draft's reserved
   DOI; upload every file not already on the draft, each checked against Zenodo's md5;
   set the metadata from ``zenodo.yaml``; publish;
5. add the version to the registry (``rnamotif_data/versions.json`` for zenodo.org; for
   ``--sandbox`` or ``--api-url`` the file ``versions.json`` in the package folder unless
   ``--registry`` is given).

A failed run is resumed by running the same command again: the draft's id is kept in
``<out>/.zenodo-draft.json`` (no token in it), files already uploaded with the right md5
are not sent again, and a draft that was published before the registry was updated is
only registered.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from rnamotif_data.errors import InputError, RegistryError, StoreError, ZenodoError
from rnamotif_data.release.card import DESCRIPTOR_ROLES, format_size, write_descriptors
from rnamotif_data.release.package import Package, ZenodoConfig, hash_file, prepare_package
from rnamotif_data.release.verify import verify_store
from rnamotif_data.release.zenodo import ZenodoClient, check_limits, token_from_env
from rnamotif_data.storage.layout import CHECKSUMS_FILE, FAILURES_FILE, METADATA_FILE
from rnamotif_data.storage.outputs import claim_output
from rnamotif_data.storage.registry import Release, ReleaseFile, add_release, load_registry, parse_version

log = logging.getLogger("rnamotif_data.release.publish")

__all__ = ["PublishOptions", "publish", "planned_calls"]

STATE_FILE = ".zenodo-draft.json"
#: the files ``publish`` owns in its package folder (``opts.out``): the only ones it writes
#: or replaces there (issue 39: a user's README.md or qc.png is refused, in a dry run too)
PUBLISH_FILES = ("rnamotif-data-*.zarr.zip", METADATA_FILE, FAILURES_FILE, "split-*.parquet", "qc.png", "README.md",
                 "croissant.json", "SHA256SUMS", CHECKSUMS_FILE, STATE_FILE, "versions.json")


def _today() -> str:
    return _dt.date.today().isoformat()


def default_out(store: str, version: str) -> Path:
    """``<store>-release-<version>`` beside the store.

    Raises
    ------
    RegistryError
        If ``version`` is not a dataset version (``../../evil`` would name a folder elsewhere).
    """
    parse_version(version)
    p = Path(str(store).rstrip("/"))
    return p.with_name(f"{p.stem}-release-{version}")


@dataclass(frozen=True)
class PublishOptions:
    """What one publish run does.

    Attributes
    ----------
    store: local store path.
    version: dataset version to publish (PEP 440, e.g. ``1.0.0``).
    out: package folder.
    config: Zenodo metadata (:func:`rnamotif_data.release.package.load_zenodo_config`).
    api_url: Zenodo API base URL (no trailing slash).
    registry: versions registry file to update.
    notes: what changed in this version.
    parent: record id to make a new version of (default: the latest registered).
    new_concept: start a new dataset instead of a new version.
    verify_values: also check array values when verifying the store.
    """

    store: str
    version: str
    out: Path
    config: ZenodoConfig
    api_url: str
    registry: Path
    notes: str = ""
    parent: int | None = None
    new_concept: bool = False
    verify_values: bool = True

    def __post_init__(self):
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))


def _check_version(opts: PublishOptions) -> tuple[dict[str, Release], Release | None]:
    """Registered releases and the parent release (to make a new version of), or None."""
    releases = load_registry(opts.registry)
    v = parse_version(opts.version)
    if opts.version in releases:
        raise RegistryError(f"version {opts.version} is already published (DOI {releases[opts.version].doi}, "
                            f"registry {opts.registry}); choose a new version")
    same_api = [r for r in releases.values() if r.api_url.rstrip("/") == opts.api_url]
    if same_api and v <= parse_version(same_api[-1].version):
        raise RegistryError(f"version {opts.version} is not higher than the latest published version "
                            f"{same_api[-1].version} ({opts.registry})")
    parent = None
    if opts.parent is not None:
        parent = next((r for r in same_api if r.record_id == opts.parent), None)
        if parent is None:
            parent = Release(version="?", record_id=opts.parent, doi="", concept_doi="", api_url=opts.api_url,
                             published="", archive="", files=())
    elif same_api and not opts.new_concept:
        parent = same_api[-1]
    return releases, parent


def planned_calls(package: Package, opts: PublishOptions, parent: Release | None) -> list[str]:
    """The Zenodo API calls a publish run will make, one line each (for ``--dry-run``)."""
    calls = []
    if parent is None:
        calls.append("POST   /deposit/depositions  (new deposition, DOI pre-reserved)")
    else:
        calls += [f"POST   /deposit/depositions/{parent.record_id}/actions/newversion  (new version of "
                  f"{parent.version}, record {parent.record_id})",
                  "GET    {links.latest_draft}  (the new draft; it inherits the previous files)"]
    calls.append("GET    /deposit/depositions/{id}/files")
    md5 = {f.name: f.md5 for f in package.files}
    kept = set()
    for f in (parent.files if parent else ()):
        if md5.get(f.name) == f.md5:
            kept.add(f.name)
            calls.append(f"       keep inherited {f.name} (same md5)")
        else:
            calls.append(f"DELETE /deposit/depositions/{{id}}/files/{{file_id}}  (inherited {f.name})")
    for pf in package.files:
        if pf.name in kept:
            continue
        note = " (rewritten with the reserved DOI first)" if pf.role in DESCRIPTOR_ROLES else ""
        calls.append(f"PUT    {{links.bucket}}/{pf.name}  ({format_size(pf.size)}, md5 checked against the answer){note}")
    m = opts.config.metadata(opts.version)
    calls += [f"PUT    /deposit/depositions/{{id}}  (metadata: upload_type dataset, title {m['title']!r}, version "
              f"{opts.version}, {len(m['creators'])} creator(s), license {m['license']}, "
              f"{len(m.get('keywords', []))} keywords, {len(m.get('related_identifiers', []))} related identifiers)",
              "POST   /deposit/depositions/{id}/actions/publish",
              f"then: add version {opts.version} to {opts.registry}"]
    return calls


def _describe(package: Package) -> list[str]:
    total = sum(f.size for f in package.files)
    lines = [f"Release package rnamotif-data {package.version} in {package.directory} "
             f"({len(package.files)} files, {format_size(total)}):"]
    width = max(len(f.name) for f in package.files)
    for f in package.files:
        lines.append(f"  {f.name:<{width}}  {format_size(f.size):>10}  sha256 {f.sha256}")
    return lines


def _draft_ids(draft: dict) -> tuple[int, str | None, str | None]:
    """(record id, reserved DOI, concept DOI) of a draft deposition."""
    pre = (draft.get("metadata") or {}).get("prereserve_doi") or {}
    record_id = int(pre.get("recid") or draft.get("record_id") or draft["id"])
    return record_id, pre.get("doi") or draft.get("doi"), draft.get("conceptdoi")


def _open_draft(client: ZenodoClient, opts: PublishOptions, parent: Release | None) -> dict:
    """The draft to fill: the one a failed earlier run left (``.zenodo-draft.json``), else a
    new version of ``parent``, else a new deposition."""
    state_path = opts.out / STATE_FILE
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{state_path}: not the state of an earlier run ({exc}); delete it to start a new "
                             "draft") from None
        if state.get("api_url") == opts.api_url and state.get("version") == opts.version:
            draft = client.get_deposition(state["deposition_id"])
            log.info("continuing draft %s left by an earlier run (%s)", draft["id"], state_path)
            return draft
        log.warning("%s is for version %s at %s; starting a new draft", state_path, state.get("version"),
                    state.get("api_url"))
    if parent is not None:
        draft = client.new_version(parent.record_id)
        log.info("new version draft %s of record %s (version %s)", draft["id"], parent.record_id, parent.version)
    else:
        draft = client.create_deposition()
        log.info("new deposition draft %s", draft["id"])
    state_path.write_text(json.dumps({"api_url": opts.api_url, "version": opts.version,
                                      "deposition_id": draft["id"]}, indent=2) + "\n")
    return draft


def _draft_files(client: ZenodoClient, draft: dict) -> list[tuple[str, str, dict]]:
    """``(name, hex md5, entry)`` of each file on a draft (``filename`` or ``key`` + hex
    checksum); raises ZenodoError for an entry with neither name."""
    out = []
    for e in client.list_files(draft):
        name = e.get("filename") or e.get("key")
        if not name:
            raise ZenodoError(f"Zenodo lists a file of draft {draft.get('id')} without a filename or key: {e}")
        out.append((str(name), str(e.get("checksum", "")).removeprefix("md5:"), e))
    return out


def _sync_files(client: ZenodoClient, draft: dict, package: Package, progress: bool) -> None:
    """Make the draft's files exactly the package's: delete inherited or stale files, keep
    identical ones, upload the rest (md5-checked)."""
    wanted = {f.name: f for f in package.files}
    have = set()
    for name, md5, e in _draft_files(client, draft):
        if name in wanted and wanted[name].md5 == md5 and name not in have:
            have.add(name)
            log.info("%s is already on the draft (md5 %s)", name, md5)
            continue
        log.info("deleting %s from draft %s (%s)", name, draft["id"],
                 "not in this package" if name not in wanted else "different content")
        client.delete_file(draft, e)
    todo = [f for f in package.files if f.name not in have]
    with tqdm(total=sum(f.size for f in todo), unit="B", unit_scale=True, desc="upload",
              disable=not progress or not todo) as bar:
        for f in todo:
            client.upload(draft, f.path, f.name, md5=f.md5)
            log.info("uploaded %s (%s, md5 verified)", f.name, format_size(f.size))
            bar.update(f.size)
    final = {name: md5 for name, md5, _ in _draft_files(client, draft)}
    expected = {n: f.md5 for n, f in wanted.items()}
    if final != expected:
        raise ZenodoError(f"draft {draft['id']} files differ from the package after upload: "
                          f"extra {sorted(set(final) - set(expected))}, missing {sorted(set(expected) - set(final))}, "
                          f"different {sorted(n for n in final if n in expected and final[n] != expected[n])}")


def _adopt_published(client: ZenodoClient, draft: dict, package: Package, record_id: int) -> Package:
    """The package as Zenodo holds it, for a draft an earlier run published: local files
    whose md5 differs from the record's (the card and Croissant carry the run's date and
    DOI) are replaced by the record's bytes, so the registry lists what was published."""
    local = {f.name: f for f in package.files}
    files = []
    for name, md5, _ in _draft_files(client, draft):
        f = local.get(name)
        if f is None or f.md5 != md5:
            path = package.directory / name
            path.write_bytes(client.request("GET", client.file_url(record_id, name)).content)
            f = hash_file(path, f.role if f else "card")
            if f.md5 != md5:
                raise ZenodoError(f"{name}: the copy fetched from record {record_id} does not match its md5 {md5}")
        files.append(f)
    order = {f.name: i for i, f in enumerate(package.files)}
    return package.with_files(sorted(files, key=lambda f: order.get(f.name, len(order))))


def publish(opts: PublishOptions, *, dry_run: bool = False, progress: bool = True,
            client: ZenodoClient | None = None) -> Release | list[str]:
    """Prepare the package and publish it (module docstring).

    Returns
    -------
    Release
        The registered release; with ``dry_run``, the lines that were printed instead.

    Raises
    ------
    StoreError
        If the store fails verification.
    RegistryError
        If the version exists already or is not higher than the latest.
    ZenodoError, ZenodoAuthError
        If Zenodo refuses a call (the message has Zenodo's reason, never the token).
    """
    releases, parent = _check_version(opts)
    if not dry_run and client is None:
        client = ZenodoClient(opts.api_url, token_from_env())  # before the packaging work
        client.check_token()
    problems, _ = verify_store(opts.store, values=opts.verify_values)
    if problems:
        raise StoreError(f"{opts.store}: fails verification, not publishing: " + "; ".join(problems[:5])
                         + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    today = _today()
    history = [r for r in releases.values() if r.api_url.rstrip("/") == opts.api_url]
    concept = parent.concept_doi if parent and parent.concept_doi else None
    # an earlier run's files are kept (its Zenodo draft is resumed) and rewritten; anything else refused
    claim = claim_output(opts.out, "publish", PUBLISH_FILES, mode="resume")
    package = prepare_package(opts.store, opts.out, opts.version)
    package = write_descriptors(package, opts.config, concept_doi=concept, published=today, notes=opts.notes,
                                history=history)
    check_limits(package.sizes)
    if dry_run:
        lines = _describe(package) + ["", f"Planned Zenodo calls ({opts.api_url}; token from $ZENODO_TOKEN; "
                                          "--dry-run sends nothing):"]
        lines += [f"  {i:2d}. {c}" for i, c in enumerate(planned_calls(package, opts, parent), 1)]
        claim.complete(dry_run=True)
        return lines
    assert client is not None  # made above when not dry_run
    draft = _open_draft(client, opts, parent)
    record_id, doi, concept_doi = _draft_ids(draft)
    concept_doi = concept_doi or concept
    if not draft.get("submitted"):
        file_urls = {f.name: client.file_url(record_id, f.name) for f in package.files}
        package = write_descriptors(package, opts.config, doi=doi, concept_doi=concept_doi, published=today,
                                    notes=opts.notes, history=history, file_urls=file_urls)
        _sync_files(client, draft, package, progress)
        client.update_metadata(draft, opts.config.metadata(opts.version, notes=opts.notes))
        draft = client.publish(draft)
        log.info("published %s as record %s, DOI %s", opts.version, draft.get("record_id"), draft.get("doi"))
    else:
        log.info("draft %s was already published by an earlier run; registering it", draft["id"])
        package = _adopt_published(client, draft, package, record_id)
    record_id = int(draft.get("record_id") or record_id)
    release = Release(
        version=opts.version, record_id=record_id, doi=draft.get("doi") or doi or "",
        concept_doi=draft.get("conceptdoi") or concept_doi or "", api_url=opts.api_url, published=_today(),
        archive=package.archive.name, notes=opts.notes,
        files=tuple(ReleaseFile(name=f.name, size=f.size, sha256=f.sha256, md5=f.md5,
                                url=client.file_url(record_id, f.name)) for f in package.files))
    path = add_release(release, opts.registry)
    (opts.out / STATE_FILE).unlink(missing_ok=True)
    claim.complete()
    log.info("registered version %s in %s", opts.version, path)
    return release
