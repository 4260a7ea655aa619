"""Every estimator's input gradient equals an independent reference written from method §2
(tests/gradient_reference.py, tests/rga_reference.py), in float64, on the reference models, with direct,
Poisson and frame input; the fast path and the per-layer backward both; the logits are the stock ones."""
import pytest
import torch
import torch.nn.functional as F
from gradient_reference import ReferenceASSG, ReferenceBPTR, ReferenceHART, ReferencePDSG
from lively import lively

from sj_rga import SNNClassifier
from sj_rga.gradients import ASSG, BPTR, HART, PDSG, RGA
from sj_rga.models import build

from rga_reference import ReferenceRGA

RTOL = 1e-6
T = 3

MODELS = {
    "digits_if": (lambda: build("digits_snn", 10, lam=1.0), 1, 8),
    "digits_lif_0.9": (lambda: build("digits_snn", 10, lam=0.9), 1, 8),
    "vgg11": (lambda: build("vgg11", 10, image_size=8), 3, 8),
    "resnet17": (lambda: build("resnet17", 10, image_size=8), 3, 8),
    "sew_resnet18": (lambda: build("sew_resnet18", 10), 3, 16),
}

#: estimator, reference, number of gradients taken in a row (ASSG's moments evolve over calls).
ESTIMATORS = {
    "rga": (RGA(), lambda model: ReferenceRGA(model), 1),
    "bptr": (BPTR(), ReferenceBPTR, 1),
    "hart": (HART(gamma=0.7), lambda model: ReferenceHART(model, gamma=0.7), 1),
    "pdsg": (PDSG(), ReferencePDSG, 1),
    "assg": (ASSG(A=0.45, relax=1.2, beta1=0.8, beta2=0.7),
             lambda model: ReferenceASSG(model, A=0.45, relax=1.2, beta1=0.8, beta2=0.7), 3),
}


def batches(encoding: str, channels: int, size: int, count: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    if encoding == "frames":
        return [torch.randint(0, 3, (2, T, channels, size, size), generator=gen).double() for _ in range(count)]
    return [torch.rand(2, channels, size, size, generator=gen, dtype=torch.float64) for _ in range(count)]


def classifier_options(encoding: str) -> dict:
    return {"direct": {}, "poisson": dict(encoding="poisson", seed=3),
            "frames": dict(encoding="frames", bounds=(0.0, None))}[encoding]


def logits_and_grad(clf: SNNClassifier, x: torch.Tensor):
    x = x.clone().requires_grad_(True)
    logits = clf(x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor([1, 2])), x)
    return logits.detach(), grad


@pytest.mark.parametrize("encoding", ["direct", "poisson", "frames"])
@pytest.mark.parametrize("model_name", list(MODELS))
def test_every_estimator_equals_its_reference(model_name, encoding):
    build_model, channels, size = MODELS[model_name]
    model = lively(build_model())
    options = classifier_options(encoding)
    for name, (estimator, reference, calls) in ESTIMATORS.items():
        inputs = batches(encoding, channels, size, calls)
        paths = ("auto", "layer") if name in ("rga", "bptr", "hart") else ("auto",)
        for path in paths:
            ours = SNNClassifier(model, T, gradient=estimator, rga_path=path, **options)
            theirs = SNNClassifier(model, T, gradient="stbp", **options)
            ref = reference(model)
            for call, x in enumerate(inputs):
                logits, grad = logits_and_grad(ours, x)
                with ref:
                    ref_logits, ref_grad = logits_and_grad(theirs, x)
                where = f"{name} ({path} path), call {call}"
                assert torch.equal(logits, ref_logits), f"{where}: the logits must be the stock ones"
                scale = float(ref_grad.abs().max())
                assert scale > 0 and (ref_grad != 0).float().mean() > 0.3, f"{where}: a trivial gradient"
                torch.testing.assert_close(grad, ref_grad, rtol=RTOL, atol=RTOL * scale, msg=where)
