"""CIFAR-10 / CIFAR-100 from their python pickle batches, with the paper's training augmentation.

The files are the ones torchvision downloads (``cifar-10-batches-py/``, ``cifar-100-python/`` under
``root``); they are read here directly, so a local copy loads without torchvision's checksum table.
torchvision is imported only to download (on request) and for the augmentation transforms.
Samples stay in pixel space [0, 1]: normalisation by :data:`CIFAR10_MEAN` / :data:`CIFAR10_STD` (or the
CIFAR-100 constants) lives in the classifier wrapper.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from .optional_imports import import_optional


@dataclass(frozen=True)
class CifarLayout:
    """Where a CIFAR variant keeps its pickle batches and which keys hold labels and class names."""

    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    torchvision_class: str


LAYOUTS: dict[str, CifarLayout] = {
    "cifar10": CifarLayout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                           "batches.meta", "labels", "label_names", "CIFAR10"),
    "cifar100": CifarLayout("cifar-100-python", ("train",), ("test",), "meta", "fine_labels", "fine_label_names",
                            "CIFAR100"),
}


class ImageArrayDataset(Dataset):
    """``(image [3, 32, 32] float in [0, 1], label)`` pairs from uint8 images ``[N, 3, 32, 32]``.

    ``transform`` (if any) maps the [0, 1] tensor to an augmented [0, 1] tensor.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str],
                 transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        self.images, self.labels, self.classes, self.transform = images, labels, classes, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].float() / 255.0
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


class Cutout:
    """Zero one random ``length``×``length`` square (clipped at the borders) of a ``[C, H, W]`` image."""

    def __init__(self, length: int):
        self.length = length

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        cy, cx = (int(torch.randint(size, ())) for size in (height, width))
        half = self.length // 2
        image = image.clone()
        image[..., max(cy - half, 0):cy + half, max(cx - half, 0):cx + half] = 0.0
        return image


def train_augmentation(cutout: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The paper's CIFAR training augmentation on [0, 1] tensors: random crop 32 with padding 4, random
    horizontal flip, and (``cutout > 0``) a ``cutout``×``cutout`` Cutout."""
    transforms = import_optional("torchvision.transforms", "CIFAR training augmentation")
    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    if cutout > 0:
        steps.append(Cutout(cutout))
    return transforms.Compose(steps)


def _read_batches(folder: Path, files: tuple[str, ...], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` from CIFAR pickle batches."""
    images, labels = [], []
    for name in files:
        with open(folder / name, "rb") as handle:
            batch = pickle.load(handle, encoding="latin1")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch[label_key])
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


def _download(name: str, root: Path) -> None:
    """Fetch the python version of CIFAR ``name`` into ``root`` with torchvision (checksums verified)."""
    datasets = import_optional("torchvision.datasets", f"downloading {name}")
    for train in (True, False):
        getattr(datasets, LAYOUTS[name].torchvision_class)(str(root), train=train, download=True)


def _missing(name: str, root: Path) -> list[str]:
    """The names of CIFAR ``name``'s files missing from its folder under ``root``."""
    layout = LAYOUTS[name]
    folder = root / layout.folder
    return [f for f in (*layout.train_files, *layout.test_files, layout.meta_file) if not (folder / f).exists()]


def check_cifar_root(name: str, root: Union[str, Path]) -> None:
    """Raise FileNotFoundError unless ``root`` holds the python version of CIFAR ``name`` (reads nothing)."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown CIFAR variant {name!r}: use one of {', '.join(LAYOUTS)}")
    root = Path(root)
    missing = _missing(name, root)
    if missing:
        folder = root / LAYOUTS[name].folder
        what = f"no folder {folder}" if not folder.is_dir() else f"{folder} lacks {', '.join(missing)}"
        raise FileNotFoundError(
            f"{name} not found under {root}: {what}. Pass download=True (`--download` on the command line) to "
            f"fetch it, or extract the python version of {name} so that {folder} holds its batches."
        )


def cifar(name: str, root: Union[str, Path], download: bool = False, augment: bool = True,
          cutout: int = 0) -> tuple[ImageArrayDataset, ImageArrayDataset]:
    """``(train, test)`` CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``) data sets.

    Samples: ``(image [3, 32, 32] in [0, 1], label)``. ``augment`` applies :func:`train_augmentation`
    (with ``cutout``) to the training set; the test set is never augmented. ``download=True`` fetches the
    data into ``root`` with torchvision when it is missing; otherwise a missing copy raises
    FileNotFoundError.
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown CIFAR variant {name!r}: use one of {', '.join(LAYOUTS)}")
    layout, root = LAYOUTS[name], Path(root)
    folder = root / layout.folder
    if download and _missing(name, root):
        _download(name, root)
    check_cifar_root(name, root)
    with open(folder / layout.meta_file, "rb") as handle:
        classes = list(pickle.load(handle, encoding="latin1")[layout.names_key])
    transform = train_augmentation(cutout) if augment else None
    train = ImageArrayDataset(*_read_batches(folder, layout.train_files, layout.label_key), classes, transform)
    test = ImageArrayDataset(*_read_batches(folder, layout.test_files, layout.label_key), classes)
    return train, test
