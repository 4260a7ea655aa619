"""``SNNClassifier``: a SpikingJelly model + T + encoding + gradient estimator -> logits ``[B, classes]``.

Hand it to any attack, ours or torchattacks': it takes pixel-space batches, normalises inside, resets
neuron state on every call, runs the model in multi-step mode with BatchNorm/Dropout in eval, averages
the output over time, takes the input gradient with the chosen estimator (:mod:`sj_rga.gradients`), and
leaves the model's parameters, modes and state as they were.
"""
from __future__ import annotations

import traceback
from typing import Any, Optional, Sequence, Union

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

from . import encoding as enc
from . import layouts
from ._compat import reset_net
from .errors import UserModelError, model_location
from .fast import RGA_PATHS
from .gradients import GradientEstimator, Statistics, estimator
from .intercept import restore_model_state, save_model_state
from .mapping import SPIKING_BASES, spiking_neurons
from .seeding import StreamPool, sample_indices

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


def _raised_by_sj_rga(error: BaseException) -> bool:
    """Whether the innermost frame of ``error``'s traceback outside torch is sj-rga's own code (a gradient handle
    inside the model raised it), rather than the model's."""
    names = [frame.filename.replace("\\", "/") for frame in traceback.extract_tb(error.__traceback__)]
    inner = next((name for name in reversed(names) if "/torch/" not in name), "")
    return "/sj_rga/" in inner


def unwrap_parallel(model: nn.Module) -> nn.Module:
    """The module inside ``nn.DataParallel`` / ``DistributedDataParallel`` wrappers (``model`` itself if none)."""
    while isinstance(model, PARALLEL_WRAPPERS):
        model = model.module
    return model


#: Where the Poisson streams of undeclared sub-batch rows start (far above any data-set index).
UNDECLARED_ROWS = 2 ** 48

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
        seed (int or None): makes the Poisson spikes reproducible, per sample (:mod:`sj_rga.seeding`; None:
            torch's global generator). (Default: None)
        rga_path (str): for RGA, BPTR and HART (the time-uniform estimators): ``'auto'`` takes the fast path
            (:mod:`sj_rga.fast`: a no-grad T-step forward plus one T = 1 backward, same logits and gradients)
            when the model provably allows it and the per-layer backward otherwise; ``'fast'`` insists
            (ValueError if not provable); ``'layer'`` always takes the per-layer backward. (Default: ``'auto'``)
        parameter_gradients (bool): False builds no autograd graph to the model's parameters, so an attack
            (or torchattacks' FAB, which calls ``.backward()``) leaves no ``.grad`` on them; their
            ``requires_grad`` flags are restored after every call. True keeps the graph (adversarial
            training). (Default: False)
        input_layout (str): what the model takes (:mod:`sj_rga.layouts`): ``'TB'`` a time-major ``[T, B, ...]``
            tensor; ``'BT'`` a batch-first ``[B, T, ...]`` one (output ``[B, T, classes]`` or ``[B, classes]``);
            ``'B'`` one static ``[B, ...]`` batch that the model repeats over its own T steps (Spikformer-style;
            'direct' encoding only). (Default: ``'TB'``)
        output (int, str, callable or None): picks the logits out of a tuple, list or dict output: an index
            (``output=0`` for ``(logits, hook)``), a key, or a callable. (Default: None)

    Shape:
        - input: a pixel-space batch, images ``[B, C, H, W]`` (``[B, T, C, H, W]`` frames) within ``bounds``.
        - output: logits ``[B, classes]``.

    An exception raised inside the model is re-raised as :class:`sj_rga.errors.UserModelError`, chained to it,
    naming the model's file and line and the layout it was fed.

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
        input_layout: str = "TB",
        output: layouts.OutputSelector = None,
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
        self.input_layout = layouts.check_input_layout(input_layout, encoding)
        self.output = layouts.check_output(output)
        self.estimator: GradientEstimator = estimator(gradient)
        self.estimator.check_model(unwrap_parallel(model), rga_path)  # a clear error now, not at the first call
        self.model = model
        self.T, self.encoding, self.eot, self.seed = T, encoding, eot, seed
        self.rga_path, self.parameter_gradients = rga_path, parameter_gradients
        self.norm_mean, self.norm_std = _channel_stats(mean, "mean"), _channel_stats(std, "std")
        self.bounds = _check_bounds(bounds)
        self._spikes: Optional[StreamPool] = None
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
                f"eot={self.eot}, input_layout={self.input_layout!r}, output={self.output!r}")

    def layout(self) -> dict[str, Any]:
        """How the model is fed and read, as plain values for reports and checkpoint metadata:
        ``{'input_layout': 'TB' | 'BT' | 'B', 'output': None | index | key | '<callable name>'}``."""
        output = self.output
        if callable(output):
            output = f"<callable {getattr(output, '__qualname__', type(output).__name__)}>"
        return {"input_layout": self.input_layout, "output": output}

    def restart(self) -> None:
        """Restart every sample's Poisson spike stream from ``seed`` and the adaptive gradient's statistics.

        Every attack run starts with it (the package's attacks call it; torchattacks' attacks call
        ``eval()``, which calls it), so equal seeds give equal adversarial examples."""
        self._spikes = None
        self.restart_statistics()

    def restart_statistics(self) -> None:
        """Start the estimator's statistics (ASSG's moments) afresh and leave the Poisson streams where they
        are: each restart of an iterative attack does, so that a sample's gradients never depend on which
        other samples an earlier restart ran on."""
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

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments that give this classifier (the estimator as an object)."""
        return dict(model=self.model, T=self.T, encoding=self.encoding, gradient=self.estimator,
                    mean=None if self.norm_mean is None else self.norm_mean.tolist(),
                    std=None if self.norm_std is None else self.norm_std.tolist(), bounds=self.bounds,
                    eot=self.eot, seed=self.seed, rga_path=self.rga_path,
                    parameter_gradients=self.parameter_gradients, input_layout=self.input_layout, output=self.output)

    def replace(self, **changes: Any) -> SNNClassifier:
        """A new classifier (same model object) with ``changes`` to the constructor's arguments, checked by the
        constructor as any other (e.g. ``replace(T=2 * clf.T)``, ``replace(gradient='bptr', seed=3)``).

        The new classifier starts with fresh Poisson streams and fresh estimator statistics."""
        unknown = sorted(set(changes) - set(self.settings()))
        if unknown:
            raise TypeError(f"replace() got unknown settings {unknown}; expected some of {sorted(self.settings())}")
        return SNNClassifier(**{**self.settings(), **changes})

    def with_time_steps(self, T: int) -> SNNClassifier:
        """The same classifier (same model object) with T steps, e.g. ``2 * T`` for a time-extended attack."""
        return self.replace(T=T)

    def with_gradient(self, gradient: Union[str, GradientEstimator]) -> SNNClassifier:
        """The same classifier with another estimator, by name or as an object (fresh statistics)."""
        return self.replace(gradient=gradient)

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
    def encode(self, x: torch.Tensor, T: Optional[int] = None) -> torch.Tensor:
        """Pixel-space batch -> normalised time-major network input ``[T, B, ...]``. Poisson spikes with a
        ``seed``: row b from its sample's own stream, ``derive_seed(seed, sample index, POISSON_PART)``
        (:mod:`sj_rga.seeding`; the index as the evaluation declares it, else the row), continued across the
        calls of one attack run; without a seed, from torch's global generator. A sub-batch whose rows the
        caller did not declare (e.g. a torchattacks attack restarting on some samples inside
        :func:`sj_rga.evaluate`) draws from streams of its row positions, set apart from every sample's
        (:data:`UNDECLARED_ROWS` + row): reproducible, but not independent of the batch."""
        streams = None
        if self.seed is not None and self.encoding == "poisson":
            if self._spikes is None or self._spikes.seed != self.seed:
                self._spikes = StreamPool(self.seed, (enc.POISSON_PART,))
            try:
                streams = self._spikes.streams(x.shape[0], x.device)
            except ValueError:  # the declared indices belong to another batch than this one
                with sample_indices(torch.arange(x.shape[0]) + UNDECLARED_ROWS):
                    streams = self._spikes.streams(x.shape[0], x.device)
        return enc.encode(x, self.T if T is None else T, self.encoding, self.norm_mean, self.norm_std, streams)

    def _prepare_model(self, network: nn.Module) -> None:
        """Multi-step mode, BatchNorm/Dropout in eval, neurons in train (0.0.0.0.14's eval path has no
        input gradient), fresh neuron state."""
        functional.set_step_mode(network, "m")
        network.eval()
        for m in network.modules():
            if isinstance(m, SPIKING_BASES):
                m.train()
        reset_net(network)

    def _logits(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]`` of the model on the encoded time-major ``x_seq``, fed and read in its layout."""
        network, inputs = self.network, layouts.model_input(x_seq, self.input_layout)
        seen: list[int] = []
        hooks = [] if self.input_layout != "B" else \
            [node.register_forward_pre_hook(lambda node, args: seen.append(args[0].shape[0]) if not seen else None)
             for node in spiking_neurons(network)[:1]]
        try:
            out = network(inputs)
        except Exception as error:  # whose error: the model's own, or one sj-rga raised inside it
            if isinstance(error, (UserModelError, torch.OutOfMemoryError)) or _raised_by_sj_rga(error):
                raise
            fed = f"input_layout={self.input_layout!r}: {layouts.describe(self.input_layout)}"
            raise UserModelError(
                f"the model raised {type(error).__name__} ({' '.join(str(error).split())[:300]}) on an input of "
                f"shape {tuple(inputs.shape)} ({fed}); if it takes another layout, pass input_layout= one of "
                f"{layouts.INPUT_LAYOUTS} (--input-layout), or check the input's channels and size",
                location=model_location(error)) from error
        finally:
            for hook in hooks:
                hook.remove()
        # the model's own steps ('B': T, also in the fast path's T = 1 pass), or the steps it was fed
        steps, batch = self.T if self.input_layout == "B" else x_seq.shape[0], x_seq.shape[1]
        if seen and seen[0] not in (steps, steps * batch):
            raise UserModelError(f"the model makes {seen[0]} time steps of its own (its first spiking layer got "
                                 f"{seen[0]} steps) but the classifier has T={self.T}: pass T={seen[0]}")
        return layouts.logits(layouts.select(out, self.output), self.input_layout, steps, batch)

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
                reset_net(network)
                logits = logits + self.estimator.logits(network, self.encode(x), self._logits, path=self.rga_path,
                                                        statistics=self._statistics, update=repeat == 0)
            return logits / repeats
        finally:
            for p in frozen:
                p.requires_grad_(True)
            restore_model_state(saved)
