import pytest
import torch

from vit_tutorial.data import load_digits
from vit_tutorial.train import TrainConfig

TINY_MODEL = dict(dim=32, depth=1, heads=2, dim_head=16, mlp_dim=64)


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture
def tiny_data(digits):
    return digits.subset(256, 128)


@pytest.fixture
def tiny_config():
    return TrainConfig(epochs=2, batch_size=64, device="cpu", model_overrides=dict(TINY_MODEL))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
