"""``rnamotif compare``: two arms of cv_summary.json paired by fold and seed, checked against
scipy.stats on the same numbers; one-line errors for what is not a summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from rnamotif_data.cli import main


def _arm(folder, scores, constant=()):
    folder.mkdir(parents=True)
    runs = [{"fold": f"fold{f}", "seed": s, "macro_sensitivity": v, "constant_predictor": (f, s) in constant}
            for (f, s), v in scores.items()]
    (folder / "cv_summary.json").write_text(json.dumps({"runs": runs}))
    return folder


def test_compare_pairs_by_fold_and_seed_and_agrees_with_scipy(tmp_path, capsys):
    rng = np.random.default_rng(3)
    keys = [(f, s) for f in range(1, 6) for s in range(3)]
    a = {k: float(v) for k, v in zip(keys, rng.uniform(0.2, 0.5, len(keys)))}
    b = {k: a[k] - 0.05 + float(e) for k, e in zip(keys, rng.normal(0, 0.02, len(keys)))}
    b[(6, 0)] = 0.3  # no partner in a
    ra = _arm(tmp_path / "a", a, constant={(2, 1)})
    rb = _arm(tmp_path / "b", b)
    out = tmp_path / "cmp.md"
    assert main(["compare", str(ra), str(rb / "cv_summary.json"), "--names", "dens", "seq", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    xa, xb = np.array([a[k] for k in keys]), np.array([b[k] for k in keys])
    assert f"paired t-test p = {stats.ttest_rel(xa, xb).pvalue:.3f}" in text
    assert f"Wilcoxon signed-rank p = {stats.wilcoxon(xa, xb).pvalue:.3f}" in text
    assert f"Mean difference dens − seq: {(xa - xb).mean():.3f}" in text
    assert "15 pairs" in text and "fold6 seed 0" in text  # the unpaired run is named
    assert "Constant predictors in dens" in text and "fold2 seed 1" in text
    assert out.read_text() == text


@pytest.mark.parametrize("content, words", [(None, "no such file"), ("{not json", "not readable as JSON"),
                                            ('{"epochs": 3}', "not a cross-validation summary")])
def test_compare_refuses_what_is_not_a_summary_in_one_line(tmp_path, capsys, content, words):
    good = _arm(tmp_path / "good", {(1, 0): 0.3})
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    assert main(["compare", str(good), str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and words in err[0]


def test_compare_never_replaces_a_file(tmp_path, capsys):
    arm = _arm(tmp_path / "a", {(1, 0): 0.3, (2, 0): 0.4})
    mine = tmp_path / "notes.md"
    mine.write_text("my notes")
    assert main(["compare", str(arm), str(arm), "--out", str(mine)]) == 1
    assert "exists" in capsys.readouterr().err and mine.read_text() == "my notes"


def test_compare_refuses_an_unknown_metric_and_arms_of_other_protocols(tmp_path, capsys):
    """Campaign at the stop: --metric bogus said "no partner"; a nested test arm and an
    upstream validation arm were called significantly different."""
    a = _arm(tmp_path / "a", {(1, 0): 0.3, (2, 0): 0.4})
    assert main(["compare", str(a), str(a), "--metric", "bogus"]) == 1
    err = capsys.readouterr().err
    assert "--metric bogus: no run of" in err and "macro_sensitivity" in err
    summary = json.loads((a / "cv_summary.json").read_text())
    other = tmp_path / "b"
    other.mkdir()
    (other / "cv_summary.json").write_text(json.dumps({**summary, "protocol": "upstream"}))
    assert main(["compare", str(a), str(other)]) == 1
    assert "scored under another protocol" in capsys.readouterr().err
