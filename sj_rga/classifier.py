"""``SNNClassifier``: a SpikingJelly model + T + encoding + gradient estimator -> logits ``[B, classes]``.

Hand it to any attack, ours or torchattacks': it takes pixel-space batches, normalises inside, resets
neuron state on every call, runs the model in multi-step mode with BatchNorm/Dropout in eval, averages
the output over time, takes the input gradient with the chosen estimator (:mod:`sj_rga.gradients`), and
leaves the model's parameters, modes and state as they were.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

from . import encoding as enc
from .fast import RGA_PATHS
from .gradients import GradientEstimator, Statistics, estimator
from .intercept import restore_model_state, save_model_state
from .mapping import SPIKING_BASES

Bounds = Optional[tuple[Optional[float], Optional[float]]]

#: Wrappers that copy or synchronise a module and run it; the classifier runs the module inside them itself.
PARALLEL_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel)


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


def unwrap_parallel(model: nn.Module) -> nn.Module:
    """The module inside ``nn.DataParallel`` / ``DistributedDataParallel`` wrappers (``model`` itself if none)."""
    while isinstance(model, PARALLEL_WRAPPERS):
        model = model.module
    return model


class SNNClassifier(nn.Module):
    r"""Logits ``[B, classes]`` (mean over T) of a SpikingJelly model, for attacks in pixel space::

        logits(x) = (1/T) Σ_t model(normalise(encode(x)))[t]

    The forward logits are the stock model's, bit for bit, whatever the estimator; the backward is the
    input gradient of the chosen estimator (method §2).

    Arguments:
        model (nn.Module): maps a time-major ``[T, B, ...]`` tensor (see ``input_layout``) to ``[T, B, classes]``
            (or ``[B, classes]``).
        T (int): time steps ≥ 1; for ``'frames'`` it must equal the data's time axis.
        encoding (str): ``'direct'`` (input ``[B, ...]`` repeated T times), ``'poisson'`` (Bernoulli spikes
            with a straight-through backward) or ``'frames'`` (input ``[B, T, C, H, W]`` event frames).
            (Default: ``'direct'``)
        gradient (str or GradientEstimator): the input-gradient estimator, by name (``'stbp'``, ``'rga'``,
            ``'bptr'``, ``'hart'``, ``'pdsg'``, ``'assg'``, with the published defaults) or as an object
            carrying its parameters (``sj_rga.gradients.HART(gamma=0.5)``, ``RGA(lam=0.9)``, ``ASSG(A=0.45)``,
            ...). (Default: ``'rga'``)
        mean (float, sequence of floats or None): per-channel mean subtracted from the encoded input, in pixel
            units. (Default: None)
        std (float, sequence of floats or None): per-channel standard deviation dividing it. (Default: None)
        bounds (tuple): the valid input range ``(low, high)`` in pixel units, ``None`` for no bound on a side
            (e.g. ``(0, None)`` for event counts). (Default: ``(0.0, 1.0)``)
        eot (int): Poisson samples averaged when gradients are taken (``'poisson'`` only). (Default: 1)
        seed (int or None): makes the Poisson spikes reproducible (None: torch's global generator).
            (Default: None)
        rga_path (str): for RGA, BPTR and HART (the time-uniform estimators): ``'auto'`` takes the fast path
            (:mod:`sj_rga.fast`: a no-grad T-step forward plus one T = 1 backward, same logits and gradients)
            when the model provably allows it and the per-layer backward otherwise; ``'fast'`` insists
            (ValueError if not provable); ``'layer'`` always takes the per-layer backward. (Default: ``'auto'``)
        parameter_gradients (bool): False builds no autograd graph to the model's parameters, so an attack
            (or torchattacks' FAB, which calls ``.backward()``) leaves no ``.grad`` on them; their
            ``requires_grad`` flags are restored after every call. True keeps the graph (adversarial
            training). (Default: False)
        input_layout='TB'|'BT'|'B' (str): the model takes ``[T, B, ...]``, ``[B, T, ...]`` or ``[B, ...]`` inputs.
        output=None (int, str or callable): picks the logits out of a tuple, list or dict output.

    Shape:
        - input: a pixel-space batch, images ``[B, C, H, W]`` (``[B, T, C, H, W]`` frames) within ``bounds``.
        - output: logits ``[B, classes]``.

    ASSG's statistics live here, never in the model: a new classifier starts fresh, every forward taken
    with gradients updates them once (not again inside the EOT repeats), and :meth:`restart` starts them
    afresh, as every attack run does. They are per sample: a layer whose batch changes starts afresh.

    ``nn.DataParallel`` and ``DistributedDataParallel`` wrappers are looked through: the classifier runs
    the wrapped module itself, on its device, so every estimator sees the whole batch (DataParallel's
    copies would not carry a batch statistic, and an input gradient needs no parameter synchronisation).
    For several GPUs run one process per GPU under torchrun, each attacking its share of the data.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, encoding="direct", gradient="rga",
        ...                                   mean=(0.5,), std=(0.25,))
        >>> logits = classifier(images)                       # [B, classes]
        >>> x_adv = sj_rga.attacks.PGD(classifier, eps=8 / 255)(images, labels)
    """

    def __init__(
        self,
        model: nn.Module,
        T: int,
        encoding: str = "direct",
        gradient: Union[str, GradientEstimator] = "rga",
        mean: Union[None, float, Sequence[float]] = None,
        std: Union[None, float, Sequence[float]] = None,
        bounds: Bounds = (0.0, 1.0),
        eot: int = 1,
        seed: Optional[int] = None,
        rga_path: str = "auto",
        parameter_gradients: bool = False,
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T (time steps) must be an integer >= 1, got {T!r}")
        if encoding not in enc.ENCODINGS:
            raise ValueError(f"encoding must be one of {enc.ENCODINGS}, got {encoding!r}")
        if isinstance(eot, bool) or not isinstance(eot, int) or eot < 1:
            raise ValueError(f"eot (samples averaged per gradient) must be an integer >= 1, got {eot!r}")
        if eot > 1 and encoding != "poisson":
            raise ValueError("eot > 1 only makes sense for the random 'poisson' encoding")
        if rga_path not in RGA_PATHS:
            raise ValueError(f"rga_path must be one of {RGA_PATHS}, got {rga_path!r}")
        if not isinstance(parameter_gradients, bool):
            raise TypeError(f"parameter_gradients must be True or False, got {parameter_gradients!r}")
        self.estimator: GradientEstimator = estimator(gradient)
        self.estimator.check_model(unwrap_parallel(model), rga_path)  # a clear error now, not at the first call
        self.model = model
        self.T, self.encoding, self.eot, self.seed = T, encoding, eot, seed
        self.rga_path, self.parameter_gradients = rga_path, parameter_gradients
        self.norm_mean, self.norm_std = _channel_stats(mean, "mean"), _channel_stats(std, "std")
        self.bounds = _check_bounds(bounds)
        self._generators: dict[torch.device, torch.Generator] = {}
        self._statistics: Optional[Statistics] = self.estimator.new_statistics()

    @property
    def gradient_name(self) -> str:
        """The estimator's short name (``'stbp'``, ``'rga'``, ``'bptr'``, ``'hart'``, ``'pdsg'``, ``'assg'``)."""
        return self.estimator.name

    @property
    def statistics(self) -> Optional[Statistics]:
        """The estimator's statistics (ASSG's moments) for the current attack run, or None."""
        return self._statistics

    @property
    def network(self) -> nn.Module:
        """The module the classifier runs: ``model``, or the module inside its DataParallel/DDP wrappers."""
        return unwrap_parallel(self.model)

    def extra_repr(self) -> str:
        return (f"T={self.T}, encoding={self.encoding!r}, gradient={self.estimator!r}, bounds={self.bounds}, "
                f"eot={self.eot}")

    def restart(self) -> None:
        """Restart the Poisson spike stream from ``seed`` and the adaptive gradient's statistics.

        Every attack run starts with it (the package's attacks call it; torchattacks' attacks call
        ``eval()``, which calls it), so equal seeds give equal adversarial examples."""
        self._generators.clear()
        self._statistics = self.estimator.new_statistics()

    def train(self, mode: bool = True) -> SNNClassifier:
        """Set only the classifier's own flag, and :meth:`restart`. Every call sets the wrapped model's modes
        itself and puts them back, so ``eval()``/``train()`` from an attack library never change the user's
        model; torchattacks calls ``eval()`` at the start of every attack, which restarts the run."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        self.training = mode
        self.restart()
        return self

    def _copy(self, **changes: Any) -> SNNClassifier:
        settings = dict(model=self.model, T=self.T, encoding=self.encoding, gradient=self.estimator,
                        mean=None if self.norm_mean is None else self.norm_mean.tolist(),
                        std=None if self.norm_std is None else self.norm_std.tolist(), bounds=self.bounds,
                        eot=self.eot, seed=self.seed, rga_path=self.rga_path,
                        parameter_gradients=self.parameter_gradients)
        return SNNClassifier(**{**settings, **changes})

    def with_time_steps(self, T: int) -> SNNClassifier:
        """The same classifier (same model object) with T steps, e.g. ``2 * T`` for a time-extended attack."""
        return self._copy(T=T)

    def with_gradient(self, gradient: Union[str, GradientEstimator]) -> SNNClassifier:
        """The same classifier with another estimator, by name or as an object (fresh statistics)."""
        return self._copy(gradient=gradient)

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

    def _prepare_model(self, network: nn.Module) -> None:
        """Multi-step mode, BatchNorm/Dropout in eval, neurons in train (0.0.0.0.14's eval path has no
        input gradient), fresh neuron state."""
        functional.set_step_mode(network, "m")
        network.eval()
        for m in network.modules():
            if isinstance(m, SPIKING_BASES):
                m.train()
        functional.reset_net(network)

    def _logits(self, x_seq: torch.Tensor) -> torch.Tensor:
        out = self.network(x_seq)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the model must return a tensor [T, B, classes], got {type(out).__name__}")
        if out.dim() == 3 and out.shape[0] == x_seq.shape[0]:
            return out.mean(0)
        if out.dim() == 2 and out.shape[0] == x_seq.shape[1]:
            return out
        raise ValueError(f"the model must return [T, B, classes] or [B, classes], got shape {tuple(out.shape)}")

    def _check_device(self, x: torch.Tensor, network: nn.Module) -> None:
        """Inside DataParallel the inputs must be on the wrapped module's device (the classifier runs it)."""
        if isinstance(self.model, nn.DataParallel):
            device = next((p.device for p in network.parameters()), x.device)
            if device != x.device:
                raise ValueError(f"the inputs are on {x.device} but the module inside nn.DataParallel is on {device}; "
                                 "SNNClassifier runs that module itself: move the inputs to its device")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]`` for a pixel-space batch (``[B, T, C, H, W]`` for frames)."""
        self.check_input(x)
        network = self.network
        self._check_device(x, network)
        repeats = self.eot if (self.encoding == "poisson" and torch.is_grad_enabled()) else 1
        saved = save_model_state(network)
        frozen = [] if self.parameter_gradients else [p for p in network.parameters() if p.requires_grad]
        try:
            for p in frozen:
                p.requires_grad_(False)
            self._prepare_model(network)
            logits = 0
            for repeat in range(repeats):
                functional.reset_net(network)
                logits = logits + self.estimator.logits(network, self.encode(x), self._logits, path=self.rga_path,
                                                        statistics=self._statistics, update=repeat == 0)
            return logits / repeats
        finally:
            for p in frozen:
                p.requires_grad_(True)
            restore_model_state(saved)
