"""What a new user trips over first, checked before any work starts: a model of their own that does not fit the
data, normalisation for other channels, ε beyond what the norm allows, a misspelt model name, a factory
module Python cannot find, and `sj-rga` with no sub-command. Each is one line on stderr and exit status 2,
never "internal error ... a bug in sj-rga"."""
import textwrap

import pytest

import sj_rga.metrics
from sj_rga.cli import main
from sj_rga.cli.common import check_eps_in_range
from sj_rga.cli.errors import DEBUG_VARIABLE, EXIT_USAGE, UsageError
from sj_rga.errors import UserModelError

MODEL_FILE = '''
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron


def build(num_classes=10, in_channels=3, size=32):
    net = nn.Sequential(layer.Conv2d(in_channels, 4, 3, padding=1), neuron.IFNode(), layer.Flatten(),
                        layer.Linear(4 * size * size, num_classes))
    functional.set_step_mode(net, "m")
    return net


class Reshaping(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = layer.Linear(3 * 32 * 32, 10)
        self.sn = neuron.IFNode(step_mode="m")

    def forward(self, x):
        return self.sn(self.fc(x.reshape(x.shape[0], x.shape[1], 3 * 32 * 32)))


def reshaping():
    return Reshaping()


def no_neuron():
    return nn.Sequential(nn.Flatten(2), nn.Linear(64, 10))
'''


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """A module of the user's models in the current folder (a fresh name per test: imports are cached)."""
    name = f"my_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODEL_FILE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)
    return name


@pytest.fixture
def no_run(monkeypatch):
    """Fail the test if the evaluation itself starts."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the run started before the model was checked against the data")

    monkeypatch.setattr(sj_rga.metrics, "attack_records", forbidden)


def one_line(code, capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == EXIT_USAGE and len(lines) == 1, err
    assert "internal error" not in err and "bug" not in err and "Traceback" not in err
    return lines[0]


def test_a_factory_model_for_3x32x32_on_digits_names_the_layer_and_the_factory(user_models, tmp_path, capsys, no_run):
    out = tmp_path / "out"
    line = one_line(main(["evaluate", "--model", f"{user_models}:build", "-T", "2", "--eps", "0.1", "--limit", "4",
                          "--out", str(out)]), capsys)
    assert line.startswith(f"sj-rga evaluate: error: --model {user_models}:build cannot take --data digits samples "
                           "(1×8×8, fed as [T=2, B, 1, 8, 8] with --input-layout TB)")
    factory = 1 + textwrap.dedent(MODEL_FILE).splitlines().index("def build(num_classes=10, in_channels=3, size=32):")
    assert "in layer '0' (Conv2d(3, 4" in line and f"{user_models}.py:{factory})" in line and "--model-args" in line
    assert not out.exists(), "a failed check left a run folder behind"


def test_an_error_in_the_models_own_forward_names_its_file_and_line(user_models, tmp_path, capsys, no_run):
    line = one_line(main(["attack", "--model", f"{user_models}:reshaping", "-T", "2", "--limit", "4",
                          "--out", str(tmp_path / "out")]), capsys)
    raising = 1 + next(i for i, text in enumerate(textwrap.dedent(MODEL_FILE).splitlines()) if "reshape(" in text)
    assert f"{user_models}.py:{raising}: shape" in line and "RuntimeError" in line


def test_a_model_without_spiking_neurons_is_refused(user_models, tmp_path, capsys, no_run):
    line = one_line(main(["evaluate", "--model", f"{user_models}:no_neuron", "-T", "2", "--eps", "0.1",
                          "--out", str(tmp_path / "out")]), capsys)
    assert f"--model {user_models}:no_neuron: Sequential contains no spiking neuron" in line


def test_a_model_with_too_few_outputs_is_refused(user_models, tmp_path, capsys, no_run):
    args = '{"in_channels": 1, "size": 8, "num_classes": 5}'
    line = one_line(main(["evaluate", "--model", f"{user_models}:build", "--model-args", args, "-T", "2", "--eps",
                          "0.1", "--out", str(tmp_path / "out")]), capsys)
    assert "returns 5 class scores but --data digits has 10 classes" in line


def test_mean_and_std_for_three_channels_on_one_channel_digits(user_models, tmp_path, capsys, no_run):
    argv = ["evaluate", "--model", f"{user_models}:build", "--model-args", '{"in_channels": 1, "size": 8}', "-T",
            "2", "--mean", "0.5", "0.5", "0.5", "--std", "0.2", "0.2", "0.2", "--eps", "0.1", "--out", "out"]
    line = one_line(main(argv), capsys)
    assert "--mean has 3 values but --data digits has 1 channel" in line


def test_std_zero_is_reported_as_std(user_models, capsys, no_run):
    argv = ["evaluate", "--model", f"{user_models}:build", "-T", "2", "--mean", "0", "--std", "0", "--eps", "0.1",
            "--out", "out"]
    line = one_line(main(argv), capsys)
    assert "--std" in line and "suite" not in line


def test_eps_is_checked_per_norm_against_the_input_size():
    check_eps_in_range("--eps", [1.01, 8.0], "digits", "L2")  # an 8×8 image allows L2 up to sqrt(64) = 8
    with pytest.raises(UsageError, match=r"--eps 8.5 is larger than any L2 distance.*sqrt\(64\)·1 = 8"):
        check_eps_in_range("--eps", [8.5], "digits", "L2")
    with pytest.raises(UsageError, match="--eps 1.01 is larger than the input range"):
        check_eps_in_range("--eps", [1.01], "digits", "Linf")
    check_eps_in_range("--eps", [5.0], "digits", "Linf", bounds=(-10.0, 10.0))  # the user's own bounds
    check_eps_in_range("--eps", [5.0], "digits", "Linf", bounds=(0.0, None))  # no upper bound


def test_l2_eps_above_one_runs(tmp_path, capsys, monkeypatch, digits_checkpoint):
    monkeypatch.setattr(sj_rga.metrics, "attack_records", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    code = main(["evaluate", "--checkpoint", str(digits_checkpoint), "--norm", "L2", "--eps", "1.01", "--limit", "4",
                 "--out", str(tmp_path / "out")])
    assert code == 130, capsys.readouterr().err  # got past every check to the run itself


@pytest.mark.parametrize("command", ["evaluate", "attack", "shuffle"])
@pytest.mark.parametrize("name,hint", [("vgg99", None), ("mymodel.build", "--model mymodel:build")])
def test_an_unknown_model_name_lists_the_models(command, name, hint, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [command, "--model", name] + (["--eps", "0.1", "--out", "out"] if command == "evaluate" else [])
    line = one_line(main(argv), capsys)
    assert f"unknown model {name!r}: use one of vgg11, resnet17, dvs_vgg, digits_snn" in line
    assert hint is None or hint in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "sj_rga_out").exists()


def test_a_factory_module_that_is_not_found_hints_at_the_folder_and_pythonpath(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    line = one_line(main(["evaluate", "--model", "not_here_models:build", "-T", "2", "--eps", "0.1", "--out", "o"]),
                    capsys)
    assert "No module named 'not_here_models'" in line
    assert f"the current folder {tmp_path}" in line and "PYTHONPATH" in line


def test_an_exception_inside_the_users_model_during_the_run_is_the_users(tmp_path, capsys, monkeypatch,
                                                                         digits_checkpoint):
    def raising(*args, **kwargs):
        raise UserModelError("the model raised RuntimeError: mat1 and mat2 shapes cannot be multiplied",
                             location="my_models.py:12")

    monkeypatch.setattr(sj_rga.metrics, "attack_records", raising)
    line = one_line(main(["evaluate", "--checkpoint", str(digits_checkpoint), "--limit", "4", "--eps", "0.1",
                          "--out", str(tmp_path / "out")]), capsys)
    assert line.startswith("sj-rga evaluate: error: the model raised RuntimeError") and "my_models.py:12" in line


def test_bare_sj_rga_shows_the_sub_commands_and_where_to_start(capsys):
    code = main([])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and err.startswith("usage: sj-rga")
    for command in ("demo", "attack", "evaluate", "shuffle", "train"):
        assert f"\n  {command} " in err
    assert "Start with `sj-rga demo`" in err and "the following arguments are required" not in err


def test_the_sample_check_leaves_the_poisson_stream_and_the_model_as_they_were():
    import argparse

    import torch

    from sj_rga import SNNClassifier
    from sj_rga.cli.checks import check_model_takes_sample
    from sj_rga.models import build

    torch.manual_seed(0)
    classifier = SNNClassifier(build("digits_snn", 10, in_channels=1, image_size=8), 4, encoding="poisson", seed=3)
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        before = classifier(x)
    classifier.restart()
    state = {k: v.clone() for k, v in classifier.model.state_dict().items()}
    check_model_takes_sample(classifier, x[:1], argparse.Namespace(model=None, checkpoint="m.pt", data="digits"), 10)
    with torch.no_grad():
        after = classifier(x)
    assert torch.equal(before, after)
    assert all(torch.equal(v, classifier.model.state_dict()[k]) for k, v in state.items())
