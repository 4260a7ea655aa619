import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from sj_rga._compat import LEGACY  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def neuron_kwargs(**kwargs):
    """Constructor keywords valid in both SpikingJelly releases."""
    return kwargs


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


sj2_only = pytest.mark.skipif(LEGACY, reason="needs SpikingJelly 2.x")


@pytest.fixture(scope="session")
def digits_models():
    """Two independently trained digits SNNs (direct input, T = 8, IF neurons, triangle surrogate as in
    the paper) and the test split: (model_a, model_b, x_test [N, 1, 8, 8] in [0, 1], y_test [N])."""
    from sj_rga.data.digits import digits
    from sj_rga.training import train_digits

    models = []
    for seed in (0, 1):
        model, meta = train_digits(T=8, lam=1.0, seed=seed)
        assert meta["accuracy"] > 0.85
        models.append(model)
    x, y = digits()[1].tensors
    return models[0], models[1], x, y
