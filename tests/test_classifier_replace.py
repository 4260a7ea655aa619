"""``SNNClassifier.replace``: a new classifier built (and so checked) by the constructor, never a mutated copy."""
import pytest
import torch

from sj_rga import SNNClassifier
from sj_rga.gradients import HART
from sj_rga.models import digits_snn


def test_replace_keeps_every_other_setting():
    clf = SNNClassifier(digits_snn(10), 4, encoding="poisson", gradient=HART(gamma=0.5), eot=2, seed=3,
                        rga_path="layer", mean=0.1, std=0.5, bounds=(0.0, None))
    twin = clf.replace(T=8, seed=5)
    assert twin is not clf and twin.model is clf.model
    assert (twin.T, twin.seed, clf.T, clf.seed) == (8, 5, 4, 3)
    assert {k: v for k, v in twin.settings().items() if k not in ("T", "seed")} == \
        {k: v for k, v in clf.settings().items() if k not in ("T", "seed")}
    assert clf.with_time_steps(6).T == 6 and clf.with_gradient("bptr").gradient_name == "bptr"


@pytest.mark.parametrize("changes,error,match", [
    (dict(T=0), ValueError, "T"),
    (dict(eot=2, encoding="direct"), ValueError, "eot"),
    (dict(rga_path="quick"), ValueError, "rga_path"),
    (dict(std=[0.0]), ValueError, "std"),
    (dict(steps=3), TypeError, "unknown settings"),
])
def test_replace_checks_like_the_constructor(changes, error, match):
    clf = SNNClassifier(digits_snn(10), 4, encoding="poisson", seed=0)
    with pytest.raises(error, match=match):
        clf.replace(**changes)
    assert clf.T == 4 and clf.encoding == "poisson"  # unchanged


def test_replace_starts_fresh():
    clf = SNNClassifier(digits_snn(10), 2, encoding="poisson", seed=1)
    x = torch.rand(3, 1, 8, 8)
    first = clf(x)
    assert torch.equal(clf.replace()(x), first)  # a fresh Poisson stream from the same seed
