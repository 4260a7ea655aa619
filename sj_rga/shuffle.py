"""The spike shuffle test (paper Table 1): is the model rate coded?

Inside every spiking layer, each neuron's output spike train is permuted over time, independently per
neuron and per sample; the spike count of every neuron is kept, its timing destroyed. A rate-coded
model keeps its accuracy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Union

import torch

from . import engine
from .batching import Batch, Data
from .classifier import SNNClassifier
from .mapping import neuron_layout, time_major
from .rate_mode import spiking_neurons
from .seeding import SampleStreams

#: The part of a sample's shuffle stream: ``derive_seed(seed, sample index, SHUFFLE_PART)``.
SHUFFLE_PART = 3


def shuffle_time(spikes: torch.Tensor, generator: Union[None, torch.Generator, SampleStreams] = None) -> torch.Tensor:
    """Permute ``[T, B, ...]`` along T independently for every other index: by the ranks of uniform keys from
    one generator, or with :class:`~sj_rga.seeding.SampleStreams`, sample b's keys from its own stream."""
    if isinstance(generator, SampleStreams):
        keys = generator.rand((spikes.shape[0], *spikes.shape[2:]), spikes.dtype, spikes.device).transpose(0, 1)
    else:
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

    The batches run through the evaluation engine (:mod:`sj_rga.engine`; dealt in rounds over the ranks of a
    torch.distributed job, every rank returns the report of the whole data). Each batch starts with
    ``classifier.restart()``; the permutations of sample i come from its own stream,
    ``derive_seed(seed, i, SHUFFLE_PART)`` (:mod:`sj_rga.seeding`), layer after layer, so the result does not
    depend on the batch size or the number of ranks.
    """
    if not isinstance(classifier, SNNClassifier):
        raise TypeError(f"shuffle_test takes an sj_rga.SNNClassifier, got {type(classifier).__name__}")
    neurons = spiking_neurons(classifier.model)

    def work(batch: Batch) -> dict:
        x, y = (batch.x, batch.y) if device is None else (batch.x.to(device), batch.y.to(device))
        streams: dict[torch.device, SampleStreams] = {}

        def hook(module, inputs, spikes):
            merged = neuron_layout(module) == "merged"  # [T·B, ...], split by time_major below
            if not isinstance(spikes, torch.Tensor) or spikes.dim() < 2 or (spikes.shape[0] != classifier.T
                                                                             and not merged):
                shape = tuple(spikes.shape) if isinstance(spikes, torch.Tensor) else type(spikes).__name__
                raise ValueError(f"{type(module).__name__} gives spikes of shape {shape}, not time-major [T = "
                                 f"{classifier.T}, B, ...]: the shuffle test permutes the time axis, which it cannot "
                                 "find in a merged [T·B, ...] or batch-first layout inside the model")
            if spikes.device not in streams:
                streams[spikes.device] = SampleStreams(seed, len(y), (SHUFFLE_PART,), device=spikes.device)
            steps = time_major(module, spikes, classifier.T)  # [T·B, ...] of a merged neuron as [T, B, ...]
            return shuffle_time(steps, streams[spikes.device]).reshape(spikes.shape)

        classifier.restart()
        with torch.no_grad():
            clean = classifier(x).argmax(-1) == y
            handles = [n.register_forward_hook(hook) for n in neurons]
            try:
                shuffled = classifier(x).argmax(-1) == y
            finally:
                for h in handles:
                    h.remove()
        return {"clean_ok": clean.tolist(), "shuffled_ok": shuffled.tolist()}

    records = engine.run(data, work, batch_size, progress=False)
    samples = sum(len(r["clean_ok"]) for r in records)
    if samples == 0:
        raise ValueError("data holds no samples")
    clean, shuffled = (sum(v for r in records for v in r[key]) for key in ("clean_ok", "shuffled_ok"))
    return ShuffleReport(clean / samples, shuffled / samples, samples)
