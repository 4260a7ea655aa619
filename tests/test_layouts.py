"""Models in the input/output layouts of published SNN code (tests/model_styles.py) under ``SNNClassifier``:
the logits are the model's own, and every estimator's input gradient equals an independent reference (plain
torch loops from method §2 in tests/gradient_reference.py and tests/rga_reference.py, hooked onto the neurons
of the model called directly, fed and read by hand in its own layout)."""
import pytest
import torch
import torch.nn.functional as F
from gradient_reference import ReferenceASSG, ReferenceBPTR, ReferenceHART, ReferencePDSG, cross_entropy_gradient
from lively import lively
from model_styles import AttentionSNN, BatchFirstSNN, StaticInputSNN
from spikingjelly.activation_based import functional, neuron

from sj_rga import SNNClassifier
from sj_rga.errors import UserModelError
from sj_rga.gradients import ASSG, BPTR, HART, PDSG, RGA

from rga_reference import ReferenceRGA

T, LABELS = 3, torch.tensor([1, 2])

#: name -> (model factory, input_layout, output selector)
STYLES = {
    "attention_tb": (lambda: AttentionSNN(), "TB", None),
    "static_b": (lambda: StaticInputSNN(T), "B", None),
    "batch_first_tuple": (lambda: BatchFirstSNN(), "BT", 0),
    "batch_first_tuple_static": (lambda: BatchFirstSNN(T=T), "B", 0),
}

#: estimator, its reference (a context manager over the model), whether it is time-uniform (two paths)
ESTIMATORS = {
    "stbp": ("stbp", None, False),
    "rga": (RGA(), ReferenceRGA, True),
    "bptr": (BPTR(), ReferenceBPTR, True),
    "hart": (HART(gamma=0.7), lambda model: ReferenceHART(model, gamma=0.7), True),
    "pdsg": (PDSG(), ReferencePDSG, False),
    "assg": (ASSG(A=0.45), lambda model: ReferenceASSG(model, A=0.45), False),
}


def own_logits(model, layout, x):
    """The model's own forward, fed and read by hand: multi-step neurons in train mode (0.0.0.0.14's eval path
    has no input gradient), the rest in eval mode, fresh state."""
    functional.reset_net(model)
    model.eval()
    for m in model.modules():
        if isinstance(m, neuron.BaseNode):
            m.train()
    if layout == "TB":
        return model(x.unsqueeze(0).repeat(T, 1, 1, 1, 1)).mean(0)
    if layout == "BT":
        logits, hook = model(x.unsqueeze(1).repeat(1, T, 1, 1, 1))
        return logits
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def gradient(logits_of, x):
    return cross_entropy_gradient(logits_of, x, LABELS)


@pytest.mark.parametrize("style", list(STYLES))
def test_logits_are_the_models_own_and_gradients_equal_the_reference(style):
    build, layout, output = STYLES[style]
    model = lively(build())
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = own_logits(model, layout, x)
    for name, (estimator, reference, time_uniform) in ESTIMATORS.items():
        for path in ("auto", "layer") if time_uniform else ("auto",):
            clf = SNNClassifier(model, T, gradient=estimator, rga_path=path, input_layout=layout, output=output)
            logits, grad = gradient(clf, x)
            assert torch.equal(logits, expected), f"{name} ({path}): the logits must be the model's own"
            if reference is None:  # STBP is the model's own surrogate backward
                _, ref_grad = gradient(lambda inp: own_logits(model, layout, inp), x)
            else:
                with reference(model):
                    _, ref_grad = gradient(lambda inp: own_logits(model, layout, inp), x)
            scale = float(ref_grad.abs().max())
            assert scale > 0 and (ref_grad != 0).float().mean() > 0.3, f"{name} ({path}): a trivial gradient"
            torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-6 * scale, msg=f"{name} ({path})")


def test_batch_first_takes_frames_and_poisson():
    model = lively(BatchFirstSNN())
    frames = torch.randint(0, 3, (2, T, 1, 8, 8)).double()
    clf = SNNClassifier(model, T, encoding="frames", bounds=(0.0, None), input_layout="BT", output=0)
    with torch.no_grad():
        functional.reset_net(model)
        assert torch.equal(clf(frames), model.eval()(frames)[0])
    poisson = SNNClassifier(model, T, encoding="poisson", seed=1, input_layout="BT", output=0)
    assert poisson(torch.rand(2, 1, 8, 8, dtype=torch.float64)).shape == (2, 10)


@pytest.mark.parametrize("encoding,match", [("poisson", "Poisson spikes differ"), ("frames", "time axis")])
def test_static_input_refuses_encodings_that_change_over_time(encoding, match):
    with pytest.raises(ValueError, match=match):
        SNNClassifier(StaticInputSNN(T), T, encoding=encoding, input_layout="B")


def test_static_input_model_with_another_T_is_refused():
    clf = SNNClassifier(lively(StaticInputSNN(4)), T, input_layout="B")
    with pytest.raises(UserModelError, match="makes 4 time steps of its own.*T=3: pass T=4"):
        clf(torch.rand(2, 1, 8, 8, dtype=torch.float64))


@pytest.mark.parametrize("layout,output,match", [
    ("BT", None, r"returned a tuple of 2 \(Tensor, NoneType\).*output=0"),
    ("BT", 2, r"tuple of 2; output=2 must be an index"),
    ("BT", "logits", r"output=.logits. must be an index"),
    ("TB", 0, "does not|layout"),
])
def test_output_selection_errors_are_clear(layout, output, match):
    clf = SNNClassifier(lively(BatchFirstSNN()), T, input_layout=layout, output=output)
    with pytest.raises(UserModelError, match=match):
        clf(torch.rand(2, 1, 8, 8, dtype=torch.float64))


def test_dict_output_by_key_and_callable():
    model = lively(BatchFirstSNN())
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    by_index = SNNClassifier(model, T, input_layout="BT", output=0)(x)
    as_dict = torch.nn.Sequential()  # a wrapper returning a dict
    as_dict.forward = lambda inp: {"logits": model(inp)[0], "aux": None}
    as_dict.add_module("net", model)
    assert torch.equal(SNNClassifier(as_dict, T, input_layout="BT", output="logits")(x), by_index)
    assert torch.equal(SNNClassifier(model, T, input_layout="BT", output=lambda out: out[0])(x), by_index)
    with pytest.raises(UserModelError, match="keys"):
        SNNClassifier(as_dict, T, input_layout="BT", output="scores")(x)


class TimeMajorOut(torch.nn.Module):
    """A model whose output shape can be chosen (for the shape rules)."""

    def __init__(self, reorder):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(64, 10), neuron.IFNode(step_mode="m"))
        self.reorder = reorder

    def forward(self, x):
        if x.dim() == 4:  # a static batch: make the steps here
            x = x.unsqueeze(0).repeat(self.steps, 1, 1, 1, 1)
        return self.reorder(self.net(x))


@pytest.mark.parametrize("layout,steps,batch,reorder,match", [
    ("TB", 3, 2, lambda out: out.transpose(0, 1), r"\[B, T, \.\.\.\].*use input_layout='BT'"),
    ("B", 2, 2, lambda out: out, "T = B = 2.*cannot be told"),
    ("TB", 3, 2, lambda out: out.flatten(0, 1), r"shape \(6, 10\)"),
])
def test_ambiguous_or_wrong_output_shapes_are_refused(layout, steps, batch, reorder, match):
    model = TimeMajorOut(reorder)
    model.steps = steps
    with pytest.raises(UserModelError, match=match):
        SNNClassifier(model, steps, input_layout=layout)(torch.rand(batch, 1, 8, 8))


def test_time_major_output_of_a_static_input_model_when_t_differs_from_b():
    model = TimeMajorOut(lambda out: out)
    model.steps = 3
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        functional.reset_net(model)
        expected = model(x).mean(0)
    assert torch.equal(SNNClassifier(model, 3, input_layout="B")(x), expected)


def test_layout_arguments_are_checked_and_recorded():
    with pytest.raises(ValueError, match="input_layout must be one of"):
        SNNClassifier(AttentionSNN(), T, input_layout="NCHW")
    with pytest.raises(TypeError, match="output must be"):
        SNNClassifier(AttentionSNN(), T, output=1.5)
    clf = SNNClassifier(BatchFirstSNN(), T, input_layout="BT", output=0)
    assert clf.layout() == {"input_layout": "BT", "output": 0}
    assert clf.replace(T=4).layout() == clf.layout() and "input_layout='BT'" in repr(clf)
    assert SNNClassifier(BatchFirstSNN(), T, input_layout="BT", output=lambda o: o[0]).layout()["output"] \
        .startswith("<callable")


def test_an_exception_inside_the_model_is_the_users_error_and_leaves_the_model_as_it_was():
    model = lively(StaticInputSNN(T))
    model.train()
    functional.set_step_mode(model, "s")
    functional.set_step_mode(model, "m")
    with torch.no_grad():  # leftover neuron state of the user's own run
        model(torch.rand(2, 1, 8, 8, dtype=torch.float64))
    before = [(m.training, getattr(m, "step_mode", None), m.v.clone() if isinstance(m, neuron.BaseNode) else None)
              for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    big = torch.rand(2, 1, 16, 16, dtype=torch.float64).requires_grad_(True)  # the head is built for 8×8
    for gradient_name, path in (("rga", "auto"), ("rga", "layer"), ("pdsg", "auto"), ("stbp", "auto")):
        clf = SNNClassifier(model, T, gradient=gradient_name, rga_path=path, input_layout="B")
        with pytest.raises(UserModelError) as raised:
            F.cross_entropy(clf(big), LABELS).backward()
        message = str(raised.value)
        assert isinstance(raised.value.__cause__, RuntimeError), "chained to the model's own exception"
        assert "model_styles.py:" in message and "input_layout='B'" in message and "(2, 1, 16, 16)" in message
        after = [(m.training, getattr(m, "step_mode", None), m.v if isinstance(m, neuron.BaseNode) else None)
                 for m in model.modules()]
        for (t0, s0, v0), (t1, s1, v1) in zip(before, after):
            assert (t0, s0) == (t1, s1) and (v0 is None or torch.equal(v0, v1))
        assert flags == [p.requires_grad for p in model.parameters()]
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_a_time_major_model_fed_batch_first_names_the_layout_option():
    with pytest.raises(UserModelError, match=r"input_layout='TB'.*pass input_layout= one of"):
        SNNClassifier(StaticInputSNN(T), T)(torch.rand(2, 1, 8, 8))


class BatchFirstView(torch.nn.Module):
    """The same network taking batch-first input ``[B, T, ...]`` and returning ``([B, T, K], None)``."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.transpose(0, 1)).transpose(0, 1), None


class StaticView(torch.nn.Module):
    """The same network taking one static batch and repeating it over its own T steps, returning ``[B, K]``."""

    def __init__(self, net, steps):
        super().__init__()
        self.net, self.steps = net, steps

    def forward(self, x):
        return self.net(x.unsqueeze(0).repeat(self.steps, *([1] * x.dim()))).mean(0)


def test_one_network_in_three_layouts_gives_the_same_attacks_evaluation_and_shuffle_test():
    from sj_rga import evaluate, shuffle_test
    from sj_rga.attacks import PGD, AutoAttack
    from sj_rga.models import digits_snn

    net = lively(digits_snn(10))
    gen = torch.Generator().manual_seed(5)
    data = [(torch.rand(4, 1, 8, 8, dtype=torch.float64, generator=gen), torch.randint(0, 10, (4,), generator=gen))
            for _ in range(2)]
    views = {"TB": (net, None), "BT": (BatchFirstView(net), 0), "B": (StaticView(net, T), None)}
    results = {}
    for layout, (model, output) in views.items():
        row = []
        for name in ESTIMATORS:
            clf = SNNClassifier(model, T, gradient=ESTIMATORS[name][0], input_layout=layout, output=output)
            row.append(gradient(clf, data[0][0][:2]))
        clf = SNNClassifier(model, T, input_layout=layout, output=output)
        pgd = evaluate(clf, PGD(clf, 0.1, 0.05, 3, seed=1), data, batch_size=4, progress=False)
        suite = evaluate(clf, AutoAttack(clf, 0.1, version="fast", seed=0), data, batch_size=4, progress=False)
        results[layout] = (row, pgd.robust_accuracy, suite.robust_accuracy, shuffle_test(clf, data, batch_size=4))
    for layout in ("BT", "B"):
        for (logits, grad), (ref_logits, ref_grad) in zip(results[layout][0], results["TB"][0]):
            assert torch.equal(logits, ref_logits)
            torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)
        assert results[layout][1:] == results["TB"][1:], layout


class MergedIF(torch.nn.Module):
    """A neuron as the attack papers write it: IF dynamics on a merged ``[T·B, ...]`` input, T fixed inside."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def forward(self, x):
        x = x.reshape(self.steps, -1, *x.shape[1:])
        v, out = torch.zeros_like(x[0]), []
        for x_t in x:
            v = v + x_t
            spike = (v >= 1.0).to(x.dtype)
            v = v * (1 - spike)
            out.append(spike)
        return torch.stack(out).flatten(0, 1)


def test_shuffle_test_refuses_spikes_that_are_not_time_major():
    from sj_rga import NeuronMapping, mapping, register_neuron, shuffle_test

    model = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Flatten(0, 1), torch.nn.Linear(64, 10), MergedIF(T),
                                torch.nn.Unflatten(0, (T, -1)))
    register_neuron(MergedIF, lambda node: NeuronMapping(lam=1.0, theta=1.0))
    try:
        clf = SNNClassifier(model, T, gradient="stbp")
        data = [(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))]
        with pytest.raises(ValueError, match=r"MergedIF gives spikes of shape \(6, 10\), not time-major"):
            shuffle_test(clf, data)
    finally:
        mapping._REGISTRY.pop(MergedIF)
