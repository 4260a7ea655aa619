"""The fused multi-step rate op: exact spikes forward, RGA backward (torch reference + CuPy twin)."""
from .function import RateNeuronFunction, ScaledGradientFunction, rate_neuron
from .spec import ChargeSpec, SlopeSpec

__all__ = ["ChargeSpec", "SlopeSpec", "RateNeuronFunction", "ScaledGradientFunction", "rate_neuron"]
