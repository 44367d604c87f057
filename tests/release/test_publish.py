"""Release packages, the Zenodo client, publishing and downloading, against a local
Zenodo-API server on 127.0.0.1 (tests/zenodo_server.py); no test reaches the internet."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rnamotif_data.cli import publish as publish_cli
from rnamotif_data.errors import ConfigError, DownloadError, RegistryError, ZenodoAuthError, ZenodoError
from rnamotif_data.learn.dataset import RNAMotifDataset
from rnamotif_data.release import publish as publish_mod
from rnamotif_data.release.package import archive_name, load_zenodo_config, prepare_package
from rnamotif_data.release.zenodo import ZenodoClient, check_limits
from rnamotif_data.storage.download import download, record_files
from rnamotif_data.storage.registry import get_release, load_registry
from rnamotif_data.storage.store import open_store

from ..zenodo_server import FakeZenodo

TOKEN = "tok-9f3aC1-SECRET-e2e7"
METADATA = {"upload_type": "dataset", "title": "t", "creators": [{"name": "Doe, Jane"}], "description": "d",
            "access_right": "open", "license": "cc-by-4.0"}


class Sleeps(list):
    """Records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def zenodo():
    server = FakeZenodo(tokens={TOKEN: {"deposit:write", "deposit:actions"},
                                "write-only": {"deposit:write"}}).start()
    yield server
    server.stop()


def _client(server, token=TOKEN, **kw) -> ZenodoClient:
    kw.setdefault("sleep", Sleeps())
    return ZenodoClient(server.url, token, **kw)


def _opts(store, version, out, server, registry, **kw) -> publish_mod.PublishOptions:
    return publish_mod.PublishOptions(store=store, version=version, out=Path(out), config=load_zenodo_config(),
                                      api_url=server.url, registry=Path(registry), verify_values=False, **kw)


def _no_token_anywhere(*places) -> None:
    for p in places:
        if isinstance(p, Path):
            for f in [p] if p.is_file() else p.rglob("*"):
                if f.is_file():
                    assert TOKEN.encode() not in f.read_bytes(), f"token written into {f}"
        else:
            assert TOKEN not in str(p)


# ---------------------------------------------------------------------- the client
def test_client_bad_token_is_a_clear_401(zenodo, tmp_path):
    bad = "not-a-valid-token-XYZ"
    with pytest.raises(ZenodoAuthError) as exc:
        _client(zenodo, token=bad).create_deposition()
    msg = str(exc.value)
    assert exc.value.status == 401 and "401" in msg and "ZENODO_TOKEN" in msg and "deposit:write" in msg
    assert bad not in msg


def test_client_token_without_actions_scope_gets_403_on_publish(zenodo, tmp_path):
    c = _client(zenodo, token="write-only")
    draft = c.create_deposition()
    f = tmp_path / "a.txt"
    f.write_text("data")
    c.upload(draft, f)
    c.update_metadata(draft, METADATA)
    with pytest.raises(ZenodoAuthError) as exc:
        c.publish(draft)
    assert exc.value.status == 403 and "deposit:actions" in str(exc.value)


def test_client_honours_retry_after_on_429_and_backs_off_on_500(zenodo):
    sleeps = Sleeps()
    c = _client(zenodo, sleep=sleeps, backoff=0.5)
    zenodo.fail("POST", r"^/api/deposit/depositions$", 429, times=1, retry_after="7")
    zenodo.fail("GET", r"^/api/deposit/depositions/\d+$", 500, times=2)
    draft = c.create_deposition()
    assert c.get_deposition(draft["id"])["id"] == draft["id"]
    assert sleeps == [7.0, 0.5, 1.0]  # Retry-After, then exponential backoff
    assert zenodo.deposition_count() == 1


def test_client_gives_up_after_retries_with_zenodo_message(zenodo):
    c = _client(zenodo, max_retries=2)
    zenodo.fail("POST", r"^/api/deposit/depositions$", 503, times=10)
    with pytest.raises(ZenodoError) as exc:
        c.create_deposition()
    assert exc.value.status == 503 and "Internal error" in str(exc.value)


def test_client_validation_error_names_the_field(zenodo):
    c = _client(zenodo)
    draft = c.create_deposition()
    with pytest.raises(ZenodoError) as exc:
        c.update_metadata(draft, {k: v for k, v in METADATA.items() if k != "title"})
    assert exc.value.status == 400 and "metadata.title" in str(exc.value)


def test_upload_md5_mismatch_is_uploaded_again_then_refused(zenodo, tmp_path):
    c = _client(zenodo)
    draft = c.create_deposition()
    f = tmp_path / "cubes.bin"
    f.write_bytes(bytes(range(256)) * 64)
    zenodo.corrupt_upload("cubes.bin", times=1)
    ans = c.upload(draft, f)
    assert ans["checksum"] == "md5:" + hashlib.md5(f.read_bytes()).hexdigest()
    assert zenodo.blobs[draft["id"]]["cubes.bin"] == f.read_bytes()
    zenodo.corrupt_upload("cubes.bin", times=5)
    with pytest.raises(ZenodoError, match="md5"):
        c.upload(draft, f, attempts=2)


def test_zenodo_limits_are_checked_before_upload():
    with pytest.raises(ZenodoError, match="100 files"):
        check_limits({f"f{i}": 1 for i in range(101)})
    with pytest.raises(ZenodoError, match="50 GB"):
        check_limits({"a.zip": 51 * 10**9})
    check_limits({"a.zip": 10})


def test_zenodo_config_errors_name_file_and_field(tmp_path):
    p = tmp_path / "zenodo.yaml"
    p.write_text("title: x\ndescription: y\ncreators:\n  - affiliation: Lab\n")
    with pytest.raises(ConfigError, match=r"zenodo.yaml: creators\[0\] needs a 'name'"):
        load_zenodo_config(p)
    p.write_text("title: x\ndescription: y\ncreators:\n  - name: 'Doe, Jane'\nlicense: mit\n")
    with pytest.raises(ConfigError, match="license 'mit'"):
        load_zenodo_config(p)
    p.write_text("title: x\ndescription: y\ncreators:\n  - {name: 'Doe, Jane', orcid: '1234'}\n")
    with pytest.raises(ConfigError, match="ORCID"):
        load_zenodo_config(p)
    assert load_zenodo_config().license == "cc-by-4.0"


# ---------------------------------------------------------------------- the package
def test_package_zip_is_a_zarr_zipstore_equal_to_the_store_and_reproducible(demo_store, tmp_path):
    zarr = pytest.importorskip("zarr")
    a = prepare_package(demo_store, tmp_path / "a", "1.0.0")
    b = prepare_package(demo_store, tmp_path / "b", "1.0.0")
    assert a.archive.sha256 == b.archive.sha256  # byte-reproducible
    with zipfile.ZipFile(a.archive.path) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        names = set(zf.namelist())
    assert {"zarr.json", "metadata.parquet", "checksums.sha256"} <= names
    assert not [n for n in names if n.startswith("splits/")]  # one entry: no split is honest
    store = open_store(demo_store)
    g = zarr.open_group(zarr.storage.ZipStore(a.archive.path, mode="r"), mode="r")
    assert g.attrs["dataset_version"] == "1.0.0"
    ref = store.read_batch(slice(None))
    for name in ("density", "zone", "labels", "nucleotide"):
        assert np.array_equal(g[name][:], ref[name]), name
    assert (tmp_path / "a" / "metadata.parquet").read_bytes() == Path(demo_store, "metadata.parquet").read_bytes()


def test_croissant_description_reads_the_metadata_records(demo_store, tmp_path):
    mlc = pytest.importorskip("mlcroissant", reason="mlcroissant (dev extra) validates the Croissant JSON-LD")
    lines = publish_mod.publish(_opts(demo_store, "0.1.0", tmp_path / "pkg", _Offline(), tmp_path / "reg.json"),
                                dry_run=True)
    assert lines
    ds = mlc.Dataset(jsonld=str(tmp_path / "pkg" / "croissant.json"))
    records = list(ds.records("samples"))
    ids = [r["samples/sample_id"].decode() for r in records]
    assert ids == list(open_store(demo_store).metadata["sample_id"])
    card = (tmp_path / "pkg" / "README.md").read_text()
    assert "### `similarity`" in card and "Not made: " in card and "fewer than the 5 folds" in card


class _Offline:
    """Stands in for a server in dry runs: only its URL is used."""

    url = "https://zenodo.org/api"


def test_dry_run_prints_contents_and_planned_calls(demo_store, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ZENODO_TOKEN", raising=False)
    out = tmp_path / "pkg"
    rc = publish_cli.main(["--store", demo_store, "--version", "0.1.0", "--dry-run", "--out", str(out),
                           "--registry", str(tmp_path / "reg.json"), "--no-verify-values"])
    text = capsys.readouterr().out
    assert rc == 0
    for name in (archive_name("0.1.0"), "metadata.parquet", "failures.parquet", "qc.png", "README.md",
                 "croissant.json", "SHA256SUMS"):
        assert name in text and (out / name).is_file()
    assert "POST   /deposit/depositions " in text and "actions/publish" in text and "PUT    {links.bucket}/" in text
    card = (out / "README.md").read_text()
    for heading in ("## How it was built", "## Classes", "## Quality", "## Splits", "## Limitations", "## Licence",
                    "## How to cite", "## Changelog"):
        assert heading in card
    assert "CC-BY-4.0" in card and "## Splits" in card and "Not made: " in card
    assert "What the cube task measures" in card and "motif versus \"unknown\"" in card  # issue 38, item 2
    sums = dict(line.split("  ")[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    for name, digest in sums.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert not load_registry(tmp_path / "reg.json")  # nothing registered


# ---------------------------------------------------------------------- end to end
def test_publish_two_versions_then_download_the_first(demo_store, zenodo, tmp_path, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ZENODO_TOKEN", TOKEN)
    registry = tmp_path / "versions.json"
    sleeps = Sleeps()

    # v1.0.0 through the library call, with the documented failures on the way
    zenodo.fail("POST", r"^/api/deposit/depositions$", 429, retry_after="3")
    zenodo.fail("PUT", r"^/api/files/.+/metadata\.parquet$", 500)
    zenodo.corrupt_upload(archive_name("1.0.0"))
    r1 = publish_mod.publish(_opts(demo_store, "1.0.0", tmp_path / "v1", zenodo, registry, notes="first release"),
                             progress=False, client=ZenodoClient(zenodo.url, TOKEN, sleep=sleeps, backoff=0.01))
    assert sleeps[0] == 3.0 and len(sleeps) == 2
    assert r1.doi == f"10.5072/zenodo.{r1.record_id}" and r1.concept_doi
    rec1 = zenodo._record(r1.record_id)
    assert {f["key"] for f in rec1["files"]} == {f.name for f in r1.files}
    card1 = (tmp_path / "v1" / "README.md").read_text()
    assert f"https://doi.org/{r1.doi}" in card1  # the card was rewritten with the reserved DOI
    assert zenodo.blobs[r1.record_id]["README.md"] == (tmp_path / "v1" / "README.md").read_bytes()

    # v1.1.0 through the CLI: a new version whose inherited files are replaced, not duplicated
    rc = publish_cli.main(["--store", demo_store, "--version", "1.1.0", "--out", str(tmp_path / "v2"),
                           "--api-url", zenodo.url, "--registry", str(registry), "--notes", "same cubes, new card",
                           "--no-progress", "--no-verify-values"])
    assert rc == 0
    reg = load_registry(registry)
    assert list(reg) == ["1.0.0", "1.1.0"]
    r2 = reg["1.1.0"]
    assert r2.record_id != r1.record_id and r2.concept_doi == r1.concept_doi
    keys2 = [f["key"] for f in zenodo._record(r2.record_id)["files"]]
    assert sorted(keys2) == sorted(f.name for f in r2.files) and len(keys2) == len(set(keys2))
    assert archive_name("1.0.0") not in keys2 and archive_name("1.1.0") in keys2
    unchanged = {f.name for f in r1.files} & {f.name for f in r2.files}
    assert {"metadata.parquet", "failures.parquet"} <= unchanged  # kept, identical md5
    assert zenodo._record(r1.record_id)["metadata"]["relations"]["version"][0]["is_last"] is False
    assert "## Changelog" in (tmp_path / "v2" / "README.md").read_text()
    assert "1.0.0 (" in (tmp_path / "v2" / "README.md").read_text()

    # download v1.0.0 by version into a fresh cache and open it
    monkeypatch.setenv("RNAMOTIF_DATA_REGISTRY", str(registry))
    cache = tmp_path / "cache"
    zenodo.drop_download(archive_name("1.0.0"), after=200_000)
    with pytest.raises(ConfigError, match="fewer than the 5 folds; use split='all'"):  # the README's call; one entry
        RNAMotifDataset(root=cache, version="1.0.0", download=True, split="fold1")
    ds = RNAMotifDataset(root=cache, version="1.0.0", download=True, split="all", subset="train")
    resumed = [r["range"] for r in zenodo.requests if r["range"]]  # the transfer resumed where it stopped
    assert len(resumed) == 1 and 0 < int(resumed[0].removeprefix("bytes=").rstrip("-")) <= 200_000
    assert "1.1.0 is available" in caplog.text and "newer version" in caplog.text
    ref = RNAMotifDataset(root=demo_store, split="all", subset="train")  # one entry: no folds
    assert len(ds) == len(ref) > 0
    assert list(ds.metadata["sample_id"]) == list(ref.metadata["sample_id"])
    for i in range(len(ds)):
        (x, y), (xr, yr) = ds[i], ref[i]
        assert torch.equal(x, xr) and y == yr
    vdir = cache / "1.0.0"
    assert not (vdir / archive_name("1.0.0")).exists()  # unpacked and removed
    assert (vdir / "README.md").is_file() and (vdir / "croissant.json").is_file()

    # the cache is used offline, with the server gone
    zenodo.stop()
    n = len(zenodo.requests)
    again = RNAMotifDataset(root=cache, version="1.0.0", download=True, split="all")
    assert len(again) == len(ref)
    assert len(zenodo.requests) == n
    with pytest.raises(DownloadError, match="not in the cache .* offline mode is on"):
        download("1.1.0", root=cache, offline=True)

    captured = capsys.readouterr()
    _no_token_anywhere(tmp_path, caplog.text, captured.out, captured.err)


def test_failed_publish_resumes_the_same_draft(demo_store, zenodo, tmp_path):
    registry = tmp_path / "versions.json"
    opts = _opts(demo_store, "2.0.0", tmp_path / "pkg", zenodo, registry)
    zenodo.fail("POST", r"/actions/publish$", 500, times=10)
    with pytest.raises(ZenodoError, match="500") as exc:
        publish_mod.publish(opts, progress=False, client=_client(zenodo, max_retries=1))
    assert "run the same command again" in str(exc.value) and TOKEN not in str(exc.value)
    assert (tmp_path / "pkg" / ".zenodo-draft.json").exists()
    assert TOKEN not in (tmp_path / "pkg" / ".zenodo-draft.json").read_text()
    uploads = sum(r["method"] == "PUT" and r["path"].startswith("/api/files/") for r in zenodo.requests)
    zenodo._faults.clear()
    rel = publish_mod.publish(opts, progress=False, client=_client(zenodo))
    assert zenodo.deposition_count() == 1  # the same draft, not a second one
    assert sum(r["method"] == "PUT" and r["path"].startswith("/api/files/") for r in zenodo.requests) == uploads
    assert get_release("2.0.0", registry).record_id == rel.record_id
    assert not (tmp_path / "pkg" / ".zenodo-draft.json").exists()
    with pytest.raises(RegistryError, match="already published"):
        publish_mod.publish(opts, progress=False, client=_client(zenodo))


def test_download_refuses_a_corrupted_file_and_unknown_versions(demo_store, zenodo, tmp_path, monkeypatch):
    registry = tmp_path / "versions.json"
    rel = publish_mod.publish(_opts(demo_store, "1.0.0", tmp_path / "pkg", zenodo, registry), progress=False,
                              client=_client(zenodo))
    zenodo.corrupt_download("metadata.parquet")
    with pytest.raises(DownloadError, match="metadata.parquet"):
        download("1.0.0", root=tmp_path / "cache", registry=registry, progress=False, retries=0)
    with pytest.raises(RegistryError, match="known versions: 1.0.0"):
        download("9.9.9", root=tmp_path / "cache", registry=registry)
    with pytest.raises(ConfigError, match="needs version="):
        RNAMotifDataset(root=demo_store, download=True)
    # metadata only, from an old-style record listing (filename + hex checksum)
    zenodo._corrupt_downloads.clear()
    zenodo.old_style_records.add(rel.record_id)
    assert record_files(zenodo._record(rel.record_id))["metadata.parquet"]["md5"] == rel.file("metadata.parquet").md5
    vdir = download("1.0.0", root=tmp_path / "cache2", registry=registry, metadata_only=True, progress=False)
    assert (vdir / "metadata.parquet").is_file() and not (vdir / "rnamotif.zarr").exists()


def test_published_but_unregistered_draft_is_registered_as_published(demo_store, zenodo, tmp_path, monkeypatch):
    registry = tmp_path / "versions.json"
    opts = _opts(demo_store, "3.0.0", tmp_path / "pkg", zenodo, registry)
    real_add = publish_mod.add_release

    def crash(*a, **k):
        raise OSError("disk full while writing the registry")

    monkeypatch.setattr(publish_mod, "_today", lambda: "2026-11-21")
    monkeypatch.setattr(publish_mod, "add_release", crash)
    with pytest.raises(OSError, match="disk full"):
        publish_mod.publish(opts, progress=False, client=_client(zenodo))
    # run again on another day: the card written now differs from the published one
    monkeypatch.setattr(publish_mod, "add_release", real_add)
    monkeypatch.setattr(publish_mod, "_today", lambda: "2027-01-02")
    rel = publish_mod.publish(opts, progress=False, client=_client(zenodo))
    assert zenodo.deposition_count() == 1
    published = {n: hashlib.md5(b).hexdigest() for n, b in zenodo.blobs[rel.record_id].items()}
    assert {f.name: f.md5 for f in rel.files} == published
    card = rel.file("README.md")
    assert hashlib.sha256((tmp_path / "pkg" / "README.md").read_bytes()).hexdigest() == card.sha256
    assert "(2026)" in (tmp_path / "pkg" / "README.md").read_text()


def test_package_of_a_multi_entry_store_ships_its_splits(multi_entry_store, tmp_path):
    """A store with enough independent groups ships the similarity and entry splits (in
    the zip and beside it), described in the Croissant file and the card, with the
    shortcut audit in the card."""
    mlc = pytest.importorskip("mlcroissant", reason="mlcroissant (dev extra) validates the Croissant JSON-LD")
    lines = publish_mod.publish(_opts(multi_entry_store, "0.1.0", tmp_path / "pkg", _Offline(),
                                      tmp_path / "reg.json"), dry_run=True)
    assert lines
    pkg = tmp_path / "pkg"
    with zipfile.ZipFile(pkg / archive_name("0.1.0")) as zf:
        assert {"splits/similarity.parquet", "splits/entry.parquet"} <= set(zf.namelist())
    ds = mlc.Dataset(jsonld=str(pkg / "croissant.json"))
    folds = [r["split-similarity/fold"] for r in ds.records("split-similarity")]
    pruned = [r["split-similarity/train_exclusion"] for r in ds.records("split-similarity")]
    assert sorted(set(folds)) == [1, 2, 3, 4, 5] and len(folds) == len(open_store(multi_entry_store))
    assert any(pruned)  # training pruned, not evaluation
    card = (pkg / "README.md").read_text()
    assert "## Shortcut audit" in card and "unknown vs motif: balanced accuracy" in card
    assert "| fold1 |" in card and "test sharing near-identical" in card
