"""Issue 18's "Done when": model files written the way Spikformer (ZK-Zhou/spikformer, ``cifar10/model.py``) and
Spike-Driven Transformer (BICLab/Spike-Driven-Transformer, ``model/spikeformer.py``, ``module/``) write theirs,
imports and all (tests/spikformer_model.py, tests/sdt_model.py), run unchanged under ``SNNClassifier`` with only
``input_layout=`` / ``output=`` and under ``sj-rga evaluate --model`` with only ``--clock-driven``,
``--input-layout`` and ``--model-output``, on both SpikingJelly releases (0.0.0.0.14's own ``clock_driven``,
2.x through ``sj_rga.compat.enable_clock_driven()``): logits equal to the model's own forward, fed and read as
the published training scripts do, and every estimator's input gradient equal to the independent references."""
import contextlib
import importlib
import json
import logging

import pytest
import torch
import torch.nn.functional as F
from gradient_reference import cross_entropy_gradient
from lively import lively
from test_clock_driven_compat import REAL, clock_driven, clock_driven_cleanup  # noqa: F401  (fixtures)
from test_layouts import ESTIMATORS

from sj_rga import SNNClassifier
from sj_rga.cli import main

T, LABELS = 3, torch.tensor([1, 2])


def tet_logits(out):
    """SDT's own validation with ``--TET``: ``output[0]`` is time-major ``[T, B, K]``, then ``.mean(0)``."""
    return out[0].mean(0)


#: case -> (model file, factory keyword arguments, input_layout, output selector, how the published scripts
#: read the model's output)
CASES = {
    "spikformer": ("spikformer_model", {}, "B", None, lambda out: out),
    "sdt_frames": ("sdt_model", {}, "BT", 0, lambda out: out[0]),
    "sdt_plif_frames": ("sdt_model", {"spike_mode": "plif"}, "BT", 0, lambda out: out[0]),
    "sdt_static": ("sdt_model", {}, "B", 0, lambda out: out[0]),
    "sdt_tet_frames": ("sdt_model", {"TET": True}, "BT", tet_logits, tet_logits),
}


def _neurons(model):
    return [m for m in model.modules() if hasattr(m, "v_threshold")]


#: per model file, the range of BatchNorm biases and the gain of convolution weights with which every layer
#: fires and none saturates (SDT's membrane shortcuts add the biases of every block up)
FIRING = {"spikformer_model": ((1.0, 2.4), 3.0), "sdt_model": ((0.0, 1.0), 3.0)}


def firing(model, bias, conv_gain):
    """:func:`lively`, with BatchNorm biases and convolution weights raised so that every LIF layer of these
    deeper models (charge ``v + (x - v) / 2``: an input near 2 to fire) fires at random initialisation."""
    gen = torch.Generator().manual_seed(2)
    model = lively(model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.bias.uniform_(*bias, generator=gen)
            elif isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(conv_gain)
    return model


def build(file, kwargs):
    """The model as its file builds it (``backend='cupy'``; on 0.0.0.0.14, built with 'torch' and set to 'cupy'
    afterwards, since its constructor asserts CuPy), made to fire at random initialisation."""
    module = importlib.import_module(file)
    module.BACKEND = "torch" if REAL else "cupy"
    model = firing(getattr(module, file.split("_")[0])(T=T, **kwargs), *FIRING[file])
    for m in _neurons(model):
        m.backend = "cupy"
    return model


@contextlib.contextmanager
def torch_backend(model):
    """The model's neurons on ``backend='torch'`` for its own forward (0.0.0.0.14 needs CuPy for 'cupy')."""
    saved = [(m, m.backend) for m in _neurons(model)]
    for m, _ in saved:
        m.backend = "torch"
    try:
        yield model
    finally:
        for m, backend in saved:
            m.backend = backend


def own_logits(model, layout, read, x):
    """The model's own forward as the published scripts call it: ``functional.reset_net`` from clock_driven,
    BatchNorm in eval mode, the neurons in train mode (0.0.0.0.14's eval path has no input gradient); a static
    batch for Spikformer, batch-first frames for SDT, ``read`` of the output (``output[0]`` of SDT's
    ``(x, hook)``)."""
    from spikingjelly.clock_driven import functional

    with torch_backend(model):
        functional.reset_net(model)
        model.eval()
        for m in _neurons(model):
            m.train()
        out = model(x.unsqueeze(1).repeat(1, T, 1, 1, 1) if layout == "BT" else x)
    return read(out)


def gradient(logits_of, x):
    return cross_entropy_gradient(logits_of, x, LABELS)


@pytest.mark.parametrize("case", list(CASES))
def test_published_style_logits_and_every_estimator(case, clock_driven):  # noqa: F811
    file, kwargs, layout, output, read = CASES[case]
    model = build(file, kwargs)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = own_logits(model, layout, read, x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name, (estimator, reference, time_uniform) in ESTIMATORS.items():
        for path in ("auto", "layer") if time_uniform else ("auto",):
            clf = SNNClassifier(model, T, gradient=estimator, rga_path=path, input_layout=layout, output=output)
            logits, grad = gradient(clf, x)
            assert torch.equal(logits, expected), f"{name} ({path}): the logits must be the model's own"
            with reference(model) if reference else contextlib.nullcontext():
                _, ref_grad = gradient(lambda inp: own_logits(model, layout, read, inp), x)
            scale = float(ref_grad.abs().max())
            assert scale > 0 and (ref_grad != 0).float().mean() > 0.3, f"{name} ({path}): a trivial gradient"
            torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-6 * scale, msg=f"{name} ({path})")
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert {m.backend for m in _neurons(model)} == {"cupy"}


def test_the_classifier_resets_clock_driven_neurons_without_a_warning_each(clock_driven, caplog):  # noqa: F811
    """0.0.0.0.14's ``activation_based.functional.reset_net`` logs a warning for each clock_driven neuron at every
    call (thousands of stderr lines in one CLI evaluation); the classifier resets them silently, and fully: the
    second call gives the first call's logits."""
    model = build("spikformer_model", {})
    clf = SNNClassifier(model, T, input_layout="B")
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with caplog.at_level(logging.WARNING), torch.no_grad():
        first, second = clf(x), clf(x)
    assert torch.equal(first, second)
    assert not [r for r in caplog.records if "reset()" in r.getMessage()], caplog.records[:1]


@pytest.mark.parametrize("file,obstacle,method", [
    ("spikformer_model", "model.patch_embed.maxpool1 (MaxPool2d)", "traced graph (torch.fx)"),
    ("sdt_model", "model.patch_embed.maxpool (MaxPool2d)", "torch.fx could not trace SpikeDrivenTransformer.forward"),
])
def test_fast_path_refusal_names_the_published_obstacle(clock_driven, file, obstacle, method):  # noqa: F811
    """Both models max-pool spikes in their patch embedding (and multiply spikes in attention): the fast path is
    refused, naming that module; SDT's ``len(x.shape)`` branch is judged by its children."""
    from sj_rga.fast import prove_fast_path

    verdict = prove_fast_path(build(file, {}))
    assert verdict.obstacle.startswith(obstacle) and "max of spikes" in verdict.obstacle
    assert any(method in m for m in verdict.methods), verdict.methods


def test_sdt_tet_output_read_as_batch_first_is_refused(clock_driven):  # noqa: F811
    """With ``TET=True`` SDT takes batch-first frames but returns time-major ``[T, B, K]``: ``output=0`` alone
    (B ≠ T) is refused with the shape, never read as ``[B, T, K]``; ``output=tet_logits`` is the way."""
    from sj_rga.errors import UserModelError

    model = build("sdt_model", {"TET": True})
    clf = SNNClassifier(model, T, input_layout="BT", output=0)
    with pytest.raises(UserModelError, match=r"returned shape \(3, 2, 10\), which is time-major"):
        clf(torch.rand(2, 1, 8, 8, dtype=torch.float64))


def fitted_weights(file, layout, read, samples, path):
    """A state_dict for ``file``'s factory (T = 3) that classifies the first ``samples`` test digits (those the
    CLI evaluates) correctly, so that every attack of the suite runs: the firing model of :func:`build` with its
    linear head fitted to them by least squares on its time-averaged inputs (both heads are linear in them).
    A plumbing check, not a robustness figure. Saved in float32, as a user's trained weights would be."""
    from test_clock_driven_compat import clock_driven_removed_afterwards

    from sj_rga.compat import enable_clock_driven
    from sj_rga.data.digits import digits

    with clock_driven_removed_afterwards():
        enable_clock_driven()
        model = build(file, {})
        x, y = (t[:samples] for t in digits()[1].tensors)
        inputs = []
        handle = model.head.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
        with torch.no_grad():
            own_logits(model, layout, read, x.double())
        handle.remove()
        features = inputs[0].mean(0) if inputs[0].dim() == 3 else inputs[0]  # SDT: [T, B, C]
        design = torch.cat([features, torch.ones(len(y), 1, dtype=features.dtype)], dim=1)
        solution = torch.linalg.lstsq(design, F.one_hot(y, 10).to(design.dtype) * 4).solution  # [C + 1, 10]
        model.head.weight.data, model.head.bias.data = solution[:-1].T.contiguous(), solution[-1].contiguous()
        torch.save({k: v.float() for k, v in model.state_dict().items()}, path)


@pytest.mark.parametrize("factory,options", [
    ("spikformer_model:spikformer", ["--input-layout", "B"]),
    ("sdt_model:sdt", ["--input-layout", "BT", "--model-output", "0"]),
])
def test_evaluate_published_style_models(tmp_path, monkeypatch, clock_driven_cleanup, capsys,  # noqa: F811
                                         factory, options):
    """The CLI with the factory, its trained weights and only ``--clock-driven``, ``--input-layout``,
    ``--model-output``: exit 0, samples classified correctly and attacked, results written."""
    file = factory.split(":")[0]
    case = {"spikformer_model": "spikformer", "sdt_model": "sdt_frames"}[file]
    fitted_weights(file, CASES[case][2], CASES[case][4], 8, tmp_path / "w.pth")
    if REAL:  # 0.0.0.0.14 asserts CuPy for backend='cupy' at construction
        monkeypatch.setattr(importlib.import_module(file), "BACKEND", "torch")
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", factory, "--model-args", json.dumps({"T": T}), "--weights",
                 str(tmp_path / "w.pth"), "-T", str(T), "--clock-driven", *options, "--data", "digits", "--limit", "8",
                 "--batch-size", "4", "--eps", "0.1", "--suite", "fast", "--no-progress", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    result = json.loads((out / "results.json").read_text())
    assert result["input"]["input_layout"] == options[1] and result["input"]["T"] == T
    assert result["clean_accuracy"] >= 0.5 and result["rows"][0]["attacked"] > 0, result["rows"]
    capsys.readouterr()
