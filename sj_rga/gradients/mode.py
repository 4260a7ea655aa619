"""Estimators that replace the backward of each spiking layer, and ``gradient_mode``, which runs a model so."""
from __future__ import annotations

import abc
import contextlib
from typing import ClassVar, Iterator, Optional

import torch
import torch.nn as nn

from ..intercept import attach, restore_model_state, save_model_state
from ..mapping import neuron_layout, spiking_neurons, time_major
from ..neuron import SINGLE_STEP_ERROR, Original, check_sequence, runs_wrapped_method
from .base import GradientEstimator, LogitsFunction, Statistics


class LayerEstimator(GradientEstimator):
    """An estimator that gives every spiking layer its own backward; the layers between are untouched."""

    #: Why the gradient depends on the whole batch (None when every sample's gradient is its own).
    batch_statistic: ClassVar[Optional[str]] = None

    def check_neuron(self, node: nn.Module) -> None:
        """A clear ValueError unless this estimator can take ``node``'s backward. By default it needs the
        membrane potential at every step, which sj_rga computes for IF/LIF/PLIF with unchanged dynamics."""
        if not runs_wrapped_method(node):
            raise ValueError(f"the {self.name.upper()} gradient needs the membrane potential at every step, which "
                             "sj_rga computes for IFNode, LIFNode and ParametricLIFNode with unchanged dynamics; "
                             f"{type(node).__name__} is not one (RGA and BPTR take registered neurons too)")

    def check_model(self, model: nn.Module, path: str) -> None:
        for node in spiking_neurons(model):
            self.check_neuron(node)

    @abc.abstractmethod
    def stock_layer(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` of an IF/LIF/PLIF neuron with unchanged dynamics on ``x_seq``, with this
        estimator's backward; ``node``'s state is left as the stock forward leaves it. ``state``: this layer
        call's statistics (None for an estimator without memory)."""

    def own_layer(self, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        """This estimator's backward attached to the ``spikes`` a neuron's own forward returned (only the
        estimators whose :meth:`check_neuron` accepts such neurons override it)."""
        raise ValueError(f"the {self.name.upper()} gradient cannot take the backward of {type(node).__name__}")

    def logits(self, model: nn.Module, x_seq: torch.Tensor, logits: LogitsFunction, *, path: str = "auto",
               statistics: Optional[Statistics] = None, update: bool = True) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return logits(x_seq)
        with gradient_mode(model, self, statistics, update, T=x_seq.shape[0]):
            return logits(x_seq)

    def neuron_handle(self) -> _LayerHandle:
        """The handle :func:`gradient_mode` gives a neuron, for one call of one neuron on its own (the route of
        a neuron whose ``surrogate_function`` is this estimator; fresh statistics)."""
        return _LayerHandle(_Session(self, self.new_statistics(), True), 0)


class _Session:
    """One block of :func:`gradient_mode`: the estimator, its statistics, each neuron's call count in the
    current forward of the model (a neuron called twice in one forward keeps statistics per call), and T (given,
    or the leading dimension of the model's input in the current forward)."""

    def __init__(self, estimator: LayerEstimator, statistics: Optional[Statistics], update: bool,
                 T: Optional[int] = None):
        self.estimator, self.statistics, self.update, self.T = estimator, statistics, update, T
        self.calls: dict[int, int] = {}
        self.input_steps: Optional[int] = None

    def new_forward(self, model: nn.Module, args: tuple) -> None:
        self.calls.clear()
        first = args[0] if args else None
        self.input_steps = first.shape[0] if isinstance(first, torch.Tensor) and first.dim() >= 2 else None

    def time_steps(self, node: nn.Module) -> Optional[int]:
        """T for ``node``: the given T; else, for a time-major neuron only, the model input's leading dimension
        (a merged neuron's model may make its own time steps from a ``[B, ...]`` input)."""
        if self.T is not None or neuron_layout(node) == "merged":
            return self.T
        return self.input_steps

    def state(self, index: int) -> object:
        call = self.calls.get(index, 0)
        self.calls[index] = call + 1
        return None if self.statistics is None else self.statistics.layer((index, call), self.update)


_REPLICA_ERROR = (
    "{name} runs inside a copy that nn.DataParallel made of the model, but the {estimator} gradient depends on "
    "the whole batch ({why}), which DataParallel splits across copies. Run the model on one device "
    "(SNNClassifier looks through DataParallel and DistributedDataParallel), or use a per-sample estimator "
    "(RGA, BPTR, HART)"
)


class _LayerHandle:
    """A neuron's handle inside :func:`gradient_mode`: the estimator's per-layer op while gradients are taken,
    the neuron's own forward otherwise."""

    def __init__(self, session: _Session, index: int):
        self.session, self.index = session, index

    def _check(self, node: nn.Module, x_seq: torch.Tensor) -> None:
        check_sequence(x_seq, type(node).__name__)
        estimator = self.session.estimator
        if getattr(node, "_is_replica", False) and estimator.batch_statistic is not None:
            raise RuntimeError(_REPLICA_ERROR.format(name=type(node).__name__, estimator=estimator.name.upper(),
                                                     why=estimator.batch_statistic))

    def stock(self, node: nn.Module, x_seq: torch.Tensor, original: Original) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return original(x_seq)
        self._check(node, x_seq)
        return self.session.estimator.stock_layer(node, x_seq, self.session.state(self.index))

    def own(self, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return spikes
        if getattr(node, "step_mode", "m") != "m" or x_seq.dim() < 2 or spikes.shape != x_seq.shape:
            if getattr(x_seq, "requires_grad", False):
                raise RuntimeError(SINGLE_STEP_ERROR.format(name=type(node).__name__))
            return spikes
        T = self.session.time_steps(node)
        steps, spike_steps = time_major(node, x_seq, T), time_major(node, spikes.detach(), T)
        self._check(node, steps)
        return self.session.estimator.own_layer(node, steps, spike_steps).reshape(x_seq.shape)


@contextlib.contextmanager
def gradient_mode(model: nn.Module, estimator: LayerEstimator, statistics: Optional[Statistics] = None,
                  update: bool = True, *, T: Optional[int] = None) -> Iterator[nn.Module]:
    """Inside the block, every spiking neuron of ``model`` takes ``estimator``'s backward (method §2).

    ``estimator``: e.g. ``sj_rga.gradients.HART(gamma=0.5)`` (``sj_rga.gradients.estimator('hart')`` from a
    name). The forward is the stock one, spike for spike. While gradients are taken the neurons must run in
    multi-step mode on time-major ``[T, B, ...]`` inputs; without gradient mode they run their own forward
    untouched. A state V[0] carried in from an earlier call gets no gradient.

    ``statistics`` (ASSG's moments, from ``estimator.new_statistics()``) persist across the forwards of the
    block and beyond it; by default the block starts fresh ones, and every forward of ``model`` taken with
    gradients updates them once. ``update=False`` reads them without updating (the repeats of an EOT
    average). Nothing of the model is replaced: on exit, also after an exception, classes, surrogates,
    instance attributes, hooks, ``training`` flags, step modes and neuron state are as they were on entry.

    ``T``: the number of time steps, which neurons registered with ``layout='merged'`` need (a clear error
    without it) and against which registered time-major neurons are checked; None checks those against the
    leading dimension of the model's input. :class:`~sj_rga.SNNClassifier` passes its own T.
    """
    if not isinstance(estimator, LayerEstimator):
        raise TypeError("gradient_mode takes an estimator that replaces the backward of spiking layers, e.g. "
                        f"sj_rga.gradients.BPTR() or sj_rga.gradients.estimator('hart'); got {estimator!r}")
    if not isinstance(update, bool):
        raise TypeError(f"update must be True or False, got {update!r}")
    if T is not None and (isinstance(T, bool) or not isinstance(T, int) or T < 1):
        raise ValueError(f"T (time steps) must be an integer >= 1 or None, got {T!r}")
    neurons = spiking_neurons(model)
    for node in neurons:
        estimator.check_neuron(node)
    session = _Session(estimator, estimator.new_statistics() if statistics is None else statistics, update, T)
    saved = save_model_state(model)
    marker = model.register_forward_pre_hook(session.new_forward)
    try:
        with attach({node: _LayerHandle(session, index) for index, node in enumerate(neurons)}):
            yield model
    finally:
        marker.remove()
        restore_model_state(saved)
