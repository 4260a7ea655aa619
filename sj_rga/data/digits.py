"""scikit-learn's handwritten digits (1797 grey 8×8 images, 10 classes): real data that needs no download."""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset


def digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """``(train, test)`` data sets of ``(image [1, 8, 8] in [0, 1], label)``.

    Pixel values 0..16 are scaled to [0, 1]. The split is stratified by class and fixed by ``seed``
    (the default gives 1437 training and 360 test images).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(data.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        torch.arange(len(labels)).numpy(), test_size=test_fraction, random_state=seed, stratify=labels.numpy()
    )
    return (TensorDataset(images[train_idx], labels[train_idx]),
            TensorDataset(images[test_idx], labels[test_idx]))
