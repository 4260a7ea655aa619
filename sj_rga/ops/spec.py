"""Plain descriptions of one spiking layer, shared by the torch op and its CuPy twin."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Union

import torch

NeuronKind = Literal["if", "lif", "plif"]


@dataclass(frozen=True)
class ChargeSpec:
    """The charge, fire and reset equations of one IF/LIF/PLIF layer, as SpikingJelly computes them.

    ``kind``: ``'if'`` (H = V + X), ``'lif'`` (divides by ``tau``) or ``'plif'`` (multiplies by
    ``decay`` = sigmoid(w), a 0-dim tensor kept as the neuron holds it so the arithmetic matches).
    ``v_reset=None`` is soft reset (V = H - S·v_threshold), otherwise hard reset to ``v_reset``.
    ``legacy`` selects SpikingJelly 0.0.0.0.14's floating-point forms for a zero reset value
    (``V·(1 - 1/τ) + X`` instead of ``V - V/τ + X``), so spikes match that release bit for bit.
    """

    kind: NeuronKind
    v_threshold: float
    v_reset: Optional[float]
    decay_input: bool = True
    tau: Optional[float] = None
    decay: Optional[torch.Tensor] = None
    legacy: bool = False

    @property
    def reset_value(self) -> float:
        """V_r: the reset value, 0 for soft reset (membrane-potential units)."""
        return 0.0 if self.v_reset is None else self.v_reset

    @property
    def reset_is_zero(self) -> bool:
        return self.v_reset is None or self.v_reset == 0.0

    @property
    def potential_gain(self) -> float:
        """dH/dV: 1 (IF), or 1 - 1/τ (LIF) and 1 - sigmoid(w) (PLIF), the leak λ."""
        if self.kind == "if":
            return 1.0
        return 1.0 - (1.0 / self.tau if self.kind == "lif" else float(self.decay))

    @property
    def input_gain(self) -> float:
        """dH/dX: 1, or 1/τ (LIF) and sigmoid(w) (PLIF) when the input is decayed (``decay_input``)."""
        if self.kind == "if" or not self.decay_input:
            return 1.0
        return 1.0 / self.tau if self.kind == "lif" else float(self.decay)


@dataclass(frozen=True)
class SlopeSpec:
    """Everything the RGA backward needs besides Ī: g's parameters and dI/dX.

    ``lam``: leak λ in [0, 1]; ``theta``: threshold above reset (> 0); ``input_gain``: dI/dX
    (1, or 1/τ for a LIF neuron with ``decay_input=True``); ``beta`` > 1, ``gamma`` ≥ 0.
    """

    lam: float
    theta: float
    input_gain: float
    beta: float
    gamma: float


Scalar = Union[float, torch.Tensor]
