"""Training recipe and input encodings (checkpoints: test_checkpoints.py)."""
import pytest
import torch

from sj_rga import checkpoints, data, models, training
from sj_rga.classifier import SNNClassifier
from sj_rga.data import synthetic
from sj_rga.training import InputSpec, TrainConfig


def test_digits_preset_reaches_high_accuracy(digits_trained):
    model, meta, path = digits_trained[0]  # train_digits(T=8, seed=0, checkpoint=path), shared by the suite
    assert meta["accuracy"] > 0.85
    assert meta["input"]["T"] == 8 and meta["model"]["name"] == "digits_snn" and not model.training
    loaded, loaded_meta = checkpoints.load_checkpoint(path)
    assert loaded_meta["accuracy"] == meta["accuracy"]
    _, test = data.digits()
    assert training.accuracy(loaded, test, checkpoints.input_spec(loaded_meta)) == pytest.approx(meta["accuracy"])


def test_input_spec_encodings():
    images = torch.rand(2, 3, 4, 4)
    direct = InputSpec(T=3, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))(images)
    assert direct.shape == (3, 2, 3, 4, 4) and torch.allclose(direct[2], (images - 0.5) / 0.25)
    poisson = InputSpec(T=50, encoding="poisson")(images)
    assert set(poisson.unique().tolist()) <= {0.0, 1.0}
    assert (poisson.mean(0) - images).abs().mean() < 0.1
    frames = torch.rand(2, 5, 2, 4, 4)
    assert torch.equal(InputSpec(T=5, encoding="frames")(frames), frames.transpose(0, 1))
    with pytest.raises(ValueError, match=r"\[B, T=4"):
        InputSpec(T=4, encoding="frames")(frames)
    with pytest.raises(ValueError, match="mean and std"):
        InputSpec(T=2, mean=(0.5,))
    with pytest.raises(ValueError, match="T must"):
        InputSpec(T=0)
    with pytest.raises(ValueError, match="encoding"):
        InputSpec(T=2, encoding="rate")


def test_input_spec_feeds_the_model_as_the_classifier_does():
    model = models.digits_snn(10, in_channels=3)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    images = torch.rand(2, 3, 8, 8)
    classifier = SNNClassifier(model, 4, encoding="direct", gradient="stbp", mean=mean, std=std)
    assert torch.allclose(InputSpec(T=4, mean=mean, std=std)(images), classifier.encode(images))


def test_cifar_pipeline_end_to_end_with_a_short_recipe(tmp_path, capsys):
    synthetic.write_cifar(tmp_path, "cifar10", per_batch=4)
    config = TrainConfig(epochs=2, batch_size=4, max_batches=2, progress=True)
    model, meta = training.train_model("digits_snn", "cifar10", tmp_path, T=2, config=config,
                                       checkpoint=tmp_path / "c.pt")
    assert [h["epoch"] for h in meta["history"]] == [1, 2]
    loaded, loaded_meta = checkpoints.load_checkpoint(tmp_path / "c.pt")
    assert loaded_meta["model"]["in_channels"] == 3 and loaded_meta["model"]["image_size"] == 32
    assert loaded_meta["input"]["mean"] == pytest.approx(list(data.CIFAR10_MEAN))
    assert "train" in capsys.readouterr().err  # the progress bar


def test_poisson_training_feeds_unnormalised_spikes(tmp_path):
    synthetic.write_cifar(tmp_path, "cifar10", per_batch=2)
    config = TrainConfig(epochs=1, batch_size=4, max_batches=1, progress=False)
    _, meta = training.train_model("digits_snn", "cifar10", tmp_path, T=2, encoding="poisson", config=config)
    assert meta["input"] == {"T": 2, "encoding": "poisson", "mean": None, "std": None}
    with pytest.raises(ValueError, match="at least one batch"):
        training.train(models.digits_snn(10), data.digits()[1], InputSpec(T=2), TrainConfig(max_batches=0))


def test_cifar10_dvs_pipeline_end_to_end(tmp_path):
    synthetic.write_cifar10_dvs(tmp_path, per_class=2, events=60)
    config = TrainConfig(epochs=1, batch_size=4, max_batches=1, progress=False)
    model, meta = training.train_model("digits_snn", "cifar10dvs", tmp_path, T=3, config=config,
                                       dataset_options={"size": 16})
    assert meta["input"]["encoding"] == "frames" and meta["input"]["T"] == 3
    assert meta["model"]["in_channels"] == 2 and 0.0 <= meta["accuracy"] <= 1.0
