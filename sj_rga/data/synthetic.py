"""Small data files in the real on-disk formats, for tests, notebooks and CI without network.

The files hold random content and are laid out exactly as the real downloads are read: CIFAR-10/100
python pickle batches, and CIFAR10-DVS events in SpikingJelly's ``events_np`` layout (one ``.npz`` of
``t, x, y, p`` per sample, in the form SpikingJelly writes when it converts the original ``.aedat`` files),
from which SpikingJelly itself integrates frames.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Union

import numpy as np

from .cifar import LAYOUTS

#: CIFAR10-DVS class folder names, in SpikingJelly's label order.
CIFAR10_DVS_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

#: Sensor size of CIFAR10-DVS events (x and y in 0..127).
DVS_SIZE: int = 128


def _dump(path: Path, obj: object) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


def write_cifar(root: Union[str, Path], name: str = "cifar10", per_batch: int = 4, seed: int = 0) -> Path:
    """Write a tiny CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``) in its python pickle format.

    Each training batch file and the test file get ``per_batch`` random images (uint8 rows of 3072 values,
    channel-major) with labels cycling through the classes. Returns the folder written
    (``root/cifar-10-batches-py`` or ``root/cifar-100-python``).
    """
    layout, rng = LAYOUTS[name], np.random.default_rng(seed)
    num_classes = 10 if name == "cifar10" else 100
    folder = Path(root) / layout.folder
    folder.mkdir(parents=True, exist_ok=True)
    for index, file_name in enumerate((*layout.train_files, *layout.test_files)):
        labels = [(index * per_batch + i) % num_classes for i in range(per_batch)]
        batch = {
            "batch_label": file_name,
            "data": rng.integers(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8),
            layout.label_key: labels,
            "filenames": [f"{file_name}_{i}.png" for i in range(per_batch)],
        }
        if name == "cifar100":
            batch["coarse_labels"] = [label // 5 for label in labels]
        _dump(folder / file_name, batch)
    meta = {layout.names_key: [f"class_{i}" for i in range(num_classes)]}
    if name == "cifar100":
        meta["coarse_label_names"] = [f"superclass_{i}" for i in range(20)]
    else:
        meta["num_cases_per_batch"] = per_batch
    _dump(folder / layout.meta_file, meta)
    return folder


def write_cifar10_dvs(root: Union[str, Path], per_class: int = 2, events: int = 200, seed: int = 0) -> Path:
    """Write a tiny CIFAR10-DVS as SpikingJelly's ``root/events_np/<class>/cifar10_<class>_<i>.npz``.

    Each sample holds ``events`` events with increasing timestamps ``t`` (µs), pixel ``x, y`` in 0..127 and
    polarity ``p`` in {0, 1}. Class ``k`` concentrates its events in the k-th horizontal band of the sensor,
    so a model can tell the classes apart. Returns ``root``; SpikingJelly integrates frames on first load.
    """
    root, rng = Path(root), np.random.default_rng(seed)
    band = DVS_SIZE // len(CIFAR10_DVS_CLASSES)
    for label, class_name in enumerate(CIFAR10_DVS_CLASSES):
        folder = root / "events_np" / class_name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            np.savez(
                folder / f"cifar10_{class_name}_{i}.npz",
                t=np.sort(rng.integers(0, 1_000_000, size=events)).astype(np.uint32),
                x=rng.integers(0, DVS_SIZE, size=events).astype(np.uint32),
                y=rng.integers(label * band, (label + 1) * band, size=events).astype(np.uint32),
                p=rng.integers(0, 2, size=events).astype(np.int64),
            )
    return root
