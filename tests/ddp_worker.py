"""Run by tests/test_distributed.py under torchrun: train a tiny ViT, save this process's weights."""
import sys
from pathlib import Path

import torch

from vit_tutorial.data import load_digits
from vit_tutorial.train import TrainConfig, train

TINY = TrainConfig(epochs=2, batch_size=64, device="cpu", seed=0,
                   model_overrides=dict(dim=32, depth=1, heads=2, dim_head=16, mlp_dim=64))

if __name__ == "__main__":
    out = Path(sys.argv[1])
    result = train(TINY, load_digits().subset(256, 128), progress=False)
    torch.save(result.model.state_dict(), out / f"rank{result.rank}-of-{result.world_size}.pt")
