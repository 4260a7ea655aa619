"""The argument and label checks every attack, estimator and trainer shares (sj_rga.validation)."""
import math

import numpy as np
import pytest
import torch

from sj_rga import validation as v


@pytest.mark.parametrize("value", [0, 0.5, 8 / 255, np.float32(0.25), 3])
def test_eps_accepts_finite_non_negative_reals_as_floats(value):
    assert v.check_eps(value) == pytest.approx(float(value)) and type(v.check_eps(value)) is float


@pytest.mark.parametrize("value, error, match", [
    (True, TypeError, "eps must be a real number"), ("0.1", TypeError, "got str"),
    (-0.1, ValueError, r"finite and >= 0 \(in input units"), (math.inf, ValueError, "finite"),
    (math.nan, ValueError, "finite"),
])
def test_eps_refusals_name_the_argument_and_the_units(value, error, match):
    with pytest.raises(error, match=match):
        v.check_eps(value)
    with pytest.raises(error, match="^alpha"):
        v.check_eps(value, "alpha")


def test_counts_steps_and_seeds():
    assert v.check_count(np.int64(3), "restarts") == 3 and v.check_steps(1) == 1 and v.check_seed(0) == 0
    for bad in (0, -1, 1.0, True, "2"):
        with pytest.raises(ValueError, match=r"^restarts must be an integer >= 1, got"):
            v.check_count(bad, "restarts")
    with pytest.raises(ValueError, match=r"^steps must be an integer >= 1, got 0"):
        v.check_steps(0)
    for bad in (-1, 0.5, False):
        with pytest.raises(ValueError, match=r"^seed must be an integer >= 0"):
            v.check_seed(bad)


def test_reals_finite_values_and_intervals():
    assert v.check_real(2, "gamma") == 2.0 and v.check_finite(-1.5, "beta") == -1.5
    with pytest.raises(TypeError, match="^gamma must be a real number, got NoneType"):
        v.check_real(None, "gamma")
    with pytest.raises(ValueError, match="^beta must be finite, got inf"):
        v.check_finite(math.inf, "beta")
    assert v.check_range(1.0, "gamma", 0.0, 1.0, low_open=True, high_open=False) == 1.0
    with pytest.raises(ValueError, match=r"^gamma must lie in \(0, 1\], got 0"):
        v.check_range(0, "gamma", 0.0, 1.0, low_open=True, high_open=False)
    with pytest.raises(ValueError, match=r"must lie in \[0, ∞\), got nan"):
        v.check_range(math.nan, "gamma", 0.0, math.inf, low_open=False, high_open=True)


def test_labels_are_integer_class_indices_one_per_sample():
    x = torch.zeros(3, 1, 8, 8)
    y = torch.tensor([0, 2, 9], dtype=torch.int32)
    assert torch.equal(v.check_labels(x, y), y)
    with pytest.raises(TypeError, match="torch.Tensor of class indices, got list"):
        v.check_labels(x, [0, 2, 9])
    for dtype in (torch.float32, torch.bool):
        with pytest.raises(TypeError, match="integer class indices, got dtype"):
            v.check_labels(x, y.to(dtype))
    with pytest.raises(ValueError, match=r"shape \[B\] = \(3,\), got \(1, 3\)"):
        v.check_labels(x, y[None])
    assert v.check_label_range(y, 10) is y and v.check_label_range(y[:0], 1).numel() == 0
    for bad in (torch.tensor([10]), torch.tensor([-1])):
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\) for this 10-class model"):
            v.check_label_range(bad, 10)
