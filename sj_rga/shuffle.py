"""The spike shuffle test (paper Table 1): is the model rate coded?

Inside every spiking layer, each neuron's output spike train is permuted over time, independently per
neuron and per sample; the spike count of every neuron is kept, its timing destroyed. A rate-coded
model keeps its accuracy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch

from . import distributed
from .classifier import SNNClassifier
from .mapping import neuron_layout, time_major
from .metrics import Data
from .rate_mode import spiking_neurons
from .seeding import derive_seed


def shuffle_time(spikes: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Permute ``[T, ...]`` along T independently for every other index."""
    keys = torch.rand(spikes.shape, generator=generator, device=spikes.device)
    return spikes.gather(0, keys.argsort(dim=0))


@dataclass(frozen=True)
class ShuffleReport:
    """Accuracies as fractions in [0, 1]."""

    clean_accuracy: float
    shuffled_accuracy: float
    samples: int

    def as_dict(self) -> dict:
        return asdict(self)


def shuffle_test(classifier: SNNClassifier, data: Data, batch_size: int = 256, seed: int = 0,
                 device=None) -> ShuffleReport:
    """Accuracy of ``classifier`` on ``data``, with and without shuffling every spiking layer's output.

    Batch ``i`` shuffles with a generator seeded by :func:`sj_rga.seeding.derive_seed` ``(seed, i)`` and
    starts with ``classifier.restart()``, so its result depends on the batch alone. Inside a torch.distributed
    job batch ``i`` is run by rank ``i mod N`` and every rank returns the report of the whole data.
    """
    if not isinstance(classifier, SNNClassifier):
        raise TypeError(f"shuffle_test takes an sj_rga.SNNClassifier, got {type(classifier).__name__}")
    neurons = spiking_neurons(classifier.model)
    generator: dict[torch.device, torch.Generator] = {}
    batch = {"seed": seed}

    def hook(module, inputs, spikes):
        merged = neuron_layout(module) == "merged"  # [T·B, ...], split by time_major below
        if not isinstance(spikes, torch.Tensor) or spikes.dim() < 2 or (spikes.shape[0] != classifier.T and not merged):
            shape = tuple(spikes.shape) if isinstance(spikes, torch.Tensor) else type(spikes).__name__
            raise ValueError(f"{type(module).__name__} gives spikes of shape {shape}, not time-major [T = "
                             f"{classifier.T}, B, ...]: the shuffle test permutes the time axis, which it cannot "
                             "find in a merged [T·B, ...] or batch-first layout inside the model")
        if spikes.device not in generator:
            generator[spikes.device] = torch.Generator(device=spikes.device).manual_seed(batch["seed"])
        steps = time_major(module, spikes, classifier.T)  # [T·B, ...] of a merged neuron as [T, B, ...]
        return shuffle_time(steps, generator[spikes.device]).reshape(spikes.shape)

    world = distributed.world()
    counts: dict[int, tuple[int, int, int]] = {}
    owned, _ = distributed.owned_batches(data, batch_size, world)
    for index, (x, y) in owned:
        if device is not None:
            x, y = x.to(device), y.to(device)
        generator.clear()
        batch["seed"] = derive_seed(seed, index)
        classifier.restart()
        with torch.no_grad():
            clean = int((classifier(x).argmax(-1) == y).sum())
            handles = [n.register_forward_hook(hook) for n in neurons]
            try:
                shuffled = int((classifier(x).argmax(-1) == y).sum())
            finally:
                for h in handles:
                    h.remove()
        counts[index] = (y.numel(), clean, shuffled)
    samples, clean, shuffled = (sum(c[i] for c in distributed.gather_batches(counts, world).values()) for i in range(3))
    if samples == 0:
        raise ValueError("data holds no samples")
    return ShuffleReport(clean / samples, shuffled / samples, samples)
