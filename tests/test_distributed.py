"""Two processes on the CPU with gloo, as CI can run it: torchrun, DistributedDataParallel, sharded batches."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent


def torchrun(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch has no torch.distributed")
def test_two_gloo_processes_end_with_identical_weights_equal_to_one_process(tmp_path):
    from ddp_worker import TINY  # noqa: E402  (tests/ is on sys.path under pytest)
    from vit_tutorial.data import load_digits
    from vit_tutorial.train import train

    proc = torchrun(str(HERE / "ddp_worker.py"), str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0 = torch.load(tmp_path / "rank0-of-2.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1-of-2.pt", weights_only=True)
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"replicas differ in {k}"

    # The global batch is split, not multiplied: two processes take the same steps as one
    # (up to float rounding in how the two half-batch gradients are summed).
    one = train(TINY, load_digits().subset(256, 128), progress=False).model.state_dict()
    for k in r0:
        assert torch.allclose(r0[k], one[k], rtol=1e-3, atol=1e-4), f"{k} drifts from the one-process run"


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch has no torch.distributed")
def test_cli_under_torchrun_writes_world_size_and_one_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = torchrun("-m", "vit_tutorial", "train", "--epochs", "1", "--batch-size", "256", "--out", str(out),
                    "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("test accuracy") == 1  # only the first process reports
    assert "x 2 processes" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["global_batch_size"] == 256 and metrics["batch_size_per_process"] == 128
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "curves.png", "metrics.json"]
