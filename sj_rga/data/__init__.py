"""Data sets of the paper and the embedded default.

- ``digits``: scikit-learn's 8×8 handwritten digits, ``[1, 8, 8]`` in [0, 1]; needs no download.
- ``cifar10`` / ``cifar100``: ``[3, 32, 32]`` in [0, 1] (normalisation lives in the classifier wrapper;
  the constants are :data:`CIFAR10_MEAN` etc.), with the paper's crop + flip (+ cutout) augmentation.
- ``cifar10dvs``: ``[T, 2, 48, 48]`` event-count frames via SpikingJelly.

torchvision and ``spikingjelly.datasets`` are imported only when CIFAR or CIFAR10-DVS is asked for.
:mod:`sj_rga.data.synthetic` writes tiny files in the real formats for tests and examples.
"""
from .cifar import Cutout, ImageArrayDataset, cifar, train_augmentation
from .cifar10_dvs import SPLIT_SEED, TRAIN_FRACTION, ResizeFrames, cifar10_dvs
from .digits import digits
from .info import (
    CIFAR10,
    CIFAR10_DVS,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DIGITS,
    DatasetInfo,
)
from .registry import DATASETS, check_root, load_dataset

__all__ = [
    "load_dataset", "check_root", "DATASETS", "DatasetInfo", "digits", "cifar", "cifar10_dvs", "train_augmentation",
    "Cutout", "ImageArrayDataset", "ResizeFrames", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD",
    "DIGITS", "CIFAR10", "CIFAR100", "CIFAR10_DVS", "TRAIN_FRACTION", "SPLIT_SEED",
]
