"""Data sets by name, as ``(train, test, info)``."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Union

from torch.utils.data import Dataset

from .cifar import cifar
from .cifar10_dvs import cifar10_dvs
from .digits import digits
from .info import CIFAR10, CIFAR10_DVS, CIFAR100, DIGITS, DatasetInfo

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (DIGITS, CIFAR10, CIFAR100, CIFAR10_DVS)}


def load_dataset(name: str, root: Optional[Union[str, Path]] = None, download: bool = False,
                 **options: Any) -> tuple[Dataset, Dataset, DatasetInfo]:
    """``(train, test, info)`` for ``name`` in :data:`DATASETS`.

    ``digits`` needs no ``root``; the others read (or with ``download=True`` fetch) their files under
    ``root``. ``options`` go to :func:`digits`, :func:`cifar` (``augment``, ``cutout``) or
    :func:`cifar10_dvs` (``frames``, ``size``, ``split``). See :class:`DatasetInfo` for the sample shapes.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}: use one of {', '.join(DATASETS)}")
    info = DATASETS[name]
    if name == "digits":
        return (*digits(**options), info)
    if root is None:
        raise ValueError(f"{name} needs a data root: pass root (`--data-root` on the command line)")
    if name == "cifar10dvs":
        frames, size = options.get("frames", info.frames), options.get("size", info.image_size)
        info = replace(info, frames=frames, default_T=frames, image_size=size)
        return (*cifar10_dvs(root, download=download, **options), info)
    return (*cifar(name, root, download=download, **options), info)
