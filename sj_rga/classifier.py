"""``SNNClassifier``: a SpikingJelly model + T + encoding + gradient mode -> logits ``[B, classes]``.

Hand it to any attack, ours or torchattacks': it takes pixel-space batches, normalises inside, resets
neuron state on every call, runs the model in multi-step mode with BatchNorm/Dropout in eval, averages
the output over time, and leaves the model's modes and state as they were.
"""
from __future__ import annotations

import contextlib
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

from . import encoding as enc
from .fast import fast_rga_logits, use_fast_path
from .mapping import SPIKING_BASES
from .rate_mode import rate_mode, restore_model_state, save_model_state, spiking_neurons
from .surrogate import DEFAULT_BETA, DEFAULT_GAMMA, RGA, check_leak, check_smoothing

Bounds = Optional[tuple[Optional[float], Optional[float]]]
GRADIENTS = ("stbp", "rga")


def _channel_stats(value: Union[None, float, Sequence[float], torch.Tensor], name: str) -> Optional[torch.Tensor]:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float64).flatten()
    if t.numel() == 0 or not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite numbers (one per channel), got {value!r}")
    if name == "std" and (t <= 0).any():
        raise ValueError(f"std must be positive, got {value!r}")
    return t


def _check_bounds(bounds: Bounds) -> tuple[Optional[float], Optional[float]]:
    if bounds is None:
        return (None, None)
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise ValueError(f"bounds must be (low, high) with None for no bound, got {bounds!r}")
    low, high = (None if b is None else float(b) for b in bounds)
    if low is not None and high is not None and not low < high:
        raise ValueError(f"bounds must satisfy low < high, got {bounds!r}")
    return (low, high)


class SNNClassifier(nn.Module):
    """Logits ``[B, classes]`` (mean over T) of a SpikingJelly model, for attacks in pixel space.

    ``model`` maps a time-major ``[T, B, ...]`` tensor to ``[T, B, classes]`` (or ``[B, classes]``).
    ``encoding``: ``'direct'`` (input ``[B, ...]`` repeated T times), ``'poisson'`` (Bernoulli spikes
    with a straight-through backward; ``eot`` samples averaged when gradients are taken; ``seed`` makes
    the spikes reproducible), ``'frames'`` (input ``[B, T, C, H, W]`` event frames; T must equal the
    data's time axis). ``gradient``: ``'stbp'`` (the model's own surrogate, BPTT) or ``'rga'`` (every
    spiking neuron under :func:`sj_rga.rate_mode` with ``lam``, ``beta``, ``gamma``).
    ``mean``/``std`` (per channel) normalise the encoded input inside; ``bounds`` is the valid input
    range (``None`` for no bound on a side; e.g. ``(0, None)`` for event counts).
    ``rga_path`` (with ``gradient='rga'``): ``'auto'`` takes the fast RGA gradient (:mod:`sj_rga.fast`: a
    no-grad T-step forward plus one T = 1 backward, same logits and gradients) when the model provably allows
    it and the per-layer backward otherwise; ``'fast'`` insists (ValueError if not provable); ``'layer'``
    always takes the per-layer backward.
    """

    def __init__(
        self,
        model: nn.Module,
        T: int,
        encoding: str = "direct",
        gradient: str = "rga",
        mean: Union[None, float, Sequence[float]] = None,
        std: Union[None, float, Sequence[float]] = None,
        bounds: Bounds = (0.0, 1.0),
        eot: int = 1,
        seed: Optional[int] = None,
        lam: Optional[float] = None,
        beta: float = DEFAULT_BETA,
        gamma: float = DEFAULT_GAMMA,
        rga_path: str = "auto",
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T (time steps) must be an integer >= 1, got {T!r}")
        if encoding not in enc.ENCODINGS:
            raise ValueError(f"encoding must be one of {enc.ENCODINGS}, got {encoding!r}")
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
        if isinstance(eot, bool) or not isinstance(eot, int) or eot < 1:
            raise ValueError(f"eot (samples averaged per gradient) must be an integer >= 1, got {eot!r}")
        if eot > 1 and encoding != "poisson":
            raise ValueError("eot > 1 only makes sense for the random 'poisson' encoding")
        if lam is not None:
            check_leak(lam)
        check_smoothing(beta, gamma)
        spiking_neurons(model)  # a clear error now for a model without neurons
        use_fast_path(model, rga_path)  # a clear error now for an unknown rga_path or an unprovable 'fast'
        self.model = model
        self.T, self.encoding, self.gradient, self.eot, self.seed = T, encoding, gradient, eot, seed
        self.lam, self.beta, self.gamma, self.rga_path = lam, beta, gamma, rga_path
        self.norm_mean, self.norm_std = _channel_stats(mean, "mean"), _channel_stats(std, "std")
        self.bounds = _check_bounds(bounds)
        self._generators: dict[torch.device, torch.Generator] = {}

    def extra_repr(self) -> str:
        return (f"T={self.T}, encoding={self.encoding!r}, gradient={self.gradient!r}, bounds={self.bounds}, "
                f"eot={self.eot}")

    def train(self, mode: bool = True) -> SNNClassifier:
        """Set only the classifier's own flag: every call sets the wrapped model's modes itself and puts
        them back, so ``eval()``/``train()`` from an attack library never change the user's model."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        self.training = mode
        return self

    def with_time_steps(self, T: int) -> SNNClassifier:
        """The same classifier (same model object) with T steps, e.g. ``2 * T`` for a time-extended attack."""
        return SNNClassifier(self.model, T, self.encoding, self.gradient,
                             None if self.norm_mean is None else self.norm_mean.tolist(),
                             None if self.norm_std is None else self.norm_std.tolist(),
                             self.bounds, self.eot, self.seed, self.lam, self.beta, self.gamma, self.rga_path)

    def with_gradient(self, gradient: str) -> SNNClassifier:
        """The same classifier with another gradient mode (``'stbp'`` or ``'rga'``)."""
        twin = self.with_time_steps(self.T)
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
        twin.gradient = gradient
        return twin

    def reseed(self) -> None:
        """Restart the Poisson spike stream from ``seed`` (attacks call it so equal seeds give equal results)."""
        self._generators.clear()

    # -- input checks -------------------------------------------------------------------------------
    def check_input(self, x: object) -> torch.Tensor:
        """A clear error unless ``x`` is a finite floating batch of the right layout inside the bounds."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"inputs must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"inputs must be floating point (pixel space), got dtype {x.dtype}")
        if self.encoding == "frames":
            if x.dim() != 5:
                raise ValueError("the 'frames' encoding expects [B, T, C, H, W] event frames, "
                                 f"got shape {tuple(x.shape)}")
            if x.shape[1] != self.T:
                raise ValueError(f"the frames have {x.shape[1]} time steps but the classifier has T={self.T}")
        elif x.dim() < 2:
            raise ValueError(f"inputs must be a batch [B, ...], got shape {tuple(x.shape)}")
        elif x.dim() == 5:
            raise ValueError(f"a 5-D input {tuple(x.shape)} looks like event frames [B, T, C, H, W], but this "
                             f"classifier uses the {self.encoding!r} encoding; use encoding='frames'")
        if x.shape[0] == 0:
            raise ValueError("inputs must hold at least one sample")
        x = x.detach()
        if not bool(torch.isfinite(x).all()):
            raise ValueError("inputs contain NaN or inf")
        low, high = self.bounds
        if low is not None and float(x.min()) < low - 1e-6:
            raise ValueError(f"inputs go below the lower bound {low} (min {float(x.min()):.4g}); "
                             "pixel-space inputs expected")
        if high is not None and float(x.max()) > high + 1e-6:
            hint = "; event counts have no upper bound: pass bounds=(0.0, None)" if self.encoding == "frames" \
                else "; pixel-space inputs expected"
            raise ValueError(f"inputs go above the upper bound {high} (max {float(x.max()):.4g}){hint}")
        return x

    # -- forward ------------------------------------------------------------------------------------
    def _generator(self, device: torch.device) -> Optional[torch.Generator]:
        if self.seed is None:
            return None
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def encode(self, x: torch.Tensor, T: Optional[int] = None) -> torch.Tensor:
        """Pixel-space batch -> normalised time-major network input ``[T, B, ...]``."""
        return enc.encode(x, self.T if T is None else T, self.encoding, self.norm_mean, self.norm_std,
                          self._generator(x.device))

    def _prepare_model(self) -> None:
        """Multi-step mode, BatchNorm/Dropout in eval, neurons in train (0.0.0.0.14's eval path has no
        input gradient), fresh neuron state."""
        functional.set_step_mode(self.model, "m")
        self.model.eval()
        for m in self.model.modules():
            if isinstance(m, SPIKING_BASES):
                m.train()
        functional.reset_net(self.model)

    def _logits(self, x_seq: torch.Tensor) -> torch.Tensor:
        out = self.model(x_seq)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the model must return a tensor [T, B, classes], got {type(out).__name__}")
        if out.dim() == 3 and out.shape[0] == x_seq.shape[0]:
            return out.mean(0)
        if out.dim() == 2 and out.shape[0] == x_seq.shape[1]:
            return out
        raise ValueError(f"the model must return [T, B, classes] or [B, classes], got shape {tuple(out.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]`` for a pixel-space batch (``[B, T, C, H, W]`` for frames)."""
        self.check_input(x)
        repeats = self.eot if (self.encoding == "poisson" and torch.is_grad_enabled()) else 1
        saved = save_model_state(self.model)
        try:
            self._prepare_model()
            fast = self.gradient == "rga" and use_fast_path(self.model, self.rga_path)
            context = rate_mode(self.model, self.lam, self.beta, self.gamma) if self.gradient == "rga" and not fast \
                else contextlib.nullcontext()
            with context:
                logits = 0
                for _ in range(repeats):
                    functional.reset_net(self.model)
                    x_seq = self.encode(x)
                    rga = RGA(self.lam, self.beta, self.gamma)
                    logits = logits + (fast_rga_logits(self.model, x_seq, self._logits, rga)
                                       if fast else self._logits(x_seq))
            return logits / repeats
        finally:
            restore_model_state(saved)
