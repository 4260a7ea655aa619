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
def digits_trained(tmp_path_factory):
    """``train_digits`` (direct input, T = 8, IF neurons, the paper's triangle surrogate) with training seeds 0
    and 1, trained once per session: [(model, meta, checkpoint path)]. Every test that needs a trained digits
    model shares these (training them again is a few seconds each)."""
    from sj_rga.training import train_digits

    runs = []
    for seed in (0, 1):
        path = tmp_path_factory.mktemp("digits") / f"digits_seed{seed}.pt"
        model, meta = train_digits(T=8, lam=1.0, seed=seed, checkpoint=path)
        assert meta["accuracy"] > 0.85 and not model.training
        runs.append((model, meta, path))
    return runs


@pytest.fixture(scope="session")
def digits_models(digits_trained):
    """Two independently trained digits SNNs (direct input, T = 8, IF neurons, triangle surrogate as in
    the paper) and the test split: (model_a, model_b, x_test [N, 1, 8, 8] in [0, 1], y_test [N])."""
    from sj_rga.data.digits import digits

    x, y = digits()[1].tensors
    return digits_trained[0][0], digits_trained[1][0], x, y


@pytest.fixture(scope="session")
def digits_checkpoint(digits_trained):
    """The checkpoint of ``digits_models``' first model, as ``train_digits(checkpoint=...)`` wrote it
    (``sj-rga train --data digits`` trains the same model). Read it, never write to it."""
    return digits_trained[0][2]


@pytest.fixture(autouse=True)
def _machine_not_busy(monkeypatch):
    """In-process commands see an idle machine: the busy-machine note (sj_rga.threads) depends on the load of the
    machine running the tests, and a test that wants it sets the load itself."""
    from sj_rga import threads

    monkeypatch.setattr(threads, "load_average", lambda: 0.0)


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """``sj-rga demo --quick`` run once, as a user runs it, with a cold model cache: (the finished process, the
    output folder, the cache, which then holds the trained models for any later run)."""
    import os
    import subprocess

    root = tmp_path_factory.mktemp("demo")
    out, cache = root / "demo", root / "cache"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("SJ_RGA_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "sj_rga.cli", "demo", "--quick", "--out", str(out), "--cache-dir",
                           str(cache), "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    return done, out, cache


@pytest.fixture(scope="session")
def poisson_checkpoint(tmp_path_factory):
    """digits_snn trained on Poisson spikes (T = 4, two epochs; about 80 % test accuracy), as a checkpoint."""
    from shared_job import trained_checkpoint

    return trained_checkpoint(tmp_path_factory, "poisson", "poisson")


@pytest.fixture(scope="session")
def digits_checkpoint_t4(tmp_path_factory):
    """digits_snn trained on direct input (T = 4, two epochs; about 80 % test accuracy), as a checkpoint."""
    from shared_job import trained_checkpoint

    return trained_checkpoint(tmp_path_factory, "digits", None)


@pytest.fixture(scope="session")
def two_rank_job(tmp_path_factory, poisson_checkpoint, digits_checkpoint_t4):
    """tests/distributed_worker.py's "shared" task on 2 gloo ranks (tests/shared_job.py), once per session."""
    from shared_job import launch

    return launch(tmp_path_factory, poisson_checkpoint, digits_checkpoint_t4)
