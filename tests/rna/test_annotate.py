"""Motifs from structure (issue 15): loops read off RNApolis's nested canonical pairs,
the annotate command, and the RCSB Search API client against a local server."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import gemmi
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rnamotif_data.cli.annotate import main as annotate_main
from rnamotif_data.cli.search import main as search_main
from rnamotif_data.errors import AnnotationError, SearchError
from rnamotif_data.inputs.search import SearchQuery, search_entries, search_request
from rnamotif_data.inputs.sources import SourceConfig
from rnamotif_data.rna.annotate import annotate_model, loops_from_pairs

from ..conftest import DEMO, shared
from ..http_helpers import QuietHandler

pytest.importorskip("rnapolis", reason="motif annotation needs RNApolis (pip install rnapolis)")

#: The loops of 6V5B chain D as ../shared/data/README.md lists them (read by hand from its
#: base pairs; the apical hairpin spans the unmodelled residues 42-62).
README_LOOPS = {("D:14-16,88-90", "1x1"), ("D:19-22,82-85", "2x2"), ("D:30-31,72-74", "bulge1"),
                ("D:31-33,71-72", "bulge1"), ("D:3-9,95-100", "4x5")}


def _pairs(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    table = [-1] * n
    for i, j in pairs:
        table[i], table[j] = j, i
    return table


def test_loops_from_a_hand_drawn_structure():
    """((.((..((..((....))...))....)).))-like: a bulge, two internal loops, a hairpin; and
    a 3-way junction."""
    table = _pairs(30, [(0, 29), (1, 28), (2, 26), (3, 25), (6, 20), (7, 19), (10, 15)])
    loops = {(lp.kind, lp.sizes, lp.motif_type, lp.strands[0][0]) for lp in loops_from_pairs(table)}
    assert ("bulge", (0, 1), "bulge1", 1) in loops  # 1-28 closes 2-26 with 27 unpaired
    assert ("internal", (2, 4), "2x4", 3) in loops  # 3-25 closes 6-20: 4,5 | 21-24
    assert ("internal", (2, 3), "2x3", 7) in loops  # 7-19 closes 10-15: 8,9 | 16-18
    assert ("hairpin", (4,), "hairpin4", 10) in loops
    assert len(loops) == 4  # 0-29/1-28 and 2-26/3-25 stack: no loop
    junction = loops_from_pairs(_pairs(20, [(0, 19), (2, 6), (9, 16)]))
    assert [(lp.kind, lp.sizes) for lp in junction if lp.kind == "junction"] == [("junction", (1, 2, 2))]
    with pytest.raises(AnnotationError, match="cross"):
        loops_from_pairs(_pairs(10, [(0, 5), (3, 8)]))


def test_annotation_of_6v5b_reproduces_the_hand_made_list():
    ann = annotate_model(DEMO / "mirror" / "pdb" / "6v5b.pdb", "6V5B")
    rows = {(ann.selection(lp), lp.motif_type) for lp in ann.loops if lp.motif_type and not lp.broken}
    assert rows == README_LOOPS
    broken = [lp for lp in ann.loops if lp.broken]
    assert len(broken) == 1 and broken[0].kind == "hairpin" and "unmodelled" in broken[0].broken
    assert ann.annotator.startswith("RNApolis Annotator ")
    again = annotate_model(DEMO / "mirror" / "pdb" / "6v5b.pdb", "6V5B")
    assert [(lp.strands, lp.motif_type) for lp in again.loops] == [(lp.strands, lp.motif_type) for lp in ann.loops]


def test_annotate_command_writes_rows_and_other_loops(tmp_path, caplog):
    out = tmp_path / "m.parquet"
    with caplog.at_level("INFO", logger="rnamotif_data.inputs.manifest"):
        assert annotate_main([str(DEMO / "mirror" / "pdb" / "6v5b.pdb"), "--out", str(out)]) == 0
    m = pd.read_parquet(out)
    assert set(zip(m["selection"], m["motif_type"])) == README_LOOPS
    assert (m["source"] == "annotated").all() and m["annotator"].str.startswith("RNApolis").all()
    # the sequence is the model's (read by our structure reader), one letter per residue
    from rnamotif_data.rna.structure import read_model

    model = read_model(DEMO / "mirror" / "pdb" / "6v5b.pdb")
    assert m["sequence"].tolist() == [model.select(s).sequence() for s in m["selection"]]
    assert m["sequence"].str.len().tolist() == [len(r) for r in m["residues"]]
    other = pd.read_parquet(tmp_path / "m.other.parquet")
    assert len(other) == 1 and other["reason"].str.contains("not covalently continuous").all()
    assert "1x1 1, 2x2 1, 4x5 1, bulge1 2" in caplog.text


def test_two_chains_and_two_models(tmp_path):
    """A second chain (a copy of D moved 60 Å, as chain E) is annotated like the first;
    a second model is ignored (only model 1 is read, as everywhere)."""
    st = gemmi.read_structure(str(DEMO / "mirror" / "pdb" / "6v5b.pdb"))
    chain = st[0]["D"].clone()
    chain.name = "E"
    for res in chain:
        for atom in res:
            atom.pos = gemmi.Position(atom.pos.x + 60.0, atom.pos.y, atom.pos.z)
    st[0].add_chain(chain)
    moved = st[0].clone()
    moved.num = 2
    for ch in moved:
        for res in ch:
            for atom in res:
                atom.pos = gemmi.Position(atom.pos.x, atom.pos.y + 30.0, atom.pos.z)
    st.add_model(moved)
    path = tmp_path / "two.pdb"
    st.write_pdb(str(path))
    ann = annotate_model(path, "TWO0")
    rows = {(ann.selection(lp), lp.motif_type) for lp in ann.loops if lp.motif_type and not lp.broken}
    assert rows == README_LOOPS | {(s.replace("D:", "E:"), t) for s, t in README_LOOPS}


@pytest.mark.slow
def test_50s_model_matches_the_shipped_manifest_but_for_two_pairs():
    """The real 23S + 5S model: RNApolis 0.11.5 gives the shipped manifest's loops but
    two, where the two annotator runs classify a pair differently (U2460·G2490 is cHW
    here, a wobble there; the 2068 bulge). Slow (~40 s): run with -m slow."""
    path = shared("cryodrgn-50s", "pdb", "pdb_0000v383.pdb.gz")
    ann = annotate_model(path, "PDB_0000V383")
    ours = {(ann.selection(lp), lp.motif_type) for lp in ann.loops if lp.motif_type and not lp.broken}
    m = pd.read_parquet(shared("cryodrgn-50s", "manifest.parquet"))
    shipped = set(zip(m.loc[m["pdb_id"] == "PDB_0000V383", "selection"], m.loc[m["pdb_id"] == "PDB_0000V383",
                                                                                  "motif_type"]))
    assert len(ours & shipped) == len(shipped) - 1
    assert ours - shipped == {("A:2067-2069,2442-2443", "bulge1"), ("A:2459-2461,2489-2493", "1x3")}
    assert shipped - ours == {("A:2459-2460,2490-2493", "bulge2")}


# ------------------------------------------------------------------ search
RECORD = {"exptl": [{"method": "ELECTRON MICROSCOPY"}], "rcsb_entry_info": {"resolution_combined": [3.1]},
          "rcsb_accession_info": {"initial_release_date": "2026-03-04T00:00:00+0000"},
          "rcsb_entry_container_identifiers": {"emdb_ids": ["EMD-20353"]},
          "pdbx_database_related": [{"db_name": "EMDB", "db_id": "EMD-20353", "content_type": "associated EM volume"}]}


class SearchServer:
    """A local Search API: POST /query answers pages of ``self.ids`` as the documented
    JSON (total_count, result_set) or 204 when empty; ``faults`` is a queue of actions
    for the next POSTs (``429``, ``500``, ``garbage``, ``400``); GET /entry/{id} serves
    RCSB entry records."""

    def __init__(self):
        self.ids: list[str] = []
        self.faults: list[str] = []
        self.bodies: list[dict] = []
        srv = self

        class Handler(QuietHandler):

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                srv.bodies.append(body)
                action = srv.faults.pop(0) if srv.faults else "ok"
                if action == "429":
                    return self._send(429, b'{"status": 429}', {"Retry-After": "0"})
                if action == "500":
                    return self._send(500, b"oops")
                if action == "400":
                    return self._send(400, json.dumps({"status": 400, "message": "bad attribute"}).encode())
                if action == "garbage":
                    return self._send(200, b"<html>maintenance</html>")
                if not srv.ids:
                    return self._send(204)
                page = body["request_options"]["paginate"]
                chunk = srv.ids[page["start"]:page["start"] + page["rows"]]
                self._send(200, json.dumps({"query_id": "x", "result_type": "entry", "total_count": len(srv.ids),
                                            "result_set": [{"identifier": i, "score": 1.0} for i in chunk]}).encode())

            def do_GET(self):
                self._send(200, json.dumps(RECORD).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def search_server():
    s = SearchServer()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _config(server, tmp_path) -> SourceConfig:
    return SourceConfig(cache_dir=tmp_path / "cache", entry_url=server.url + "/entry/{pdb_id}", timeout=10,
                        retries=3, backoff=0.0)


def test_search_request_has_the_documented_shape():
    body = search_request(SearchQuery(max_resolution=4.0, released_after="2026-01-01", page_size=50))
    nodes = body["query"]["nodes"]
    attrs = {n["parameters"]["attribute"]: (n["parameters"]["operator"], n["parameters"]["value"]) for n in nodes}
    assert attrs["exptl.method"] == ("exact_match", "ELECTRON MICROSCOPY")
    assert attrs["rcsb_entry_info.polymer_entity_count_RNA"] == ("greater", 0)
    assert attrs["rcsb_entry_info.resolution_combined"] == ("less_or_equal", 4.0)
    assert attrs["rcsb_accession_info.initial_release_date"] == ("greater", "2026-01-01")
    assert body["return_type"] == "entry" and body["request_options"]["paginate"] == {"start": 0, "rows": 50}
    with pytest.raises(SearchError, match="YYYY-MM-DD"):
        SearchQuery(released_after="last week")


def test_search_pages_and_completes_entries(search_server, tmp_path):
    search_server.ids = [f"{k}ABC" for k in range(1, 6)]
    search_server.faults, search_server.bodies = [], []
    rows = search_entries(SearchQuery(page_size=2), _config(search_server, tmp_path), search_server.url + "/query")
    assert [r["pdb_id"] for r in rows] == ["1ABC", "2ABC", "3ABC", "4ABC", "5ABC"]
    assert [b["request_options"]["paginate"]["start"] for b in search_server.bodies] == [0, 2, 4]
    assert rows[0]["emdb_id"] == "EMD-20353" and rows[0]["resolution"] == 3.1
    search_server.bodies = []
    limited = search_entries(SearchQuery(page_size=2, limit=3), _config(search_server, tmp_path),
                             search_server.url + "/query")
    assert len(limited) == 3 and [b["request_options"]["paginate"] for b in search_server.bodies] == [
        {"start": 0, "rows": 2}, {"start": 2, "rows": 1}]


def test_search_empty_result_is_204(search_server, tmp_path):
    search_server.ids, search_server.faults = [], []
    assert search_entries(SearchQuery(), _config(search_server, tmp_path), search_server.url + "/query") == []


def test_search_retries_429_and_5xx_then_succeeds(search_server, tmp_path):
    search_server.ids = ["6PJ6"]
    search_server.faults = ["429", "500", "500"]
    rows = search_entries(SearchQuery(), _config(search_server, tmp_path), search_server.url + "/query")
    assert [r["pdb_id"] for r in rows] == ["6PJ6"] and search_server.faults == []


def test_search_errors_are_one_clear_line(search_server, tmp_path):
    search_server.ids = ["6PJ6"]
    search_server.faults = ["garbage"]
    with pytest.raises(SearchError, match=r"not a Search API result.*maintenance"):
        search_entries(SearchQuery(), _config(search_server, tmp_path), search_server.url + "/query")
    search_server.faults = ["400"]
    with pytest.raises(SearchError, match="HTTP 400: bad attribute"):
        search_entries(SearchQuery(), _config(search_server, tmp_path), search_server.url + "/query")
    search_server.faults = ["500"] * 5
    with pytest.raises(SearchError, match="gave up after retries"):
        search_entries(SearchQuery(), _config(search_server, tmp_path), search_server.url + "/query")
    search_server.faults = []


def test_search_fetch_annotate_build_through_the_cli(search_server, tmp_path):
    """The README's four commands: search -> ids.parquet -> fetch --pdb-ids -> annotate
    --pdb-ids -> build, with a mirror holding the 6V5B model and (as the entry's map) the
    demo map."""
    search_server.ids, search_server.faults = ["6V5B"], []
    ids = tmp_path / "ids.parquet"
    mirror = tmp_path / "mirror"
    (mirror / "pdb").mkdir(parents=True)
    (mirror / "pdb" / "6v5b.pdb").write_bytes((DEMO / "mirror" / "pdb" / "6v5b.pdb").read_bytes())
    (mirror / "pdb" / "6v5b.json").write_text(json.dumps(RECORD))
    (mirror / "emdb").mkdir()
    (mirror / "emdb" / "emd_20353.map.gz").write_bytes((DEMO / "mirror" / "emdb" / "emd_21051.map.gz").read_bytes())
    assert search_main(["--max-resolution", "4", "--out", str(ids), "--mirror", str(mirror),
                          "--search-url", search_server.url + "/query"]) == 0
    t = pq.read_table(ids).to_pylist()
    assert t == [{"pdb_id": "6V5B", "emdb_id": "EMD-20353", "resolution": 3.1, "method": "ELECTRON MICROSCOPY",
                  "release_date": "2026-03-04", "score": 1.0}]
    from rnamotif_data.cli.build import main as build_main
    from rnamotif_data.cli.fetch import main as fetch_main
    from rnamotif_data.storage.store import open_store

    assert fetch_main(["--pdb-ids", str(ids), "--mirror", str(mirror), "--offline", "--cache", str(tmp_path / "c"),
                       "--no-progress"]) == 0
    out = tmp_path / "m.parquet"
    assert annotate_main(["--pdb-ids", str(ids), "--mirror", str(mirror), "--out", str(out)]) == 0
    m = pd.read_parquet(out)
    assert len(m) == 5 and set(m["emdb_id"]) == {"EMD-20353"} and set(m["resolution"]) == {3.1}
    store = tmp_path / "s.zarr"
    assert build_main(["--manifest", str(out), "--mirror", str(mirror), "--cache", str(tmp_path / "c"),
                       "--out", str(store), "--scheduler", "synchronous", "--no-progress"]) == 0
    meta = open_store(store).metadata
    assert sorted(meta.loc[~meta["is_background"], "motif_type"]) == ["1x1", "2x2", "4x5", "bulge1", "bulge1"]
