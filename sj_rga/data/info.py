"""What the training and attack code needs to know about each data set."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

#: Per-channel mean and std of CIFAR-10 / CIFAR-100 training pixels in [0, 1], as the paper's code
#: lineage normalises them (applied by the classifier wrapper, not by the data sets).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN: tuple[float, float, float] = (129.3 / 255, 124.1 / 255, 112.4 / 255)
CIFAR100_STD: tuple[float, float, float] = (68.2 / 255, 65.4 / 255, 70.4 / 255)


@dataclass(frozen=True)
class DatasetInfo:
    """Shape and conventions of a data set's samples.

    ``kind == "image"``: a sample is ``[C, H, W]`` in pixel space [0, 1], repeated over T by the direct
    encoding (``mean``/``std`` say how the classifier normalises it). ``kind == "frames"``: a sample is
    ``[T, C, H, W]`` event counts (``frames`` = T), used as they are.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    kind: str
    default_model: str
    default_T: int
    mean: Optional[tuple[float, ...]] = None
    std: Optional[tuple[float, ...]] = None
    frames: Optional[int] = None


DIGITS = DatasetInfo("digits", 10, 1, 8, "image", "digits_snn", 8)
CIFAR10 = DatasetInfo("cifar10", 10, 3, 32, "image", "vgg11", 8, CIFAR10_MEAN, CIFAR10_STD)
CIFAR100 = DatasetInfo("cifar100", 100, 3, 32, "image", "vgg11", 8, CIFAR100_MEAN, CIFAR100_STD)
CIFAR10_DVS = DatasetInfo("cifar10dvs", 10, 2, 48, "frames", "dvs_vgg", 10, frames=10)
