"""Notebook 10's data-size experiment: the budget rule, one scored run, the probe's counts, the grid script."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from vit_tutorial.cnn import shift_images
from vit_tutorial.data import normalize
from vit_tutorial.datasize import MOVES, flip_rate, right_on_all, sufficient_budget, train_point

ROOT = Path(__file__).resolve().parents[1]


def test_sufficient_budget_stops_at_the_first_doubling_that_does_not_help():
    assert sufficient_budget({300: [0.50], 600: [0.55], 1200: [0.555], 2400: [0.60]}, 0.01) == (600, True)
    assert sufficient_budget({300: [0.80], 600: [0.79]}, 0.01) == (300, True)          # a drop stops it too
    assert sufficient_budget({300: [0.5], 600: [0.6], 1200: [0.7]}, 0.01) == (1200, False)  # still rising
    # accuracies are counts: a gain of exactly 10 of 1,000 digits is not above 0.01, whatever the float rounding
    assert 0.958 - 0.948 > 0.01 and sufficient_budget({600: [0.948], 1200: [0.958]}, 0.01) == (600, True)
    # a distilled job: the teacher has settled but the student still gains, so the ladder goes on
    assert sufficient_budget({300: [0.97, 0.60], 600: [0.97, 0.70], 1200: [0.97, 0.705]}, 0.01) == (600, True)
    assert sufficient_budget({300: [0.97, 0.60], 600: [0.97, 0.70]}, 0.01) == (600, False)


def test_flip_rate_and_right_on_all_count_what_the_strings_say():
    a = {"probe_correct": "1101", "probe_flips": "0420"}
    b = {"probe_correct": "1011", "probe_flips": "1000"}
    both = right_on_all([a, b])
    assert both.tolist() == [True, False, False, True]
    assert flip_rate(a) == 6 / 16 and flip_rate(b) == 1 / 16
    assert flip_rate(a, both) == 0.0 and flip_rate(b, both) == 1 / 8


def test_train_point_scores_and_probes_a_tiny_run(digits):
    rows, models = train_point("distilled ViT", 3, 2, 0, n_val=40, data=digits)
    assert [r["model"] for r in rows] == ["CNN + augmentation", "distilled ViT"] and len(models) == 2
    for r in rows:
        assert (r["size"], r["budget"], r["seed"], r["steps"]) == (3, 2, 0, 2)  # 30 digits: 1 batch, 2 epochs
        assert len(r["probe_correct"]) == len(r["probe_flips"]) == len(digits.x_test)
        assert set(r["probe_flips"]) <= set("01234") and set(r["probe_correct"]) <= {"0", "1"}
        assert abs(r["test"] - r["probe_correct"].count("1") / len(digits.x_test)) < 1e-9
        assert 0 <= r["validation"] <= 1 and abs(r["validation"] * 40 - round(r["validation"] * 40)) < 1e-9
        assert r["train_curve"][-1][0] == 2 and r["feature_change"] >= 0
    # the probe's counts are what the model does: recount one digit by hand
    m, i = models[1], 0
    norm = lambda im: normalize(im, digits.mean, digits.std)  # noqa: E731
    with torch.no_grad():
        base = m(norm(digits.x_test[i:i + 1])).argmax(-1)
        moved = sum(int(m(norm(shift_images(digits.x_test[i:i + 1], dy, dx))).argmax(-1) != base) for dy, dx in MOVES)
    assert int(rows[1]["probe_flips"][i]) == moved


def test_train_point_names_the_models_it_knows():
    with pytest.raises(ValueError, match=r"model must be one of \['CNN', 'ViT', 'ViT \+ augmentation', "
                                         r"'distilled ViT', 'hybrid ViT'\], got 'resnet'"):
        train_point("resnet", 3, 2, 0)


def test_the_grid_script_climbs_each_ladder_then_trains_three_seeds_and_resumes(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("data_size", ROOT / "benchmarks" / "data_size.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    calls = []

    def fake(model, n, budget, seed, held, n_val):  # validation rises until 4 steps at size 3, 2 steps at size 6
        calls.append((model, n, budget, seed))
        val = min(budget, 4 if n == 3 else 2) / 10
        names = ["CNN + augmentation", model] if model == "distilled ViT" else [model]
        return [{"model": m, "size": n, "budget": budget, "seed": seed, "steps": budget, "validation": val,
                 "test": val, "train": 1.0, "seconds": 0.0} for m in names]

    monkeypatch.setattr(script, "_run_one", fake)
    out = tmp_path / "d.json"
    result = script.main(["--smoke", "--workers", "0", "--json", str(out)])
    assert result["budgets"] == {"3": {m: 4 for m in ("CNN", "ViT", "hybrid ViT", "ViT + augmentation", "distilled ViT")},
                                 "6": {"CNN": 2, "ViT": 2, "hybrid ViT": 2}}
    assert all(s["settled"] for s in result["ladders"])
    assert sorted(c for c in calls if c[:3] == ("ViT", 3, 4)) == [("ViT", 3, 4, 0), ("ViT", 3, 4, 1)]
    assert ("ViT", 3, 8, 0) in calls and ("ViT", 6, 4, 0) in calls  # the doubling that showed no gain
    saved = json.loads(out.read_text())
    assert {(r["model"], r["seed"]) for r in saved["runs"] if r["size"] == 3 and r["budget"] == 4} == \
        {(m, s) for m in ("CNN", "ViT", "hybrid ViT", "ViT + augmentation", "distilled ViT", "CNN + augmentation")
         for s in (0, 1)}
    calls.clear()
    script.main(["--smoke", "--workers", "0", "--json", str(out)])
    assert calls == []  # everything was in the file already
