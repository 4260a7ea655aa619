"""Checkpoints: a round trip rebuilds the same model, bad files get clear errors, the metadata feeds a classifier."""
import pytest
import torch
from spikingjelly.activation_based import functional

from sj_rga import checkpoints, models
from sj_rga.encoding import InputSpec


def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path):
    config = {"name": "digits_snn", "num_classes": 10, "lam": 0.9, "surrogate": "PiecewiseQuadratic",
              "surrogate_kwargs": None}
    model = models.build(**config)
    model(torch.rand(2, 4, 1, 8, 8))  # moves BatchNorm statistics
    inputs = InputSpec(T=4)
    path = checkpoints.save_checkpoint(tmp_path / "sub" / "m.pt", model, config, inputs, "digits", 0.5)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == checkpoints.CHECKPOINT_FORMAT and raw["model"] == config
    loaded, meta = checkpoints.load_checkpoint(path)
    assert meta["input"] == {"T": 4, "encoding": "direct", "mean": None, "std": None}
    assert "state_dict" not in meta and meta["versions"]["sj_rga"]
    x = torch.rand(4, 3, 1, 8, 8)
    model.eval()
    functional.reset_net(model)
    expected = model(x)
    assert torch.equal(loaded(x), expected)
    assert isinstance(loaded[2], type(model[2])) and loaded[2].tau == pytest.approx(10.0)


def test_checkpoint_errors_are_clear(tmp_path):
    config = {"name": "digits_snn", "num_classes": 10}
    path = checkpoints.save_checkpoint(tmp_path / "m.pt", models.build(**config), config, InputSpec(T=2), "digits",
                                       None)
    with pytest.raises(ValueError, match="does not fit"):
        checkpoints.load_checkpoint(path, model=models.digits_snn(num_classes=3))
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an sj-rga checkpoint"):
        checkpoints.load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(ValueError, match="not a readable"):
        checkpoints.load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        checkpoints.load_checkpoint(tmp_path / "missing.pt")


def test_classifier_from_meta_feeds_the_model_as_it_was_trained():
    model = models.digits_snn(10)
    meta = {"input": {"T": 4, "encoding": "direct", "mean": [0.5], "std": [0.25]}}
    images = torch.rand(3, 1, 8, 8)
    classifier = checkpoints.classifier_from_meta(model, meta, gradient="stbp", eot=5)
    assert (classifier.T, classifier.encoding, classifier.bounds, classifier.eot) == (4, "direct", (0.0, 1.0), 1)
    assert torch.allclose(classifier.encode(images), checkpoints.input_spec(meta)(images))
    assert checkpoints.classifier_from_meta(model, meta, T=2).T == 2
    frames = checkpoints.classifier_from_meta(model, {"input": {"T": 3, "encoding": "frames"}})
    assert frames.bounds == (0.0, None)  # event counts have no upper bound
    poisson = checkpoints.classifier_from_meta(model, {"input": {"T": 2, "encoding": "poisson"}}, eot=3, seed=1)
    assert poisson.eot == 3
