"""The multi-entry real-structure fixture (issue 16, item 5): negatives, audit, splits,
report and card on 20 entries (16 real models with simulated maps, 4 real 50S volumes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnamotif_data.cli.report import main as report_main
from rnamotif_data.cli.split import main as split_main
from rnamotif_data.split.similarity import within_one_edit
from rnamotif_data.split.splits import read_split
from rnamotif_data.storage.store import open_store

pytest.importorskip("sklearn", reason="the audit needs scikit-learn (pip install scikit-learn)")


def test_fixture_holds_many_entries_and_structural_negatives(multi_entry_store):
    meta = open_store(multi_entry_store).metadata
    assert meta["emdb_id"].nunique() >= 18 and meta["pdb_id"].nunique() >= 18
    bg = meta[meta.is_background]
    assert len(bg) >= 50 and set(bg.background_kind) <= {"stem", "rna"}
    # one model in four maps: one model hash for the four 50S volumes
    fifty = meta[meta.emdb_id.str.startswith("EMD-90000")]
    assert fifty.emdb_id.nunique() == 4 and fifty.model_hash.nunique() == 1


def test_audit_is_near_chance_and_the_report_and_card_show_it(multi_entry_store, tmp_path):
    import re

    from rnamotif_data.release.card import _audit_lines

    assert report_main([multi_entry_store, "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "qc.md").read_text()
    assert "## Shortcut audit" in md and "grouped by independent group" in md
    score = float(re.search(r"unknown vs motif: balanced accuracy \*\*([0-9.]+)\*\*", md).group(1))
    assert score <= 0.60, md
    assert (tmp_path / "r" / "audit.png").read_bytes()[:4] == b"\x89PNG"
    card = "\n".join(_audit_lines(open_store(multi_entry_store)))  # the card's section (same seed)
    assert f"**{score:.3f}**" in card


def test_default_split_leaks_nothing_and_scores_every_sample(multi_entry_store, capsys):
    """Issue 25: every sample is validated in one fold; training is what gets pruned."""
    assert split_main([multi_entry_store, "--report"]) == 0
    out = capsys.readouterr().out
    store = open_store(multi_entry_store)
    split = read_split(store, "similarity")
    assert "0 removed" in out and split.n_removed == 0 and split.n_scored == len(store)
    assert (split.table["train_exclusion"] != 0).any()
    meta = store.metadata
    strands = meta["strand_sequences"].fillna("")

    def canon(s):
        parts = s.split("-")
        return min("-".join(parts[i:] + parts[:i]) for i in range(len(parts)))

    for k in range(1, 6):
        tr = meta.iloc[split.indices(f"fold{k}", "train")]
        va = meta.iloc[split.indices(f"fold{k}", "val")]
        assert len(va) > 0
        assert not set(va.emdb_id) & set(tr.emdb_id) and not set(va.pdb_id) & set(tr.pdb_id)
        assert not set(va.model_hash) & set(tr.model_hash)
        train_motifs = [(t, canon(s)) for t, s, b in zip(tr.motif_type, strands[tr.index], tr.is_background) if not b]
        for t, s, b in zip(va.motif_type, strands[va.index], va.is_background):
            if not b:
                c = canon(s)
                assert not any(t == t2 and within_one_edit(c, c2) for t2, c2 in train_motifs), (k, t, s)
    full = (Path(multi_entry_store) / "splits" / "similarity-report.md").read_text()  # the saved full table
    rows = [line for line in full.splitlines() if line.startswith("| fold") and "train" not in line]
    assert len(rows) == 5
    for line in rows:  # entry, overlap, canonical, near-identical, homolog: all 0
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[5:10] == ["0 (0.0%)"] * 5, line
        assert float(cells[1].split("(")[1].rstrip("%)")) >= 50.0  # training keeps >= half of the other folds
    ident = split.table["max_identity_to_train"].to_numpy()
    val = np.concatenate([split.indices(f"fold{k}", "val") for k in range(1, 6)])
    assert (ident[val] < 0.8).all()


def test_split_of_the_50s_volumes_alone_is_refused(multi_entry_store, tmp_path, capsys):
    """The four 50S volumes share one model: one independent group, fewer than 5 folds."""
    from rnamotif_data.cli import run
    from rnamotif_data.errors import ConfigError
    from rnamotif_data.split.splits import SplitConfig, split_metadata

    meta = open_store(multi_entry_store).metadata
    fifty = meta[meta.emdb_id.str.startswith("EMD-90000")].reset_index(drop=True)
    with pytest.raises(ConfigError, match=r"holds 1 independent group\(s\).*fewer than the 5 folds"):
        split_metadata(fifty, SplitConfig(), name="50S volumes")
    del run, tmp_path, capsys


def test_atlas_manifest_split_metadata_only(tmp_path, capsys):
    """The shipped RNA 3D Motif Atlas manifest, split before any build: 0 validation rows
    share an entry, a residue, a canonical or a near-identical motif with training;
    strand-swapped duplicates are one canonical motif; removed counts are printed."""
    from pathlib import Path

    from rnamotif_data.split.similarity import canonical_key, strand_column

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "atlas-split.parquet"
    assert split_main(["--manifest", str(repo / "manifests" / "motif-atlas-4.5.parquet"), "--out", str(out),
                       "--report"]) == 0
    text = capsys.readouterr().out
    split = pd.read_parquet(out)
    man = pd.read_parquet(repo / "manifests" / "motif-atlas-4.5.parquet")
    # issue 25's goals: every instance scored (GNRA loops included), none related to its
    # fold's training, every fold's training >= 50 % of the other folds
    assert "0 removed" in text and split.removed.sum() == 0 and split.fold.notna().all()
    # the 30 Atlas rows without a sequence escape the sequence relations: the report says so
    assert "30 motif samples without a sequence (compared by entry and residues only)" in text
    strands = strand_column(man)
    keys = [canonical_key(t, s) for t, s in zip(man.motif_type, strands)]
    gnra = man.motif_type.eq("hairpin4") & man.sequence.fillna("").str.fullmatch(r".G[ACGU][AG]A.")
    assert gnra.sum() > 200
    for k in range(1, 6):
        val = (split.fold == k) & ~split.removed
        train = (split.fold != k) & ((split.train_exclusion & (1 << (k - 1))) == 0)
        assert train.sum() >= 0.5 * (split.fold != k).sum()
        assert val.sum() > 100
        assert not set(man.pdb_id[val]) & set(man.pdb_id[train])
        assert not {keys[i] for i in np.flatnonzero(val) if keys[i]} & {keys[i] for i in np.flatnonzero(train) if keys[i]}
    # a strand-swapped copy of a row in another entry is the same canonical motif
    row = man[man.selection.str.contains(" ") & man.sequence.notna()].iloc[0]
    a, b = row.selection.split(" ")
    start, end = (int(x) for x in a.split(":")[1].split("-"))
    n_a = end - start + 1  # the sequence is in selection order
    swapped = {"selection": f"{b} {a}", "sequence": row.sequence[n_a:] + row.sequence[:n_a]}
    s2 = strand_column(pd.DataFrame([swapped]))[0]
    assert s2 == strands[row.name] and canonical_key(row.motif_type, s2) == keys[row.name]
