"""The "Making it fast" ladder and the benchmark scripts, in CI-sized form on the CPU."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from vit_tutorial.speed import RUNGS, fast_path

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fast_path_times_the_rungs_it_can_run_and_says_why_it_skips_the_others():
    rows = fast_path("cpu", batch_size=8, steps=1, rounds=1, warmup=1, rungs=(0, 1, 5), n_images=32)
    assert [r["rung"] for r in rows] == [0, 1, 5] and rows[0]["name"] == RUNGS[0]
    assert rows[0]["images_per_second"] > 0 and rows[0]["speedup"] == 1.0
    assert rows[1]["images_per_second"] > 0
    assert rows[2]["images_per_second"] is None and "CPU" in rows[2]["skipped"]


def test_flop_count_matches_the_published_vit_b16_figure():
    t = _script("throughput")
    # ViT-B/16 at 224: 17.56 GMACs per image is the usual published figure (timm, fvcore): 35.1 GFLOPs
    assert abs(t.forward_flops(t.CONFIGS["ViT-B/16"]) / 1e9 - 35.13) < 0.05
    assert t.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0 and t.peak_tflops("AMD EPYC") is None


def test_throughput_script_runs_ci_sized_and_records_what_it_measured(tmp_path, capsys):
    t = _script("throughput")
    out = tmp_path / "r.json"
    result = t.main(["--quick", "--modes", "train", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"][0]["config"] == "cifar10" and saved["results"][0]["mode"] == "train"
    ours = saved["results"][0]["contenders"]["vit_tutorial"]
    assert ours["images_per_second"] > 0 and ours["params"] == 2_693_578
    assert set(saved["versions"]) >= {"python", "torch", "timm", "vit-pytorch"}
    assert result["device"] and "ours/this" in capsys.readouterr().out
    assert ours["ours_over_this_by_round"] == {"median": 1.0, "min": 1.0, "max": 1.0}  # against itself
    for peer in ("timm", "vit-pytorch"):  # when installed: the paired ratio is the medians' companion
        theirs = saved["results"][0]["contenders"][peer]
        if theirs["images_per_second"] is not None:
            r = theirs["ours_over_this_by_round"]
            assert r["min"] <= r["median"] <= r["max"] and r["min"] > 0


def test_attention_timer_runs_small_and_records_ratios(tmp_path):
    r = _script("attention_cpu").main(["--rounds", "1", "--calls", "1", "--json", str(tmp_path / "a.json")])
    saved = json.loads((tmp_path / "a.json").read_text())
    assert saved["results"].keys() == r["results"].keys() and len(saved["results"]) == 2
    for timings in saved["results"].values():
        assert set(timings) == {"sdpa", "einsum", "matmul"} and timings["sdpa"]["speed_vs_sdpa_median"] == 1.0
        assert all(t["median_ms"] > 0 for t in timings.values())


def test_main_job_chooses_on_a_validation_split_and_says_so(tmp_path, capsys):
    r = _script("main_job").main(["--variants", "default", "--seeds", "0", "--epochs", "1", "--validation", "10",
                                  "--json", str(tmp_path / "m.json")])
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["training_images"] == 3900 and saved["scored_on"].startswith("validation (10 per class")
    (row,) = saved["runs"]
    assert "test_accuracy" not in row and 0.0 <= row["validation_accuracy"] <= 1.0 and row["epochs"] == 1
    assert r["summary"]["default"]["mean_accuracy"] == row["validation_accuracy"]
    assert "validation accuracy" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown variant 'nope'"):
        _script("main_job").main(["--variants", "nope"])


def test_recipe_timer_runs_small(tmp_path):
    r = _script("recipe_time").main(["--recipe", "cifar10", "--epochs", "2", "--n-train", "64", "--compile", "off",
                                     "--json", str(tmp_path / "t.json")])
    assert len(r["seconds_per_epoch"]) == 2 and r["images_per_second"] > 0 and r["recipe_epochs"] == 200
    with pytest.raises(ValueError, match="unknown recipe"):
        _script("recipe_time").main(["--recipe", "nope"])


def test_rungs_after_a_skipped_bf16_rung_run_in_fp32(monkeypatch):
    """On a CPU without native bf16, rung 2 is skipped, so compile and fused AdamW must be timed in fp32."""
    import vit_tutorial.speed as speed
    seen = []
    monkeypatch.setattr(speed, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(speed, "train_step", lambda *a, **k: seen.append(k["amp_dtype"]))
    cfg = speed.preset_kwargs("cifar10", dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32)
    dev = torch.device("cpu")
    batches = speed._Batches.make(cfg, 8, 4, dev)
    for rung in (0, 1, 3, 4):
        speed._rung_step(rung, cfg, batches, dev, None)()
    assert seen == [None, None, None, None]
    monkeypatch.setattr(speed, "cpu_supports_bf16", lambda: True)
    speed._rung_step(4, cfg, batches, dev, None)()
    assert seen[-1] is torch.bfloat16


def test_cpu_ladder_is_fp32_uses_each_rungs_threads_and_batch_and_gives_verdicts(monkeypatch):
    """The CPU ladder: no autocast on any rung, 1 thread until rung 4, batch 256 only at rung 5."""
    import vit_tutorial.speed as speed
    seen = []
    real_step = speed.train_step

    def spy(model, opt, x, y, **kw):
        seen.append((kw.get("amp_dtype"), torch.get_num_threads(), len(x)))
        return real_step(model, opt, x, y, **kw)

    monkeypatch.setattr(speed, "train_step", spy)
    monkeypatch.setattr(speed.torch, "compile", lambda model, **kw: model)  # the rungs' logic, without compiling
    before = torch.get_num_threads()
    rows = speed.cpu_ladder(steps=1, rounds=2, warmup=1, n_images=512)
    assert torch.get_num_threads() == before  # given back as it was
    assert [r["name"] for r in rows] == list(speed.CPU_RUNGS)
    assert {amp for amp, _, _ in seen} == {None}
    assert [(r["threads"], r["batch_size"]) for r in rows] == [(1, 64)] * 4 + [(before, 64), (before, 256)]
    assert {(t, b) for _, t, b in seen} == {(1, 64), (before, 64), (before, 256)}
    assert rows[0]["verdict"] is None and rows[0]["speedup"] == 1.0
    assert all(r["verdict"] in ("faster", "slower", "within the spread") for r in rows[1:])
    for prev, row in zip(rows, rows[1:]):  # paired by round: this rung's speed over the one before, round by round
        assert row["ratios"] == [a / b for a, b in zip(row["all"], prev["all"])]
        assert row["verdict"] == ("faster" if min(row["ratios"]) > 1 else "slower" if max(row["ratios"]) < 1
                                  else "within the spread")
    assert all(r["images_per_second"] > 0 and len(r["all"]) == 2 for r in rows)


def test_cpu_ladder_without_compile_says_which_rungs_it_skipped():
    from vit_tutorial.speed import cpu_ladder
    rows = cpu_ladder(steps=1, rounds=1, warmup=1, n_images=256, compile=False)
    assert [r["images_per_second"] is None for r in rows] == [False, False, True, True, True, True]
    assert rows[2]["skipped"] == "compiled rungs off (compile=False)" and rows[1]["verdict"] is not None
    assert all(r["verdict"] is None and r["ratios"] == [] for r in rows[2:])  # a skipped rung has no verdict
