"""What the ``sj-rga`` sub-commands share: argument checks, output paths, devices, checkpoints, data.

Every argument is checked when the command line is parsed or before any work starts (no training,
attack or data loading runs on a bad argument), and the error names the option the user typed.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import torch

from .errors import UsageError, one_line, user_mistakes

# ---------------------------------------------------------------------------------------------- values


def parse_eps(text: str) -> float:
    """``'8/255'`` or ``'0.03'`` -> a float >= 0 (input units)."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"malformed ε {text!r}: write a number such as 0.03 or a fraction such as 8/255") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"ε must be a finite number >= 0, got {text!r}")
    return value


def parse_eps_list(text: str) -> list[float]:
    """Comma-separated ε values, each as :func:`parse_eps`."""
    return [parse_eps(part) for part in text.split(",") if part.strip()] or [parse_eps(text)]


def parse_step(text: str) -> float:
    """A step size: as :func:`parse_eps`, but > 0."""
    value = parse_eps(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"the step size must be > 0, got {text!r}")
    return value


def int_at_least(minimum: int, maximum: Optional[int] = None) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = int_at_least(1)
seed_int = int_at_least(0, 2**63 - 1)


def positive_float(text: str) -> float:
    """An argparse ``type`` for finite numbers > 0 (learning rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def leak(text: str) -> float:
    """The leak λ of the paper's neuron: in (0, 1], 1 for IF."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"the leak λ must lie in (0, 1] (1 = IF), got {text}")
    return value


# ------------------------------------------------------------------------------------------ output paths


def _writable_ancestor(path: Path, shown: str) -> None:
    """Raise ArgumentTypeError unless ``path`` (a folder, made if missing) could be created and written."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{shown} lies under {existing}, which is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".sj-rga-write-test-", dir=existing)
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot write {shown}: {existing} is not writable ({error.strerror or one_line(error)})") from None
    os.close(handle)
    os.unlink(probe)


def output_dir(text: str) -> Path:
    """An argparse ``type`` for an output folder: missing (made later) or a folder, and writable."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder: give a new or existing folder")
    _writable_ancestor(path, text)
    return path


def output_file(text: str) -> Path:
    """An argparse ``type`` for an output file: not a folder, in a folder that can be made and written."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give a file name such as {path / 'model.pt'}")
    _writable_ancestor(path.parent, text)
    return path


def default_out(kind: str) -> str:
    """``sj_rga_out/<kind>-<time>``: where results go without ``--out``."""
    return str(Path("sj_rga_out") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}")


def add_output_dir(parser: argparse.ArgumentParser, kind: str) -> None:
    """``--out`` for a results folder, checked (and its default too) before any work."""
    parser.add_argument("--out", type=output_dir, default=default_out(kind),
                        help=f"output folder (default sj_rga_out/{kind}-<time>)")


# --------------------------------------------------------------------------------------- devices, data


def device_arg(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown --device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name} is not available here (no CUDA GPU): use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def dataset_info(name: str):
    """The :class:`sj_rga.data.DatasetInfo` of ``--data name``."""
    from ..data.registry import DATASETS

    return DATASETS[name]


def check_eps_in_range(option: str, values: list[float], data: str, norm: str = "Linf",
                       bounds: Optional[Sequence[Optional[float]]] = None) -> None:
    """ε (or α) cannot exceed the largest distance between two inputs: the range ``high - low`` of the bounds
    (images: [0, 1]) in L∞, ``sqrt(n)·range`` in L2 for inputs of ``n`` values (an 8×8 digit: 8). Event frames
    (no upper bound) take any ε."""
    info = dataset_info(data)
    low, high = bounds if bounds is not None else (0.0, 1.0)
    if info.kind == "frames" or low is None or high is None:
        return
    span = high - low
    features = info.in_channels * info.image_size ** 2
    limit = span * math.sqrt(features) if norm == "L2" else span
    too_large = [v for v in values if v > limit * (1 + 1e-9)]
    if not too_large:
        return
    inputs = f"{data} images are in [{low:g}, {high:g}] (pixel space)"
    if norm == "L2":
        raise UsageError(f"{option} {too_large[0]:g} is larger than any L2 distance between two inputs: {inputs}, "
                         f"{info.in_channels}×{info.image_size}×{info.image_size} = {features} values, at most "
                         f"sqrt({features})·{span:g} = {limit:.4g} apart, so ε = {limit:.4g} already allows any "
                         "image")
    raise UsageError(f"{option} {too_large[0]:g} is larger than the input range: {inputs}, so ε = {span:g} already "
                     "allows any image in L∞; write e.g. 8/255 or 0.03")


def check_encoding(encoding: Optional[str], data: str) -> None:
    """``--encoding frames`` only for event data, ``direct``/``poisson`` only for images."""
    if encoding is None:
        return
    frames = dataset_info(data).kind == "frames"
    if frames != (encoding == "frames"):
        allowed = "frames" if frames else "direct or poisson"
        raise UsageError(f"--encoding {encoding} does not fit --data {data}: use {allowed}")


def check_model_fits(name: str, data: str) -> None:
    """``--model name`` exists and takes ``--data``'s samples (one tiny forward on CPU, before training)."""
    from .._compat import reset_net
    from ..models import MODELS, build

    info = dataset_info(data)
    shape = dict(in_channels=info.in_channels, image_size=info.image_size) if name in MODELS else {}
    with user_mistakes(f"--model {name}", ValueError):
        model = build(name, info.num_classes, **shape)
    sample = torch.zeros(1, 1, info.in_channels, info.image_size, info.image_size)
    try:
        with torch.no_grad():
            model.eval()(sample)
    except RuntimeError as error:
        raise UsageError(f"--model {name} cannot take {data} samples ({info.in_channels}×{info.image_size}×"
                         f"{info.image_size}): {one_line(error).split('. ')[0]}") from error
    finally:
        reset_net(model)


def check_data_root(data: str, root: Optional[str], download: bool = False) -> None:
    """The data set is where ``--data-root`` says (or will be downloaded), without loading it."""
    from ..data.registry import check_root

    with user_mistakes(f"--data {data}", ValueError, FileNotFoundError, ImportError):
        check_root(data, root, download)


def _checkpoint_message(path: str, error: Exception) -> str:
    if isinstance(error, FileNotFoundError):
        return f"--checkpoint {path}: no such file"
    cause = error.__cause__
    message = one_line(error)
    if cause is not None:  # torch's own explanation (e.g. a paragraph about weights_only) stays out
        message = message.replace(one_line(cause), "").replace(" ()", "").rstrip(": ")
    message = message.replace(f"checkpoint {path}", "it").replace(str(path), "it")
    message = re.sub(r" \(written by [^)]*\)", "", message)
    return f"cannot load checkpoint {path}: {message}; expected a file written by `sj-rga train`"


def load_model(checkpoint: Optional[str], model_name: Optional[str], dataset: str, device: torch.device,
               options: Optional[argparse.Namespace] = None):
    """(model, meta) from a checkpoint, the user's ``--model pkg.module:factory`` (with ``options``, the
    parsed arguments), or a reference model trained on digits when none is given."""
    from ..checkpoints import load_checkpoint
    from ..training import train_digits
    from .checks import check_model_name
    from .user_model import check_user_options, is_factory, load_user_model

    check_model_name(model_name)
    if options is not None:
        check_user_options(options)
        if is_factory(model_name):
            return load_user_model(options, device)
    if checkpoint:
        with warnings.catch_warnings(record=True) as caught:  # torch warns about files it then refuses
            warnings.simplefilter("always")
            try:
                model, meta = load_checkpoint(checkpoint)
            except (FileNotFoundError, ValueError) as error:
                raise UsageError(_checkpoint_message(checkpoint, error)) from error
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
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


def test_data(args: argparse.Namespace, frames: Optional[int] = None):
    """The test split of ``--data`` (the first ``--limit`` samples) in batches of ``--batch-size``;
    ``frames``: event frames per sample (CIFAR10-DVS)."""
    from ..data.registry import load_dataset

    options = {"frames": frames} if dataset_info(args.data).kind == "frames" else {}
    with user_mistakes(f"--data {args.data}", ValueError, FileNotFoundError, ImportError):
        _, test_set, _ = load_dataset(args.data, args.data_root, **options)
    count = len(test_set) if args.limit is None else min(args.limit, len(test_set))
    return torch.utils.data.DataLoader(torch.utils.data.Subset(test_set, range(count)), batch_size=args.batch_size)


def add_threads(p: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's CPU threads (see :mod:`sj_rga.threads` for the default)."""
    p.add_argument("--threads", type=positive_int,
                   help="CPU threads for torch (default: $OMP_NUM_THREADS if set, else the cores the machine's "
                        "load leaves idle, at most the physical cores; recorded in the results)")


def configure_threads(args: argparse.Namespace, prog: str) -> None:
    """Set torch's threads from ``--threads`` (or the machine's default) and keep what was set in
    ``args.threads_record`` for the results, and in ``args.busy_note`` the line :func:`work_starts` prints."""
    from ..threads import busy_note, default_threads, set_threads, threads_record

    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    threads = getattr(args, "threads", None) or default_threads(processes)
    set_threads(threads)
    note = busy_note(threads)
    args.busy_note = note and f"{prog}: {note}"
    args.threads_record = {**threads_record(), "processes_on_this_machine": processes}


def work_starts(args: argparse.Namespace) -> None:
    """Called by each sub-command once its arguments are checked: the busy machine's note, on rank 0 only (an
    error found before stays the only line)."""
    from ..distributed import world

    if getattr(args, "busy_note", None) and world().main:
        print(args.busy_note, file=sys.stderr, flush=True)


def chance_warnings(args: argparse.Namespace, accuracies: Sequence[tuple[Optional[float], int]]) -> list[str]:
    """Warnings (printed on stderr, and returned for results.json) for (clean accuracy, samples) pairs at chance
    on ``--data``'s classes (:func:`sj_rga.report.chance_warning`)."""
    from ..report import chance_warning

    classes = dataset_info(args.data).num_classes
    warnings_ = list(dict.fromkeys(w for a, n in accuracies if (w := chance_warning(a, classes, n))))
    for warning in warnings_:
        print(f"sj-rga {args.command}: warning: {warning}", file=sys.stderr, flush=True)
    return warnings_


def results_header(args: argparse.Namespace, device: Optional[torch.device], seeds: dict, batch_size: Optional[int],
                   gradients: Sequence[str] = ()) -> dict:
    """The header of a sub-command's results (:func:`sj_rga.report.run_header`), with the command line and the
    threads set when it started."""
    from ..report import run_header

    return run_header(getattr(args, "command_line", None), device, seeds=seeds, batch_size=batch_size,
                      gradients=gradients, threads=getattr(args, "threads_record", None))


def add_common(p: argparse.ArgumentParser, checkpoint: bool = True, user_model: bool = False) -> None:
    if checkpoint:
        p.add_argument("--checkpoint", help="a checkpoint written by `sj-rga train` (default on digits: a quick model)")
    p.add_argument("--model",
                   help="reference model name (digits_snn, vgg11, resnet17, dvs_vgg, or a SpikingJelly zoo name)"
                   + ("; or your own model as pkg.module:factory" if user_model else ""))
    if user_model:
        from .user_model import add_user_model_options

        add_user_model_options(p)
    p.add_argument("--data", default="digits", choices=("digits", "cifar10", "cifar100", "cifar10dvs"))
    p.add_argument("--data-root", help="folder holding the data set (needed for cifar10, cifar100, cifar10dvs)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_threads(p)
