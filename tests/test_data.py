"""Data pipelines: digits, and CIFAR-10/100 and CIFAR10-DVS on small synthetic files in the real formats."""
import importlib
import pickle

import numpy as np
import pytest
import torch

from sj_rga import data
from sj_rga.data import synthetic


def test_digits_are_scaled_split_and_fixed():
    train, test = data.digits()
    assert (len(train), len(test)) == (1437, 360)
    x, y = train.tensors
    assert x.shape == (1437, 1, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.bincount(test.tensors[1]).min() >= 35  # stratified: every class in the test split
    again, _ = data.digits()
    assert torch.equal(again.tensors[0], x)
    other, _ = data.digits(seed=1)
    assert not torch.equal(other.tensors[0], x)


@pytest.mark.parametrize("name, n_train, n_classes", [("cifar10", 5 * 4, 10), ("cifar100", 4, 100)])
def test_cifar_reads_python_batches_in_pixel_space(tmp_path, name, n_train, n_classes):
    folder = synthetic.write_cifar(tmp_path, name, per_batch=4)
    train, test, info = data.load_dataset(name, tmp_path, augment=False)
    assert (len(train), len(test), info.num_classes) == (n_train, 4, n_classes)
    assert len(train.classes) == n_classes
    test_file = "test_batch" if name == "cifar10" else "test"
    with open(folder / test_file, "rb") as handle:
        raw = pickle.load(handle)
    label_key = "labels" if name == "cifar10" else "fine_labels"
    for i in range(4):
        image, label = test[i]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert torch.allclose(image, torch.tensor(raw["data"][i].reshape(3, 32, 32) / 255.0, dtype=torch.float32))
        assert label == raw[label_key][i]


def test_cifar_training_augmentation_crops_flips_and_cuts_out(tmp_path):
    synthetic.write_cifar(tmp_path, "cifar10", per_batch=2)
    torch.manual_seed(0)
    train, test, info = data.load_dataset("cifar10", tmp_path, cutout=8)
    assert info.mean == data.CIFAR10_MEAN and info.std == data.CIFAR10_STD
    views = torch.stack([train[0][0] for _ in range(8)])
    assert views.shape == (8, 3, 32, 32) and float(views.min()) >= 0.0 and float(views.max()) <= 1.0
    assert not all(torch.equal(views[0], v) for v in views[1:])  # random each time
    assert torch.equal(test[0][0], test[0][0])  # the test set is never augmented
    image = data.Cutout(8)(torch.ones(3, 32, 32))
    assert 16 <= int((image[0] == 0).sum()) <= 64


def test_check_root_says_what_load_dataset_would_without_reading(tmp_path, monkeypatch):
    data.check_root("digits")
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        data.check_root("mnist", tmp_path)
    with pytest.raises(ValueError, match="needs a data root"):
        data.check_root("cifar100")
    with pytest.raises(FileNotFoundError, match="no folder .*cifar-10-batches-py.*download=True"):
        data.check_root("cifar10", tmp_path)
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_1"):
        data.check_root("cifar10", tmp_path)
    data.check_root("cifar10", tmp_path, download=True)  # it will be fetched
    synthetic.write_cifar(tmp_path, "cifar10", per_batch=2)
    monkeypatch.setattr(importlib.import_module("sj_rga.data.cifar"), "_read_batches", None)  # no reading
    data.check_root("cifar10", tmp_path)


def test_cifar_missing_root_names_path_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py.*download=True"):
        data.cifar("cifar10", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="data root"):
        data.load_dataset("cifar10")
    with pytest.raises(ValueError, match="unknown data set"):
        data.load_dataset("mnist")


def test_cifar10_dvs_random_split_is_seeded_9_to_1(tmp_path):
    synthetic.write_cifar10_dvs(tmp_path, per_class=10, events=100)
    train, test, info = data.load_dataset("cifar10dvs", tmp_path)
    assert (len(train), len(test)) == (90, 10)
    assert info.kind == "frames" and info.default_T == 10
    frames, label = train[0]
    assert frames.shape == (10, 2, 48, 48) and frames.dtype == torch.float32
    assert float(frames.min()) >= 0.0 and 0 <= label < 10
    train_again, _ = data.cifar10_dvs(tmp_path)
    assert train.indices == train_again.indices
    assert (tmp_path / "frames_number_10_split_by_number").is_dir()  # SpikingJelly integrated and cached frames


def test_cifar10_dvs_frames_are_event_counts(tmp_path):
    events = 120
    synthetic.write_cifar10_dvs(tmp_path, per_class=1, events=events)
    train, test = data.cifar10_dvs(tmp_path, frames=4, size=128)
    for frames, label in [*train, *test]:
        assert frames.shape == (4, 2, 128, 128)
        assert float(frames.sum()) == events and torch.equal(frames, frames.round())
        assert float(frames.sum(dim=(0, 1, 3))[:label * 12].sum()) == 0.0  # events of class k sit in band k
        assert frames.sum(dim=(1, 2, 3)).tolist() == [events / 4] * 4  # split by event number
    resized = data.ResizeFrames(48)(np.ones((4, 2, 128, 128), dtype=np.float32))
    assert torch.allclose(resized, torch.ones(4, 2, 48, 48))  # resizing keeps the count scale


def test_cifar10_dvs_classwise_split(tmp_path):
    synthetic.write_cifar10_dvs(tmp_path, per_class=10, events=50)
    train, test = data.cifar10_dvs(tmp_path, split="classwise", frames=2, size=16)
    assert (len(train), len(test)) == (90, 10)
    assert sorted(test[i][1] for i in range(10)) == list(range(10))
    with pytest.raises(ValueError, match="split"):
        data.cifar10_dvs(tmp_path, split="odd")


def test_cifar10_dvs_missing_root_names_path_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="events_np.*download=True"):
        data.cifar10_dvs(tmp_path / "nowhere")


def test_broken_vision_install_gives_the_fix(monkeypatch):
    def broken(name):
        raise OSError("Could not load _torchaudio.abi3.so")

    monkeypatch.setattr(data.optional_imports.importlib, "import_module", broken)
    fix = "CIFAR10-DVS.*matching torch, torchvision and torchaudio.*pip install sj-rga"
    with pytest.raises(ImportError, match=fix):
        data.cifar10_dvs("anywhere")
    with pytest.raises(ImportError, match="augmentation"):
        data.train_augmentation()
