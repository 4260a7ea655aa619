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
