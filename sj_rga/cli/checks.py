"""Checks made before work starts that need the model or the data: the model's name, ``--mean``/``--std``
against the data's channels, and one no-grad forward of the model on one sample of the data.

A model that raises on that sample (built for another input size, layout or number of channels) is the
user's mistake, not a bug in sj-rga: :func:`check_model_takes_sample` raises a :class:`UsageError` naming
the model's file and line (:func:`sj_rga.errors.model_location`) and what to try.
"""
from __future__ import annotations

import argparse
from typing import Any, Optional

import torch

from ..errors import UserModelError, model_location
from ..layouts import INPUT_LAYOUTS
from .errors import UsageError, one_line


def reference_model_names() -> list[str]:
    """The reference models sj-rga builds by name (:data:`sj_rga.models.MODELS`)."""
    from ..models import MODELS

    return list(MODELS)


def check_model_name(name: Optional[str]) -> None:
    """``--model name`` is a reference model, a SpikingJelly zoo constructor or ``pkg.module:factory``;
    otherwise ``unknown model 'name': use one of ...`` (with ``pkg.module:factory`` suggested for a dotted
    name such as the typo ``mymodel.build``)."""
    from ..models.zoo import zoo_constructor
    from .user_model import is_factory

    if name is None or is_factory(name) or name in reference_model_names():
        return
    try:
        zoo_constructor(name)
        return
    except ValueError:
        pass
    except ImportError:  # the zoo cannot be imported here: the name is checked when the model is built
        return
    hint = ""
    if "." in name:
        module, _, factory = name.rpartition(".")
        hint = f"; for your own model write pkg.module:factory, e.g. --model {module}:{factory}"
    raise UsageError(f"unknown model {name!r}: use one of {', '.join(reference_model_names())} or a SpikingJelly "
                     f"zoo constructor name (spiking_vgg11_bn, sew_resnet18, ...){hint}")


def check_normalisation(args: argparse.Namespace, channels: int) -> None:
    """``--mean``/``--std``: one value, or one per channel of the data (``channels``)."""
    for option in ("mean", "std"):
        values = getattr(args, option, None)
        if values is not None and len(values) not in (1, channels):
            raise UsageError(f"--{option} has {len(values)} values but --data {args.data} has {channels} channel"
                             f"{'s' if channels != 1 else ''}: give one value, or one per channel")


def first_sample(loader: Any) -> torch.Tensor:
    """The first input of a DataLoader's data set, as a batch of one (``[1, ...]``)."""
    x = loader.dataset[0][0]
    return torch.as_tensor(x)[None]


def _shape(x: torch.Tensor) -> str:
    return "×".join(str(n) for n in x.shape[1:])


def _layer_that_raised(model: torch.nn.Module, error: BaseException) -> Optional[str]:
    """``layer '<name>' (<Module repr>)``: the innermost sub-module of ``model`` on ``error``'s traceback."""
    names = {id(module): name for name, module in model.named_modules()}
    found = None
    trace = error.__traceback__
    while trace is not None:
        module = trace.tb_frame.f_locals.get("self")
        if isinstance(module, torch.nn.Module) and id(module) in names:
            found = module
        trace = trace.tb_next
    if found is None or found is model:  # the model's own forward: its file and line say more
        return None
    text = " ".join(repr(found).split())
    return f"layer {names[id(found)]!r} ({text[:80]}{'...' if len(text) > 80 else ''})"


def _factory_location(spec: str) -> Optional[str]:
    """``file:line`` of the user's factory ``pkg.module:factory`` (it is importable by now), or None."""
    import importlib
    import inspect

    module_name, _, attribute = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
        return f"{inspect.getsourcefile(target)}:{inspect.getsourcelines(target)[1]}"
    except (ImportError, AttributeError, OSError, TypeError):
        return None


def _reset(model: torch.nn.Module) -> None:
    from spikingjelly.activation_based import functional

    functional.reset_net(model)


def model_label(args: argparse.Namespace) -> str:
    """How errors name the model: ``--model <name>``, or ``the model of <checkpoint>``."""
    if getattr(args, "model", None):
        return f"--model {args.model}"
    return f"the model of {args.checkpoint}" if getattr(args, "checkpoint", None) else "the model"


def check_model_takes_sample(classifier: Any, sample: torch.Tensor, args: argparse.Namespace, num_classes: int,
                             device: Optional[torch.device] = None) -> None:
    """One no-grad forward of ``classifier`` on ``sample`` (``[1, ...]``, pixel space): a :class:`UsageError`
    naming the shapes, the model's file and line and what to try when the model raises, or when it returns
    fewer classes than the data have. The model's state and the classifier's Poisson stream are reset
    afterwards."""
    per_step = sample.shape[2:] if classifier.encoding == "frames" else sample.shape[1:]
    item = ", ".join(str(n) for n in per_step) if len(per_step) else "..."
    fed = {"TB": f"[T={classifier.T}, B, {item}]", "BT": f"[B, T={classifier.T}, {item}]",
           "B": f"[B, {item}]"}[classifier.input_layout] + f" with --input-layout {classifier.input_layout}"
    what = model_label(args)
    try:
        with torch.no_grad():
            logits = classifier(sample.to(device) if device is not None else sample)
    except Exception as error:  # whatever the user's model raises on the data is theirs to fix
        cause = error.__cause__ if isinstance(error, UserModelError) and error.__cause__ is not None else error
        factory = getattr(args, "model", None) if ":" in (getattr(args, "model", None) or "") else None
        where = getattr(error, "location", None) or model_location(cause)
        layer = _layer_that_raised(classifier.model, cause)
        at = "".join(f" {part}" for part in (layer and f"in {layer}", where and f"at {where}") if part)
        if not where and factory and _factory_location(factory):
            at += f" (the model is built at {_factory_location(factory)})"
        hint = ("build the model for this input (--model-args) or use the --data it was built for; check "
                f"--input-layout (one of {', '.join(INPUT_LAYOUTS)}), -T, --encoding and --mean/--std" if factory
                else "use the --data the model was trained on")
        raise UsageError(f"{what} cannot take --data {args.data} samples ({_shape(sample)}, fed as {fed}): it "
                         f"raised {type(cause).__name__}{at}: {one_line(cause).split('. ')[0][:300]}; "
                         f"{hint}") from error
    finally:  # the check leaves no trace: neuron state reset, the Poisson stream back at its seed
        _reset(classifier.model)
        classifier.restart()
    if logits.shape[-1] < num_classes:
        raise UsageError(f"{what} returns {logits.shape[-1]} class scores but --data {args.data} has {num_classes} "
                         "classes: build it with one output per class")

