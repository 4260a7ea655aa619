"""Checkpoints that rebuild and feed their model: save, load, and the classifier a checkpoint's metadata describes.

A checkpoint is a dict of plain values and tensors (``torch.load(path, weights_only=True)`` reads it): the
weights, the keyword arguments of :func:`sj_rga.models.build` that built the model, the input setting it was
trained with (:class:`~sj_rga.encoding.InputSpec`: T, encoding, normalisation), the data set, the clean test
accuracy, the training settings and the versions that wrote it.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
import torch.nn as nn

from ._compat import VERSION as SPIKINGJELLY_VERSION
from .classifier import SNNClassifier
from .encoding import InputSpec
from .files import atomic_path
from .models import build
from .version import __version__

#: Marks a file written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT: str = "sj-rga-checkpoint-1"


def save_checkpoint(path: Union[str, Path], model: nn.Module, model_config: dict[str, Any], inputs: InputSpec,
                    dataset: str, accuracy: Optional[float], train: Optional[dict[str, Any]] = None) -> Path:
    """Write ``model``'s weights with everything needed to rebuild and feed it.

    ``model_config``: the keyword arguments of :func:`sj_rga.models.build` that built ``model`` (name,
    num_classes, lam, surrogate, ...). ``train``: the training settings as plain values (``asdict`` of a
    :class:`sj_rga.training.TrainConfig`), recorded under ``"train"``, the adversarial ones under
    ``["train"]["adversarial"]`` (method, eps, steps, alpha, gradient, beta). The file is a dict of plain
    values and tensors, loadable with ``torch.load(path, weights_only=True)``; it is written to a temporary
    file first and renamed, so ``path`` never holds a partial checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": CHECKPOINT_FORMAT,
        "model": dict(model_config),
        "input": {**asdict(inputs), "mean": _plain(inputs.mean), "std": _plain(inputs.std)},
        "dataset": dataset,
        "accuracy": accuracy,
        "train": None if train is None else dict(train),
        "versions": {"sj_rga": __version__, "spikingjelly": SPIKINGJELLY_VERSION, "torch": str(torch.__version__)},
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
    }
    with atomic_path(path) as partial:  # all or nothing: an interrupted save leaves no half-written checkpoint
        torch.save(record, partial)
    return path


def _plain(values: Optional[Sequence[float]]) -> Optional[list[float]]:
    return None if values is None else [float(v) for v in values]


def load_checkpoint(path: Union[str, Path], model: Optional[nn.Module] = None,
                    map_location: Union[str, torch.device] = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """``(model in eval mode, meta)`` from a :func:`save_checkpoint` file.

    Without ``model`` the model is rebuilt with ``build(**meta["model"])``; with one, the weights are loaded
    into it. ``meta`` holds everything but the weights: ``model`` (build arguments), ``input`` (T,
    encoding, mean, std: the :class:`InputSpec`), ``dataset``, ``accuracy``, ``train``, ``versions``.
    Raises ValueError when the file is no sj-rga checkpoint or its weights do not fit the model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for unreadable or unsafe files
        raise ValueError(f"{path} is not a readable sj-rga checkpoint ({err})") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an sj-rga checkpoint (written by sj_rga.checkpoints.save_checkpoint)")
    meta = {key: value for key, value in checkpoint.items() if key != "state_dict"}
    model = build(**meta["model"]) if model is None else model
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint {path} (model {meta['model']}) does not fit the model {type(model).__name__}: {err}"
        ) from err
    return model.eval(), meta


def input_spec(meta: dict[str, Any]) -> InputSpec:
    """The :class:`InputSpec` a checkpoint's model was trained with (from :func:`load_checkpoint`'s meta)."""
    return InputSpec(**meta["input"])


def classifier_from_meta(model: nn.Module, meta: dict[str, Any], gradient: str = "rga", T: Optional[int] = None,
                         eot: int = 1, seed: Optional[int] = None) -> SNNClassifier:
    """An :class:`SNNClassifier` fed the way a checkpoint's model was trained (``meta`` from
    :func:`load_checkpoint`): its T, encoding, normalisation, bounds (default: frames have no upper bound,
    images lie in [0, 1]), input layout and output selector (default 'TB', None)."""
    inputs = meta["input"]
    encoding = inputs["encoding"]
    bounds = inputs.get("bounds") or ((0.0, None) if encoding == "frames" else (0.0, 1.0))
    return SNNClassifier(model, inputs["T"] if T is None else T, encoding=encoding, gradient=gradient,
                         mean=inputs.get("mean"), std=inputs.get("std"), bounds=tuple(bounds),
                         eot=eot if encoding == "poisson" else 1, seed=seed,
                         input_layout=inputs.get("input_layout") or "TB", output=inputs.get("output"))
