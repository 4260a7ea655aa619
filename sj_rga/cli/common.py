"""Arguments and loading that the ``sj-rga`` sub-commands share: ε, devices, checkpoints, test data."""
from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path
from typing import Optional

import torch

from .errors import UsageError


def parse_eps(text: str) -> float:
    """``'8/255'`` or ``'0.03'`` -> a float >= 0 (input units)."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"malformed ε {text!r}: write a number such as 0.03 or a fraction such as 8/255")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"ε must be a finite number >= 0, got {text!r}")
    return value


def parse_eps_list(text: str) -> list[float]:
    """Comma-separated ε values, each as :func:`parse_eps`."""
    return [parse_eps(part) for part in text.split(",") if part.strip()] or [parse_eps(text)]


def device_arg(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}: use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} is not available here (no CUDA GPU): use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def default_out(kind: str) -> Path:
    return Path("sj_rga_out") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def load_model(checkpoint: Optional[str], model_name: Optional[str], dataset: str, device: torch.device):
    """(model, meta) from a checkpoint, or a reference model trained on digits when none is given."""
    from ..training import load_checkpoint, train_digits

    if checkpoint:
        model, meta = load_checkpoint(checkpoint)
        if model_name and meta["model"]["name"] != model_name:
            raise UsageError(f"checkpoint {checkpoint} holds {meta['model']['name']}, not --model {model_name}")
        if meta["dataset"] != dataset:
            raise UsageError(f"checkpoint {checkpoint} was trained on {meta['dataset']}, not --data {dataset}")
        return model.to(device), meta
    if dataset != "digits" or model_name not in (None, "digits_snn"):
        raise UsageError(f"--checkpoint is needed for {model_name or 'the model'} on {dataset}: "
                         "train one with `sj-rga train` first")
    model, meta = train_digits()
    return model.to(device), meta


def test_data(args: argparse.Namespace, meta: dict):
    from ..data.registry import load_dataset

    options = {"frames": meta["input"]["T"]} if args.data == "cifar10dvs" else {}
    _, test_set, _ = load_dataset(args.data, args.data_root, **options)
    count = len(test_set) if args.limit is None else min(args.limit, len(test_set))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test_set, range(count)),
                                         batch_size=args.batch_size)
    return loader


def add_common(p: argparse.ArgumentParser, checkpoint: bool = True) -> None:
    if checkpoint:
        p.add_argument("--checkpoint", help="a checkpoint written by `sj-rga train` (default on digits: a quick model)")
    p.add_argument("--model", help="reference model name (digits_snn, vgg11, resnet17, dvs_vgg, or a SpikingJelly zoo name)")
    p.add_argument("--data", default="digits", choices=("digits", "cifar10", "cifar100", "cifar10dvs"))
    p.add_argument("--data-root", help="folder holding the data set (needed for cifar10, cifar100, cifar10dvs)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
