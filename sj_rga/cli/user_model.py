"""A user's own SpikingJelly model from the shell: ``--model pkg.module:factory`` with no sj-rga checkpoint.

``--model-args '{"num_classes": 10}'`` are the factory's keyword arguments, ``--weights w.pth`` a
state_dict (or a checkpoint dict holding one under ``state_dict``), and ``-T``, ``--encoding``,
``--mean``/``--std`` and ``--bounds`` say how the model is fed. Each mistake (an import that fails, a
factory that does not return a module, weights that do not fit) is one line and exit status 2.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn

from .errors import UsageError


def module_not_found_hint(module_name: str, error: BaseException) -> str:
    """For a factory module that cannot be found: where Python looked (the current folder, PYTHONPATH)."""
    if not isinstance(error, ModuleNotFoundError) or not (error.name or "").split(".")[0] == \
            module_name.split(".")[0]:
        return ""
    path = os.environ.get("PYTHONPATH")
    searched = f"the current folder {os.getcwd()}" + (f" and PYTHONPATH={path}" if path else " (PYTHONPATH unset)")
    return (f"; Python looked in {searched} and the installed packages: run from the folder holding "
            f"{module_name.split('.')[0]}, or add that folder to PYTHONPATH")


def is_factory(name: Optional[str]) -> bool:
    """True for ``pkg.module:factory`` (a user's model), False for a reference model name."""
    return bool(name) and ":" in name


def parse_bound(text: str) -> Optional[float]:
    """A bound: a number, or ``none`` for no bound on that side."""
    if text.strip().lower() in ("none", "inf", "-inf"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed bound {text!r}: write a number such as 0 or 1, or none") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"a bound must be finite or none, got {text!r}")
    return value


def _positive_std(text: str) -> float:
    """A standard deviation: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"a standard deviation must be a finite number > 0, got {text}")
    return value


def add_user_model_options(parser: argparse.ArgumentParser) -> None:
    """The options that go with ``--model pkg.module:factory`` (``-T`` and ``--encoding`` are the
    sub-command's own)."""
    group = parser.add_argument_group("your own model (--model pkg.module:factory, no checkpoint)")
    group.add_argument("--model-args", metavar="JSON", help="keyword arguments of the factory, e.g. "
                       "'{\"num_classes\": 10}'")
    group.add_argument("--weights", metavar="FILE", help="a state_dict saved with torch.save (or a dict holding "
                       "one under 'state_dict')")
    group.add_argument("--mean", type=float, nargs="+", help="per-channel mean the model normalises with")
    group.add_argument("--std", type=_positive_std, nargs="+", help="per-channel std the model normalises with")
    group.add_argument("--bounds", type=parse_bound, nargs=2, metavar=("LOW", "HIGH"),
                       help="valid input range, 'none' for no bound (default 0 1; frames: 0 none)")
    group.add_argument("--clock-driven", action="store_true",
                       help="the model imports spikingjelly.clock_driven (SpikingJelly 0.0.0.0.14 code): on 2.x map it "
                       "to activation_based first (sj_rga.compat.enable_clock_driven)")
    group.add_argument("--input-layout", choices=("TB", "BT", "B"),
                       help="what the model takes: TB time-major [T, B, ...] (default), BT batch-first [B, T, ...], "
                       "B one [B, ...] batch that the model repeats over its own T steps (direct encoding only)")
    group.add_argument("--model-output", type=parse_output, metavar="INDEX|KEY",
                       help="which part of a tuple/list (an index) or dict (a key) output holds the logits, e.g. 0 "
                       "for a model returning (logits, hook)")


def parse_output(text: str) -> Any:
    """``--model-output``: an integer index, or a dict key."""
    try:
        return int(text)
    except ValueError:
        return text


def file_digest(path: str) -> str:
    """SHA-256 of a file (to tell two files at the same path apart)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _factory(spec: str):
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise UsageError(f"--model {spec!r}: write pkg.module:factory, e.g. my_models.snn:build")
    if os.getcwd() not in sys.path:  # as `python -m` does, so a module in the current folder imports
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # an import runs the user's code: any error is theirs to see
        raise UsageError(f"--model {spec}: cannot import {module_name} ({type(err).__name__}: {err})"
                         f"{module_not_found_hint(module_name, err)}") from err
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise UsageError(f"--model {spec}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise UsageError(f"--model {spec}: {attribute} is a {type(target).__name__}, not a callable that builds "
                         "a model")
    return target


def _model_args(text: Optional[str]) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise UsageError(f"--model-args is not JSON ({err}): write e.g. '{{\"num_classes\": 10}}'") from err
    if not isinstance(value, dict):
        raise UsageError(f"--model-args must be a JSON object of keyword arguments, got {type(value).__name__}")
    return value


def _load_weights(model: nn.Module, path: str) -> None:
    if not Path(path).is_file():
        raise UsageError(f"--weights {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for unreadable or unsafe files
        raise UsageError(f"--weights {path} is not a readable state_dict ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]})") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"--weights {path} holds a {type(state).__name__}, not a state_dict of tensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        reason = " ".join(str(err).split())
        raise UsageError(f"--weights {path} do not fit the model: {reason[:300]}") from err


def check_user_options(args: argparse.Namespace) -> None:
    """Refuse user-model options without ``--model pkg.module:factory`` and a checkpoint beside it."""
    given = [f"--{name.replace('_', '-')}" for name in ("model_args", "weights", "mean", "std", "bounds",
                                                         "input_layout", "model_output")
             if getattr(args, name, None) is not None]
    factory = is_factory(getattr(args, "model", None))
    if factory and getattr(args, "checkpoint", None):
        raise UsageError("give either --checkpoint or --model pkg.module:factory, not both")
    if given and not factory:
        raise UsageError(f"{', '.join(given)} go with --model pkg.module:factory (your own model); a checkpoint "
                         "or reference model brings its own")
    if factory and getattr(args, "T", None) is None:
        raise UsageError(f"--model {args.model} needs -T (the time steps the model runs for)")


def load_user_model(args: argparse.Namespace, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """(model, meta) for ``--model pkg.module:factory``; ``meta`` shaped like a checkpoint's."""
    check_user_options(args)
    kwargs = _model_args(args.model_args)
    if getattr(args, "clock_driven", False):
        from ..compat import enable_clock_driven

        enable_clock_driven()
    factory = _factory(args.model)
    try:
        model = factory(**kwargs)
    except Exception as err:  # the user's factory: report what it raised
        raise UsageError(f"--model {args.model}: the factory raised {type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model {args.model} returned a {type(model).__name__}, not a torch.nn.Module")
    if args.weights:
        _load_weights(model, args.weights)
    encoding = getattr(args, "encoding", None) or "direct"
    bounds = args.bounds if args.bounds is not None else [0.0, None if encoding == "frames" else 1.0]
    meta = {
        "model": {"name": args.model, "factory": args.model, "args": kwargs, "weights": args.weights,
                  "weights_sha256": file_digest(args.weights) if args.weights else None},
        "input": {"T": args.T, "encoding": encoding, "mean": args.mean, "std": args.std, "bounds": list(bounds),
                  "input_layout": args.input_layout or "TB", "output": args.model_output},
        "dataset": args.data,
    }
    return model.eval().to(device), meta
