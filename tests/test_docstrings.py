"""The public attacks, estimators and the classifier document every argument with its real default, and the
examples in their docstrings run (on a small digits model, T = 8)."""
import doctest
import inspect
import re

import pytest
import torch

import sj_rga
from sj_rga import attacks, gradients, models

DOCUMENTED = [attacks.FGSM, attacks.PGD, attacks.APGD, attacks.APGDT, attacks.SAPGD, attacks.AutoAttack,
              gradients.STBP, gradients.RGA, gradients.BPTR, gradients.HART, gradients.PDSG, gradients.ASSG,
              sj_rga.SNNClassifier]


def _arguments(cls) -> dict[str, str]:
    """The entries of the docstring's ``Arguments:`` section: name -> its text (continuation lines joined)."""
    doc = inspect.getdoc(cls)
    section = re.search(r"^Arguments:(.*?)(?=^\S|\Z)", doc, re.M | re.S)
    assert section, f"{cls.__name__}'s docstring has no Arguments: section"
    entries, name = {}, None
    for line in section[1].splitlines():
        start = re.match(r"^ {4}(\w+)[ =(]", line)
        if start:
            name = start[1]
            entries[name] = line.strip()
        elif name and line.strip():
            entries[name] += " " + line.strip()
    return entries


def _value(text: str):
    text = text.replace("``", "")
    try:
        return eval(text, {})  # the docstrings write defaults as Python literals (8/255, 'Linf', (0.0, 1.0))
    except SyntaxError:
        return eval(text.split(",")[0], {})  # "1.0, the authors'"


@pytest.mark.parametrize("cls", DOCUMENTED, ids=lambda cls: cls.__name__)
def test_every_argument_is_listed_with_its_default(cls):
    parameters = {name: p for name, p in inspect.signature(cls).parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD}
    entries = {} if not parameters and "Arguments: none" in inspect.getdoc(cls) else _arguments(cls)
    assert [name for name in parameters if name not in entries] == []
    for name, parameter in parameters.items():
        stated = re.search(r"\(Default: (.+)\)$", entries[name])
        if parameter.default is inspect.Parameter.empty:
            assert stated is None, name
        else:
            assert stated and _value(stated[1]) == parameter.default, (name, entries[name], parameter.default)


@pytest.mark.parametrize("cls", DOCUMENTED, ids=lambda cls: cls.__name__)
def test_the_examples_run(cls):
    examples = doctest.DocTestParser().get_examples(inspect.getdoc(cls))
    assert examples, f"{cls.__name__} has no example"
    model = models.digits_snn(10)
    namespace = {"sj_rga": sj_rga, "torch": torch, "model": model, "images": torch.rand(2, 1, 8, 8),
                 "labels": torch.tensor([3, 7]), "x_seq": torch.rand(8, 2, 1, 8, 8)}
    for example in examples:
        exec(compile(example.source, f"{cls.__name__} docstring", "exec"), namespace)
    if "x_adv" in namespace:
        assert namespace["x_adv"].shape == namespace["images"].shape
