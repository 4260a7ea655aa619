import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _registries_left_as_found():
    """A test that registers a neuron class or an affine block must take it out again."""
    from sj_rga import mapping
    from sj_rga.fast import exactness

    before = dict(mapping._REGISTRY), dict(exactness._AFFINE_BLOCKS)
    yield
    after = dict(mapping._REGISTRY), dict(exactness._AFFINE_BLOCKS)
    assert after == before, "the test left an entry in a global registry (register_neuron / register_affine_block)"


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


@pytest.fixture(autouse=True)
def _machine_not_busy(monkeypatch):
    """In-process commands see an idle machine: the busy-machine note (sj_rga.threads) depends on the load of the
    machine running the tests, and a test that wants it sets the load itself."""
    from sj_rga import threads

    monkeypatch.setattr(threads, "load_average", lambda: 0.0)
