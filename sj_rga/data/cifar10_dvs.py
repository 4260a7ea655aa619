"""CIFAR10-DVS through SpikingJelly, with the paper's setting.

Events are integrated by SpikingJelly into ``frames`` frames split by event number (the paper: 10), each
frame resized to 48×48, and the 10000 samples split at random into 9000 / 1000 with seed 42, or with
SpikingJelly's class-wise split. Frame values stay event counts (no normalisation). ``spikingjelly.datasets``
is imported only here, when the data set is asked for.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset, random_split

from .optional_imports import import_optional

#: The paper's split: 9000 of the 10000 samples for training, drawn with this seed.
TRAIN_FRACTION: float = 0.9
SPLIT_SEED: int = 42


class ResizeFrames:
    """Event-count frames ``[T, C, H, W]`` (numpy) -> float tensor ``[T, C, size, size]``, resized bilinearly.

    Bilinear interpolation keeps the scale of the counts (a uniform frame stays the same value).
    """

    def __init__(self, size: int = 48):
        self.size = size

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        frames_t = torch.as_tensor(np.asarray(frames, dtype=np.float32))
        return F.interpolate(frames_t, size=(self.size, self.size), mode="bilinear", align_corners=False)


def _check_root(root: Path, download: bool, dataset_class: type) -> None:
    """Raise FileNotFoundError unless SpikingJelly can build the data set at ``root`` without a surprise download."""
    if download or (root / "events_np").is_dir():
        return
    archives = [name for name, _, _ in dataset_class.resource_url_md5()]
    if all((root / "download" / name).exists() for name in archives):
        return
    raise FileNotFoundError(
        f"CIFAR10-DVS not found under {root}: expected SpikingJelly's event folder {root / 'events_np'} or the ten "
        f"class archives ({', '.join(archives)}) in {root / 'download'}. Pass download=True (`--download` on the "
        "command line) to let SpikingJelly download them (about 7 GB)."
    )


def check_cifar10_dvs_root(root: Union[str, Path], download: bool = False) -> None:
    """Raise FileNotFoundError unless CIFAR10-DVS can be built at ``root`` (reads no events)."""
    dataset_class = import_optional("spikingjelly.datasets.cifar10_dvs", "CIFAR10-DVS").CIFAR10DVS
    _check_root(Path(root), download, dataset_class)


def cifar10_dvs(root: Union[str, Path], frames: int = 10, size: int = 48, split: str = "random",
                download: bool = False) -> tuple[Subset, Subset]:
    """``(train, test)`` subsets of CIFAR10-DVS with samples ``(frames [T, 2, size, size] event counts, label)``.

    ``split="random"``: a seeded (42) random split, 90 % train (9000 / 1000 on the full set).
    ``split="classwise"``: SpikingJelly's ``split_to_train_test_set`` (the first 90 % of each class to train;
    it reads every sample once). SpikingJelly integrates and caches the frames under
    ``root/frames_number_{frames}_split_by_number`` on first use.
    """
    if split not in ("random", "classwise"):
        raise ValueError(f"split must be 'random' or 'classwise', got {split!r}")
    sj_datasets = import_optional("spikingjelly.datasets", "CIFAR10-DVS")
    dataset_class = import_optional("spikingjelly.datasets.cifar10_dvs", "CIFAR10-DVS").CIFAR10DVS
    root = Path(root)
    _check_root(root, download, dataset_class)
    dataset: Dataset = dataset_class(
        str(root), data_type="frame", frames_number=frames, split_by="number", transform=ResizeFrames(size)
    )
    if split == "classwise":
        return sj_datasets.split_to_train_test_set(TRAIN_FRACTION, dataset, 10)
    n_train = round(TRAIN_FRACTION * len(dataset))
    train, test = random_split(dataset, [n_train, len(dataset) - n_train],
                               generator=torch.Generator().manual_seed(SPLIT_SEED))
    return train, test
