"""Sources against a local HTTP server on 127.0.0.1 that serves RCSB- and EMDB-shaped
responses and misbehaves on demand. The cache must never hold a partial or corrupt file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import gemmi
import pytest

from rnamotif_data.em.maps import read_map
from rnamotif_data.errors import DownloadError, InputError, NoMapError, NotEMEntryError, OfflineError, SourceError
from rnamotif_data.inputs.sources import SourceConfig, Sources
from rnamotif_data.rna.structure import read_model

from ..conftest import DEMO
from ..http_helpers import LocalServer, QuietHandler

# RCSB Data API entry records, shaped as /rest/v1/core/entry/{id} returns them (trimmed)
RECORDS = {
    "6V5B": {
        "rcsb_id": "6V5B",
        "rcsb_entry_container_identifiers": {"entry_id": "6V5B", "emdb_ids": ["EMD-21051", "EMD-21052"]},
        "pdbx_database_related": [
            {"content_type": "other EM volume", "db_id": "EMD-21052", "db_name": "EMDB"},
            {"content_type": "associated EM volume", "db_id": "EMD-21051", "db_name": "EMDB"},
        ],
        "exptl": [{"method": "ELECTRON MICROSCOPY"}],
        "rcsb_entry_info": {"resolution_combined": [3.7], "selected_polymer_entity_types": "Nucleic acid (only)"},
        "rcsb_accession_info": {"initial_release_date": "2020-02-12T00:00:00+0000"},
    },
    "1S72": {
        "rcsb_id": "1S72",
        "rcsb_entry_container_identifiers": {"entry_id": "1S72"},
        "exptl": [{"method": "X-RAY DIFFRACTION"}],
        "rcsb_entry_info": {"resolution_combined": [2.4]},
    },
    "7ABC": {
        "rcsb_id": "7ABC",
        "rcsb_entry_container_identifiers": {"entry_id": "7ABC"},
        "exptl": [{"method": "ELECTRON MICROSCOPY"}],
        "rcsb_entry_info": {},
    },
}


def _mmcif_gz() -> bytes:
    st = gemmi.read_structure(str(DEMO / "mirror" / "pdb" / "6v5b.pdb"))
    st.setup_entities()
    return gzip.compress(st.make_mmcif_document().as_string().encode())


class Server(LocalServer):
    """Serves /entry/{ID}, /model/{ID}.cif.gz and /emdb/EMD-{N}/map/emd_{N}.map.gz.

    ``faults[path]`` is a list of actions taken on successive requests to ``path``:
    ``503``, ``429`` (Retry-After: 1), ``404``, ``drop`` (full Content-Length, half the
    body, connection closed), ``badgzip`` (a truncated gzip with a matching length).
    """

    def __init__(self):
        self.files = {"/model/6V5B.cif.gz": _mmcif_gz(),
                      "/emdb/EMD-21051/map/emd_21051.map.gz": (DEMO / "mirror" / "emdb" / "emd_21051.map.gz").read_bytes()}
        self.files.update({f"/entry/{k}": json.dumps(v).encode() for k, v in RECORDS.items()})
        self.faults: dict[str, list[str]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(QuietHandler):

            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                queue = server.faults.get(self.path, [])
                action = queue.pop(0) if queue else "ok"
                body = server.files.get(self.path)
                if body is None or action == "404":
                    return self._send(404, b'{"message": "not found"}')
                if action == "503":
                    return self._send(503, b"busy")
                if action == "429":
                    return self._send(429, b"slow down", {"Retry-After": "1"})
                if action == "badgzip":
                    return self._send(200, body[: len(body) // 2])
                if action == "drop":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(200, body)

        super().__init__(Handler)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def sources(server, tmp_path):
    server.faults.clear()
    server.hits.clear()
    cfg = SourceConfig(cache_dir=tmp_path / "cache", entry_url=server.url + "/entry/{pdb_id}",
                       model_url=server.url + "/model/{pdb_id}.cif.gz",
                       map_url=server.url + "/emdb/EMD-{number}/map/emd_{number}.map.gz",
                       timeout=10, retries=3, attempts=3, backoff=0.0)
    return Sources(cfg)


def _cache_files(src: Sources) -> list[Path]:
    return sorted(p for p in Path(src.config.cache_dir).rglob("*") if p.is_file())


def _assert_clean_cache(src: Sources) -> None:
    """No partial files; every data file is intact."""
    for p in _cache_files(src):
        assert not p.name.endswith(".part"), p
        if p.name.endswith(".gz"):
            gzip.decompress(p.read_bytes())


def test_entry_model_map_and_layout(sources, server):
    info = sources.entry("6v5b")
    assert info.is_em and info.resolution == 3.7 and info.release_date == "2020-02-12"
    assert info.emdb_ids == ("EMD-21051", "EMD-21052") and info.primary_emdb_id == "EMD-21051"
    assert sources.map_id("6V5B") == ("EMD-21051", "primary map of PDB entry")
    assert sources.map_id("6V5B", "EMD-21052") == ("EMD-21052", "manifest")
    model = sources.model("6V5B")
    mp = sources.map("EMD-21051")
    cache = Path(sources.config.cache_dir)
    assert model == cache / "pdb" / "6v5b.cif.gz" and mp == cache / "emdb" / "emd_21051.map.gz"
    assert (cache / "pdb" / "6v5b.json").exists()
    assert len(read_model(model).select("D:19-22,82-85")) > 100
    assert read_map(mp).shape == (138, 62, 55)
    # a second call is served from the cache
    hits = dict(server.hits)
    assert sources.map("EMD-21051") == mp and server.hits == hits
    _assert_clean_cache(sources)


def test_503_then_success(sources, server):
    server.faults["/model/6V5B.cif.gz"] = ["503", "503"]
    assert sources.model("6V5B").exists()
    assert server.hits["/model/6V5B.cif.gz"] == 3
    _assert_clean_cache(sources)


def test_429_retry_after_is_honoured(sources, server):
    import time

    server.faults["/entry/6V5B"] = ["429"]
    t0 = time.monotonic()
    assert sources.entry("6V5B").primary_emdb_id == "EMD-21051"
    assert time.monotonic() - t0 >= 0.9  # waited for Retry-After: 1
    assert server.hits["/entry/6V5B"] == 2


@pytest.mark.parametrize("fault", ["drop", "badgzip"])
def test_broken_body_is_fetched_again(sources, server, fault):
    path = "/emdb/EMD-21051/map/emd_21051.map.gz"
    server.faults[path] = [fault]
    mp = sources.map("EMD-21051")
    assert server.hits[path] == 2
    assert read_map(mp).shape == (138, 62, 55)
    _assert_clean_cache(sources)


@pytest.mark.parametrize("fault", ["drop", "badgzip"])
def test_persistent_corruption_fails_and_leaves_nothing(sources, server, fault):
    path = "/emdb/EMD-21051/map/emd_21051.map.gz"
    server.faults[path] = [fault] * 3
    with pytest.raises(DownloadError, match="failed after 3 attempts"):
        sources.map("EMD-21051")
    assert _cache_files(sources) == []


def test_404_and_exhausted_retries(sources, server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        sources.model("9ZZZ")
    server.faults["/model/6V5B.cif.gz"] = ["503"] * 10
    with pytest.raises(DownloadError, match="gave up after 3 retries"):
        sources.model("6V5B")
    assert _cache_files(sources) == []


def test_non_em_and_mapless_entries(sources):
    with pytest.raises(NotEMEntryError, match="1S72: method X-RAY DIFFRACTION"):
        sources.map_id("1S72")
    with pytest.raises(NoMapError, match="7ABC"):
        sources.map_id("7ABC")


def test_corrupt_cached_file_is_refetched(sources, server):
    mp = sources.map("EMD-21051")
    data = mp.read_bytes()
    mp.write_bytes(data[:1000])  # damaged on disk later
    again = sources.map("EMD-21051")
    assert again.read_bytes() == data
    assert server.hits["/emdb/EMD-21051/map/emd_21051.map.gz"] == 2


def test_offline_names_missing_files_and_uses_mirror(sources, server, tmp_path):
    from dataclasses import replace

    online = sources
    online.model("6V5B")
    offline = Sources(replace(online.config, offline=True))
    assert offline.model("6V5B").exists()  # cached
    with pytest.raises(OfflineError, match=r"offline and missing: .*emdb/emd_21051\.map\.gz"):
        offline.map("EMD-21051")
    mirror = tmp_path / "mirror"
    (mirror / "emdb").mkdir(parents=True)
    (mirror / "emdb" / "emd_21051.map").write_bytes(gzip.decompress(server.files["/emdb/EMD-21051/map/emd_21051.map.gz"]))
    with_mirror = Sources(replace(online.config, offline=True, mirror=mirror))
    assert with_mirror.map("EMD-21051") == mirror / "emdb" / "emd_21051.map"
    (mirror / "emdb" / "emd_21052.map.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(SourceError, match="corrupt file in the read-only mirror"):
        with_mirror.map("EMD-21052")
    assert (mirror / "emdb" / "emd_21052.map.gz").exists()  # never touched


def test_bad_emdb_id(sources):
    with pytest.raises(InputError, match="bad EMDB ID"):
        sources.map("21051")


def test_fetch_cli_records_choices_and_failures(server, tmp_path):
    import pyarrow.parquet as pq

    from rnamotif_data.cli.fetch import main
    from rnamotif_data.inputs.schema import rows_to_table

    manifest = tmp_path / "m.parquet"
    rows = [{"pdb_id": "6V5B", "motif_type": "2x2", "selection": "D:19-22,82-85"},
            {"pdb_id": "1S72", "motif_type": "hairpin3", "selection": "0:118-122"},
            {"pdb_id": "9ZZZ", "motif_type": "1x1", "selection": "A:1-3,10-12", "emdb_id": "EMD-99999"}]
    pq.write_table(rows_to_table(rows), manifest)
    report = tmp_path / "report.parquet"
    server.faults.clear()
    args = ["--manifest", str(manifest), "--cache", str(tmp_path / "cache"), "--report", str(report),
            "--entry-url", server.url + "/entry/{pdb_id}", "--model-url", server.url + "/model/{pdb_id}.cif.gz",
            "--map-url", server.url + "/emdb/EMD-{number}/map/emd_{number}.map.gz", "--no-progress"]
    assert main(args) == 1  # two entries fail, the good one is fetched
    rep = {r["pdb_id"]: r for r in pq.read_table(report).to_pylist()}
    assert rep["6V5B"]["status"] == "ok" and rep["6V5B"]["emdb_id"] == "EMD-21051"
    assert rep["6V5B"]["emdb_reason"] == "primary map of PDB entry"
    assert Path(rep["6V5B"]["map_path"]).exists()
    assert rep["1S72"]["status"] == "DownloadError"  # no model served for 1S72 here
    assert rep["9ZZZ"]["status"] == "DownloadError" and "404" in rep["9ZZZ"]["error"]
    # offline, everything 6V5B needs is cached
    pq.write_table(rows_to_table(rows[:1]), manifest)
    assert main(args + ["--offline"]) == 0
    # residues checked against the fetched model; a row naming unmodelled residues is rejected
    rows.append({"pdb_id": "6V5B", "motif_type": "1x1", "selection": "D:40-42,60-62"})
    pq.write_table(rows_to_table([rows[0], rows[3]]), manifest)
    assert main(args + ["--offline", "--check-residues"]) == 0
    bad = pq.read_table(report.with_name("report.rejected-rows.parquet")).to_pylist()
    assert [b["row"] for b in bad] == [1] and "no residue 42" in bad[0]["reason"]
