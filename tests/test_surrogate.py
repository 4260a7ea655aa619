import math

import pytest
import torch
from spikingjelly.activation_based import surrogate

from sj_rga import RGA, rate_slope

from rga_reference import slope_reference


@pytest.mark.parametrize("lam", [1.0, 0.9, 0.5, 0.0])
@pytest.mark.parametrize("theta", [1.0, 0.5, 2.5])
@pytest.mark.parametrize("beta,gamma", [(2.0, 0.2), (1.5, 0.0), (3.0, 0.1)])
def test_rate_slope_at_interval_edges(lam, theta, beta, gamma):
    knee, top = (1 - lam) * theta, beta * theta
    tiny = 1e-9
    points = torch.tensor([-1.0, -tiny, 0.0, tiny, knee - tiny, knee, knee + tiny, (knee + top) / 2,
                           top - tiny, top, top + tiny, 10 * top], dtype=torch.float64)
    got = rate_slope(points, lam, theta, beta, gamma)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, slope_reference(points, lam, theta, beta, gamma), rtol=0, atol=0)
    middle = (1 - gamma * theta + gamma * theta * lam) / ((beta + lam - 1) * theta)
    assert got[0] == 0 and got[1] == 0 and got[-1] == 0 and got[-2] == 0
    assert got[2] == gamma  # I = 0 belongs to the first interval, for IF too
    assert got[5] == gamma  # I = (1-λ)θ belongs to the first interval
    assert got[6] == pytest.approx(middle) and got[9] == pytest.approx(middle)  # (knee, βθ] is the middle


def test_rate_curve_reaches_one_at_beta_theta():
    """Integrating g from 0 to βθ gives rate 1, whatever λ and θ."""
    for lam, theta in [(1.0, 1.0), (0.9, 1.0), (0.5, 2.0)]:
        grid = torch.linspace(0, 2 * theta, 200001, dtype=torch.float64)
        rate = torch.trapezoid(rate_slope(grid, lam, theta), grid)
        assert rate.item() == pytest.approx(1.0, abs=1e-4)


def test_paper_values_for_if_and_lif():
    assert rate_slope(torch.tensor([0.5]), 1.0, 1.0).item() == pytest.approx(0.5)
    # λ = 0.5, θ = 1: (1 - 0.2 + 0.1) / 1.5 = 0.6 above the knee at 0.5
    assert rate_slope(torch.tensor([0.75]), 0.5, 1.0).item() == pytest.approx(0.6)
    assert rate_slope(torch.tensor([0.25]), 0.5, 1.0).item() == pytest.approx(0.2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_rate_slope_keeps_dtype(dtype):
    assert rate_slope(torch.ones(3, dtype=dtype), 1.0, 1.0).dtype == dtype


def test_rga_is_a_spikingjelly_surrogate_with_heaviside_forward():
    sg = RGA(0.9)
    assert isinstance(sg, surrogate.SurrogateFunctionBase)
    x = torch.tensor([-0.5, 0.0, 0.5])
    assert torch.equal(sg(x), torch.tensor([0.0, 1.0, 1.0]))
    assert "lam=0.9" in repr(sg)


@pytest.mark.parametrize("kwargs,exc", [
    (dict(beta=1.0), ValueError), (dict(beta=0.5), ValueError), (dict(gamma=-0.1), ValueError),
    (dict(lam=1.5), ValueError), (dict(lam=-0.1), ValueError), (dict(beta=math.nan), ValueError),
    (dict(beta="2"), TypeError), (dict(lam=True), TypeError),
])
def test_rga_rejects_bad_parameters(kwargs, exc):
    with pytest.raises(exc):
        RGA(**kwargs)


def test_rate_slope_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        rate_slope(torch.ones(3, dtype=torch.int64), 1.0, 1.0)
    with pytest.raises(TypeError):
        rate_slope([1.0], 1.0, 1.0)
    with pytest.raises(ValueError, match="theta"):
        rate_slope(torch.ones(3), 1.0, 0.0)
    with pytest.raises(ValueError, match="beta"):
        rate_slope(torch.ones(3), 1.0, 1.0, beta=1.0)


def test_rga_refuses_gradients_outside_the_rate_op():
    with pytest.raises(RuntimeError, match="multi-step"):
        RGA()(torch.zeros(3, requires_grad=True))
    with pytest.raises(ValueError):
        RGA().set_spiking_mode(False)
