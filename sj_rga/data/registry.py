"""Data sets by name, as ``(train, test, info)``."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Union

from torch.utils.data import Dataset

from .cifar import check_cifar_root, cifar
from .cifar10_dvs import check_cifar10_dvs_root, cifar10_dvs
from .digits import digits
from .info import CIFAR10, CIFAR10_DVS, CIFAR100, DIGITS, DatasetInfo

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (DIGITS, CIFAR10, CIFAR100, CIFAR10_DVS)}


def check_root(name: str, root: Optional[Union[str, Path]] = None, download: bool = False) -> None:
    """Raise what :func:`load_dataset` would for a wrong name or a missing data root, reading no data.

    ValueError for an unknown name or a missing ``root``; FileNotFoundError when the files are not under
    ``root`` (and ``download`` is False).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}: use one of {', '.join(DATASETS)}")
    if name == "digits":
        return
    if root is None:
        raise ValueError(f"{name} needs a data root: pass root (`--data-root` on the command line)")
    if name == "cifar10dvs":
        check_cifar10_dvs_root(root, download)
    elif not download:
        check_cifar_root(name, root)


def load_dataset(name: str, root: Optional[Union[str, Path]] = None, download: bool = False,
                 **options: Any) -> tuple[Dataset, Dataset, DatasetInfo]:
    """``(train, test, info)`` for ``name`` in :data:`DATASETS`.

    ``digits`` needs no ``root``; the others read (or with ``download=True`` fetch) their files under
    ``root``. ``options`` go to :func:`digits`, :func:`cifar` (``augment``, ``cutout``) or
    :func:`cifar10_dvs` (``frames``, ``size``, ``split``). See :class:`DatasetInfo` for the sample shapes.
    """
    check_root(name, root, download=True)  # the name and the root; each loader checks its own files
    info = DATASETS[name]
    if name == "digits":
        return (*digits(**options), info)
    if name == "cifar10dvs":
        frames, size = options.get("frames", info.frames), options.get("size", info.image_size)
        info = replace(info, frames=frames, default_T=frames, image_size=size)
        return (*cifar10_dvs(root, download=download, **options), info)
    return (*cifar(name, root, download=download, **options), info)
