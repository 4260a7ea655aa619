"""torch.distributed for sj-rga's long jobs (method §4): training, attacks, evaluation and the shuffle test
started by ``torchrun --nproc_per_node=N -m sj_rga ...``, one process per rank.

- :func:`session` joins the job's process group from torchrun's environment (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) with the backend the device needs: ``gloo`` on CPUs,
  ``nccl`` on CUDA GPUs (each rank on ``cuda:LOCAL_RANK``). Without torchrun it is a no-op: one process.
- Work is split by **global batch** (:mod:`sj_rga.batching` cuts the data as one process does): the evaluation
  engine deals the batches still to run in rounds (:func:`run_in_rounds`: in round k rank r takes the
  (k·N + r)-th), clean accuracy during training gives batch ``i`` to rank ``i mod N`` (:func:`owned_batches`),
  and the per-batch results are gathered in batch order on every rank (:func:`gather_batches`). Every random
  draw is seeded per sample (:mod:`sj_rga.seeding`), never by what the rank did before, so results equal a
  one-process run whatever N (also when the data size is not divisible by N).
- Training splits each global batch into N contiguous parts (:func:`shard`; a part may be empty) and
  :func:`synchronised_batch_norm` normalises with the statistics of the whole global batch, so that a
  DistributedDataParallel step equals one process's step on the global batch (see
  :func:`sj_rga.training.train`).
- Only rank 0 writes files and prints (:attr:`World.main`). A failing rank ends with its own error; torchrun
  then stops the other ranks (SIGTERM, which :func:`session` turns into ``SystemExit`` so that every
  ``finally`` runs and temporary files are removed) and reports the failure.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional, TypeVar, Union

import torch
import torch.distributed as dist
import torch.nn as nn

from .batching import Batch, Data, select_batches

Result = TypeVar("Result")


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` in ``[0, size)``; ``device`` carries the collectives
    (the CPU for gloo, ``cuda:LOCAL_RANK`` for nccl)."""

    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """True on rank 0, the one process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True in a job of more than one process."""
        return self.size > 1


def world() -> World:
    """The current :class:`World`: rank and size of the initialised default process group, else one process."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    return World(dist.get_rank(), dist.get_world_size(), device)


def launched_size() -> int:
    """The number of processes torchrun started for this job (``WORLD_SIZE``), 1 when not under torchrun."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(text)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be a whole number (set by torchrun), got {text!r}") from None
    if size < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {size}")
    return size


def backend_for(device: Union[str, torch.device]) -> str:
    """``nccl`` for CUDA devices (``cuda``, ``cuda:N``), ``gloo`` otherwise. A malformed name is left to the
    command's own device check, which names it."""
    return "nccl" if str(device).split(":")[0] == "cuda" else "gloo"


def local_device(device: Union[str, torch.device]) -> torch.device:
    """The device of this rank: ``cuda`` without an index becomes ``cuda:LOCAL_RANK`` under torchrun."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and launched_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def session(device: Union[str, torch.device] = "cpu") -> Iterator[World]:
    """Join the torchrun job's process group for the block, with the backend ``device`` needs (gloo on CPUs,
    nccl on GPUs, where each rank's current device becomes ``cuda:LOCAL_RANK``), and leave it at the end: after
    a barrier when the block ends normally (a rank that leaves while another still exchanges data can abort in
    gloo's teardown), at once after an error. SIGTERM, how torchrun stops the other ranks when one fails,
    raises ``SystemExit`` inside the block so that clean-up code runs. Outside torchrun, or with a process group
    already initialised (then it is left to its owner), it yields :func:`world`.
    """
    if launched_size() == 1 or (dist.is_available() and dist.is_initialized()):
        yield world()
        return
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed: run one process, without torchrun")
    backend = backend_for(device)
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device} asks for the nccl backend, but this machine has no CUDA GPU")
        torch.cuda.set_device(local_device(device))
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        dist.init_process_group(backend=backend)
        try:
            yield world()
            dist.barrier()  # every rank is past its last collective before any rank tears the group down
        finally:
            dist.destroy_process_group()
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------ splitting the work


def shard(count: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s contiguous part of ``count`` items split over ``size`` ranks: the first ``count mod size``
    parts have one item more; parts are empty when ``count < size``."""
    base, extra = divmod(count, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def owns(number: int, at: Optional[World] = None) -> bool:
    """Whether global batch ``number`` is this rank's (``number mod size == rank``)."""
    at = at or world()
    return number % at.size == at.rank


def owned_batches(data: Data, batch_size: int,
                  at: Optional[World] = None) -> tuple[Iterator[tuple[int, tuple[torch.Tensor, torch.Tensor]]],
                                                       Optional[int]]:
    """``(iterator of (global batch number, (x, y)) for this rank's batches, number of global batches or None)``:
    batch ``i`` is rank ``i mod N``'s (:func:`sj_rga.batching.select_batches`, which refuses an unseeded
    shuffling DataLoader in a job of several processes)."""
    at = at or world()
    selected, total = select_batches(data, batch_size, lambda number: owns(number, at), at.distributed)
    return ((batch.number, (batch.x, batch.y)) for batch in selected), total


# ------------------------------------------------------------------------------ collectives


def all_sum(values: Sequence[float], at: Optional[World] = None) -> list[float]:
    """The sums over all ranks of ``values`` (float64), on every rank."""
    at = at or world()
    if not at.distributed:
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=at.device)
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def gather_batches(results: dict[int, Result], at: Optional[World] = None) -> dict[int, Result]:
    """Every rank's ``{global batch index: result}`` merged on every rank, in batch order (results must be
    picklable; tensors are moved to the CPU first)."""
    at = at or world()
    if not at.distributed:
        return dict(sorted(results.items()))
    gathered: list[Optional[dict[int, Result]]] = [None] * at.size
    dist.all_gather_object(gathered, _to_cpu(results))
    merged: dict[int, Result] = {}
    for part in gathered:
        merged.update(part or {})
    return dict(sorted(merged.items()))


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_to_cpu(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _to_cpu(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    return value


def run_in_rounds(data: Data, todo: Sequence[int], work: Callable[[Batch], Result],
                  finished: Optional[Callable[[int, Result], None]] = None, batch_size: int = 256,
                  at: Optional[World] = None) -> dict[int, Result]:
    """``work(batch)`` (a :class:`~sj_rga.batching.Batch`) for the global batches of ``data`` whose number is in
    ``todo``, dealt in rounds over the ranks: in round ``k`` rank ``r`` works on ``todo[k·N + r]``, then the
    round's results are gathered on every rank and rank 0 calls ``finished(number, result)`` for each, in
    order (e.g. to save the batch's file: an interrupted job loses at most one round). Returns
    ``{number: result}`` for all of ``todo``, on every rank. ``data`` and ``batch_size`` as in
    :func:`sj_rga.batching.select_batches`."""
    at = at or world()
    todo = sorted(todo)
    mine = set(todo[at.rank::at.size])
    rounds = -(-len(todo) // at.size)
    results: dict[int, Result] = {}

    def gather(part: dict[int, Result]) -> None:
        done = gather_batches(part, at)
        if finished is not None and at.main:
            for number, result in done.items():
                finished(number, result)
        results.update(done)

    selected, _ = select_batches(data, batch_size, mine.__contains__, at.distributed)
    taken = 0
    for batch in selected:
        gather({batch.number: work(batch)})
        taken += 1
    if taken != len(mine):
        raise ValueError(f"the data ended after {taken} of this rank's {len(mine)} batches: it holds fewer batches "
                         "than the run expects")
    for _ in range(rounds - taken):  # this rank has no batch in the last round: it still joins the gather
        gather({})
    return results


def broadcast(value: Result, at: Optional[World] = None) -> Result:
    """Rank 0's ``value`` on every rank (picklable; ``value`` itself in one process)."""
    at = at or world()
    if not at.distributed:
        return value
    box = [value if at.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ------------------------------------------------------------------------------ BatchNorm over the global batch

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_MISSING = object()


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks with a backward: the gradient of a sum all ranks share is the sum of their gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total


def _synced_norm(norm: nn.modules.batchnorm._BatchNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward for ``norm`` that, in training mode, normalises with the mean and (biased) variance of the
    global batch, gathered by differentiable all-reduces, and updates the running statistics with them
    (unbiased variance) as torch's BatchNorm does on one process; in eval mode it is the stock forward."""
    stock = type(norm).forward.__get__(norm)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not norm.training:
            return stock(x)
        multi_step = getattr(norm, "step_mode", "s") == "m"
        flat = x.flatten(0, 1) if multi_step else x
        dims = [0, *range(2, flat.dim())]
        shape = [1, -1] + [1] * (flat.dim() - 2)
        local = torch.tensor([flat.numel() // max(flat.shape[1], 1)], dtype=flat.dtype, device=flat.device)
        totals = _AllReduceSum.apply(torch.cat([flat.sum(dims), local]))
        count = totals[-1].detach()
        if float(count) <= 1:
            raise ValueError(f"BatchNorm in training mode needs more than 1 value per channel over the global batch, "
                             f"got {int(count)}")
        mean = totals[:-1] / count
        centred = flat - mean.reshape(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / count
        out = centred * torch.rsqrt(var + norm.eps).reshape(shape)
        if norm.affine:
            out = out * norm.weight.reshape(shape) + norm.bias.reshape(shape)
        if norm.track_running_stats:
            with torch.no_grad():
                norm.num_batches_tracked.add_(1)
                momentum = 1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum
                unbiased = var * (count / (count - 1))
                norm.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                norm.running_var.mul_(1 - momentum).add_(unbiased.detach(), alpha=momentum)
        return out.reshape(x.shape) if multi_step else out

    return forward


@contextlib.contextmanager
def synchronised_batch_norm(model: nn.Module, at: Optional[World] = None) -> Iterator[nn.Module]:
    """Inside the block, every BatchNorm of ``model`` in training mode (torch's and SpikingJelly's multi-step
    ones, whose ``[T, B, C, ...]`` input is normalised over time and batch as one) uses the statistics of the
    global batch over all ranks: SyncBatchNorm's semantics, on CPUs (gloo) as on GPUs, without changing the
    modules' classes (so the fast RGA path still recognises them). Eval mode is untouched. In one process it
    changes nothing. The stock forwards are back on exit, also after an error."""
    at = at or world()
    if not at.distributed:
        yield model
        return
    norms = [m for m in model.modules() if isinstance(m, _NORMS)]
    saved = [(norm, norm.__dict__.get("forward", _MISSING)) for norm in norms]
    try:
        for norm in norms:
            norm.forward = _synced_norm(norm)
        yield model
    finally:
        for norm, previous in saved:
            if previous is _MISSING:
                norm.__dict__.pop("forward", None)
            else:
                norm.forward = previous
