"""tune_gradient: HART's γ and ASSG's A chosen by ASR on a named held-out split, every score recorded."""
import json

import pytest
import torch

from sj_rga import SNNClassifier, evaluate, tune_gradient
from sj_rga.attacks import FGSM
from sj_rga.data.digits import digits
from sj_rga.experiment import AttackSpec
from sj_rga.gradients import ASSG, HART


@pytest.fixture(scope="module")
def held_out():
    """64 digits from the training split (never the test split)."""
    x, y = digits()[0].tensors
    return x[-64:], y[-64:]


def test_hart_gamma_chosen_by_the_best_score_and_recorded(digits_models, held_out):
    model = digits_models[0]
    clf = SNNClassifier(model, 8, gradient="stbp")
    result = tune_gradient(clf, "hart", held_out, attack=lambda c: FGSM(c, 0.15), split="train-holdout",
                           grid=(0.3, 1.0, 2.0), progress=False)
    assert list(result.scores) == [0.3, 1.0, 2.0] and result.samples == 64 and result.split == "train-holdout"
    assert result.scores[result.value] == max(result.scores.values())
    assert result.estimator == HART(gamma=result.value) and result.parameter == "gamma"
    expected = evaluate(clf, FGSM(clf.with_gradient(HART(gamma=1.0)), 0.15), held_out, progress=False)
    assert result.scores[1.0] == expected.attack_success_rate
    assert len(set(result.scores.values())) > 1, "γ must matter on this model"
    record = json.loads(json.dumps(result.as_dict()))
    assert record["gradient"] == "hart" and record["parameters"] == {"gamma": result.value}
    assert set(record["scores"]) == {"0.3", "1", "2"}


def test_assg_keeps_its_other_parameters_and_takes_an_attack_spec(digits_models, held_out):
    clf = SNNClassifier(digits_models[0], 8, gradient="rga")
    result = tune_gradient(clf, ASSG(relax=1.0), held_out, attack=AttackSpec("fgsm", 0.15), split="holdout",
                           grid=(0.4, 0.45), progress=False)
    assert result.estimator == ASSG(A=result.value, relax=1.0) and list(result.scores) == [0.4, 0.45]


def test_ties_keep_the_earlier_grid_value(digits_models, held_out):
    clf = SNNClassifier(digits_models[0], 8)
    result = tune_gradient(clf, "hart", held_out, attack=lambda c: FGSM(c, 0.0), split="holdout",
                           grid=(0.7, 0.2), progress=False)
    assert result.scores == {0.7: 0.0, 0.2: 0.0} and result.value == 0.7


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(split="test"), ValueError, "refuses split='test'"),
    (dict(split="  "), ValueError, "split must name"),
    (dict(gradient="rga"), ValueError, "hart and assg"),
    (dict(gradient="pdsg"), ValueError, "hart and assg"),
    (dict(grid=()), ValueError, "at least one value of gamma"),
    (dict(grid=(0.5, 0.0)), ValueError, r"gamma.*\(0, ∞\)"),
    (dict(gradient="assg", grid=(0.5,)), ValueError, r"A .*\(0, 0.5\)"),
    (dict(attack=3), TypeError, "attack must build an attack"),
])
def test_bad_calls(kwargs, error, match):
    from sj_rga.models import digits_snn

    call = dict(gradient="hart", split="holdout", grid=(0.5,), attack=lambda c: FGSM(c, 0.1))
    call.update(kwargs)
    held = (torch.rand(4, 1, 8, 8), torch.arange(4))
    with pytest.raises(error, match=match):
        tune_gradient(SNNClassifier(digits_snn(10), 4), call.pop("gradient"), held, **call)
