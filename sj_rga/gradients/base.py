"""What every input-gradient estimator shares: a name, its hyper-parameters, and how it yields logits."""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, ClassVar, Hashable, Optional, Protocol

import torch
import torch.nn as nn

from ..mapping import spiking_neurons

#: Maps a time-major network input ``[T, B, ...]`` to logits ``[B, classes]`` (the mean over T of the output).
LogitsFunction = Callable[[torch.Tensor], torch.Tensor]


class Statistics(Protocol):
    """An estimator's memory across gradient evaluations (ASSG's moments), owned by the caller."""

    def layer(self, key: Hashable, update: bool) -> Any:
        """The state of one layer call (``key`` = (neuron index, call index in the forward)); ``update``
        says whether this forward may update it."""


class GradientEstimator(abc.ABC):
    """An SNN input-gradient estimator (method §2): the stock forward, spike for spike, and its own backward.

    Subclasses are frozen dataclasses of their hyper-parameters; ``name`` is the short name the command
    line and the reports use.
    """

    name: ClassVar[str]

    def check_model(self, model: nn.Module, path: str) -> None:
        """A clear error now (ValueError) if this estimator cannot run on ``model`` under the fast-path choice
        ``path`` (``'auto'``, ``'fast'``, ``'layer'``; only the time-uniform estimators use it)."""
        spiking_neurons(model)

    def new_statistics(self) -> Optional[Statistics]:
        """Fresh statistics for a new attack run, or None for an estimator without memory."""
        return None

    @abc.abstractmethod
    def logits(self, model: nn.Module, x_seq: torch.Tensor, logits: LogitsFunction, *, path: str = "auto",
               statistics: Optional[Statistics] = None, update: bool = True) -> torch.Tensor:
        """Logits ``[B, classes]`` of ``model`` on ``x_seq`` (the stock values) whose backward is this estimator's.

        ``x_seq`` is the encoded network input ``[T, B, ...]``, attached to the graph of the pixel-space batch;
        the neurons run in multi-step mode with fresh state, BatchNorm and Dropout in eval mode.
        """

    def hyperparameters(self) -> dict[str, Any]:
        """The hyper-parameters, as plain values (for results files)."""
        return dataclasses.asdict(self)


