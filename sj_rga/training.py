"""The paper's training recipe: BPTT with the model's own surrogate (checkpoints: :mod:`sj_rga.checkpoints`).

Recipe (Bu et al., CVPR 2023): SGD, lr 0.1, momentum 0.9, weight decay 5e-4, cosine schedule over 200
epochs, batch 64, cross-entropy on the output averaged over T, BPTT through the neurons' surrogate (the
triangle ``PiecewiseQuadratic(alpha=1)`` by default). The network state is reset before every batch.

Inputs reach the model time-major: a static image batch ``[B, C, H, W]`` in pixel space [0, 1] is
repeated over T and normalised (``mean``/``std``, direct encoding) or drawn as Poisson spikes of the
pixel values; a frame batch ``[B, T, C, H, W]`` is transposed to ``[T, B, C, H, W]``
(:class:`~sj_rga.encoding.InputSpec`). The checkpoint records this input setting so that attacks feed the
model the same way.

Adversarial training (method §4; :mod:`sj_rga.adversarial`): with ``TrainConfig(adversarial=...)`` every step
first finds adversarial inputs with the model as it will be evaluated (an :class:`sj_rga.SNNClassifier`:
BatchNorm/Dropout in eval mode, any gradient it offers, the fast RGA path where the model allows), then
updates the parameters by BPTT on the adversarial loss with the model in training mode, so that BatchNorm
keeps learning its statistics.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from . import distributed
from .adversarial import AdversarialConfig, adversarial_examples, adversarial_loss, random_start
from .checkpoints import CHECKPOINT_FORMAT, classifier_from_meta, save_checkpoint
from .classifier import SNNClassifier
from .data import load_dataset
from .encoding import InputSpec
from .models import MODELS, build
from .progress import progress_bar
from .validation import check_count


@dataclass
class TrainConfig:
    """Optimisation settings; the defaults are the paper's recipe (SGD with momentum, cosine annealing of
    the learning rate over ``epochs``). ``max_batches`` caps the batches per epoch; ``device`` defaults to
    CUDA when available. ``adversarial`` (an :class:`~sj_rga.adversarial.AdversarialConfig`, or its fields
    as a dict as a checkpoint records them) chooses clean training (the default), FGSM-AT, PGD-AT or TRADES.
    """

    epochs: int = 200
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_batches: Optional[int] = None
    seed: int = 0
    progress: bool = True
    device: Optional[str] = None
    num_workers: int = 0
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)

    def __post_init__(self) -> None:
        if isinstance(self.adversarial, dict):
            self.adversarial = AdversarialConfig(**self.adversarial)
        if not isinstance(self.adversarial, AdversarialConfig):
            raise TypeError("adversarial must be an sj_rga.adversarial.AdversarialConfig (or a dict of its fields), "
                            f"got {type(self.adversarial).__name__}")


@dataclass
class TrainResult:
    """The trained model (in eval mode), its clean test accuracy in [0, 1] (None without a test set), and per
    epoch the mean training ``loss``, the ``accuracy`` on the clean training batches (clean training and
    TRADES) and the ``adversarial_accuracy`` on the inner maximisation's examples (adversarial training), all
    measured in training mode during the epoch."""

    model: nn.Module
    accuracy: Optional[float]
    history: list[dict[str, float]] = field(default_factory=list)


def _device(config: TrainConfig) -> torch.device:
    return torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def mean_output(model: nn.Module, images: torch.Tensor, inputs: InputSpec) -> torch.Tensor:
    """Reset the network, run it on the encoded batch, and average its ``[T, B, classes]`` output over T."""
    functional.reset_net(model)
    return model(inputs(images)).mean(0)


@torch.no_grad()
def accuracy(model: nn.Module, dataset: Dataset, inputs: InputSpec, batch_size: int = 64,
             device: Optional[Union[str, torch.device]] = None) -> float:
    """Clean top-1 accuracy in [0, 1] of ``model`` (put in eval mode) on ``dataset``. (For robust accuracy
    and attack success rates see :func:`sj_rga.evaluate`.) Inside a torch.distributed job each rank scores
    its share of the batches (:func:`sj_rga.distributed.owned_batches`) and every rank gets the total."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    correct = total = 0
    owned, _ = distributed.owned_batches(DataLoader(dataset, batch_size=batch_size), batch_size)
    for _, (images, labels) in owned:
        predictions = mean_output(model, images.to(device), inputs).argmax(1)
        correct += int((predictions == labels.to(device)).sum())
        total += len(labels)
    functional.reset_net(model)
    correct, total = distributed.all_sum([correct, total])
    if total == 0:
        raise ValueError("accuracy got an empty data set")
    return correct / total


def inner_classifier(model: nn.Module, inputs: InputSpec, gradient: str) -> SNNClassifier:
    """The :class:`~sj_rga.SNNClassifier` that adversarial training attacks: ``model`` fed as ``inputs`` says
    (T, encoding, normalisation; bounds [0, 1] for images, [0, ∞) for event frames), with ``gradient``."""
    return classifier_from_meta(model, {"input": asdict(inputs)}, gradient=gradient)


def _step_loss(model: nn.Module, inputs: InputSpec, images: torch.Tensor, labels: torch.Tensor,
               adversarial: AdversarialConfig, classifier: Optional[SNNClassifier],
               delta: Optional[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sample loss ``[B]`` of one training step, with ``model`` in training mode, and the number of
    correct predictions by kind (``accuracy``: clean inputs, ``adversarial_accuracy``: the inner
    maximisation's)."""
    if not adversarial.active:
        output = mean_output(model.train(), images, inputs)
        return F.cross_entropy(output, labels, reduction="none"), {"accuracy": (output.argmax(1) == labels).sum()}
    x_adv = adversarial_examples(classifier, adversarial, images, labels, delta) if len(labels) else images
    model.train()
    clean = mean_output(model, images, inputs) if adversarial.method == "trades" else None
    output = mean_output(model, x_adv, inputs)
    correct = {"adversarial_accuracy": (output.argmax(1) == labels).sum()}
    if clean is not None:
        correct["accuracy"] = (clean.argmax(1) == labels).sum()
    return adversarial_loss(adversarial, clean, output, labels), correct


#: The adversarial random starts come from a generator seeded with ``TrainConfig.seed + START_SEED_OFFSET``
#: (the data order from one seeded with ``TrainConfig.seed``).
START_SEED_OFFSET = 1_000_003


class GlobalBatches(Sampler[list[int]]):
    """The training order: each epoch (each ``iter``) a permutation of the ``size`` sample indices,
    ``torch.randperm(size, generator)`` from one generator seeded with ``seed`` and kept across epochs, cut into
    global batches of ``batch_size`` (the last one may be smaller), at most ``max_batches`` of them. In a
    distributed job (``world``) each rank yields its contiguous part of every global batch
    (:func:`sj_rga.distributed.shard`; empty when the batch has fewer samples than ranks)."""

    def __init__(self, size: int, batch_size: int, seed: int, max_batches: Optional[int] = None,
                 world: Optional[distributed.World] = None):
        self.size, self.batch_size = size, check_count(batch_size, "batch_size")
        self.world = world or distributed.World()
        batches = -(-size // batch_size)
        self.batches = batches if max_batches is None else min(batches, max_batches)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.batches

    def global_count(self, index: int) -> int:
        """The number of samples in global batch ``index``."""
        return min(self.batch_size, self.size - index * self.batch_size)

    def part(self, index: int) -> slice:
        """This rank's rows of global batch ``index``."""
        return distributed.shard(self.global_count(index), self.world.rank, self.world.size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=self.generator).tolist()
        for index in range(self.batches):
            yield order[index * self.batch_size:(index + 1) * self.batch_size][self.part(index)]


def _collate_or_empty(empty: Any) -> Callable[[list], Any]:
    """The default collate, with ``empty`` (a batch of no samples) for a rank's empty part of a global batch."""
    return lambda samples: default_collate(samples) if samples else empty


def train(model: nn.Module, train_set: Dataset, inputs: InputSpec, config: Optional[TrainConfig] = None,
          test_set: Optional[Dataset] = None) -> TrainResult:
    """Train ``model`` in place with BPTT on cross-entropy of its output averaged over T.

    ``model`` maps ``[T, B, ...]`` to ``[T, B, classes]``; its neurons' surrogate gives the backward. Batches
    come in the order of :class:`GlobalBatches`; the loss of a batch is the mean over its samples. With
    ``config.adversarial`` set, each step first finds adversarial inputs (:mod:`sj_rga.adversarial`; the model
    in eval mode as :class:`~sj_rga.SNNClassifier` runs it, input gradients only, from random starts drawn for
    the batch by a generator seeded with ``config.seed +`` :data:`START_SEED_OFFSET`), then updates the
    parameters on the adversarial loss by BPTT with the model in training mode. The clean test accuracy is
    measured once, after the last epoch. ``config`` defaults to the paper's recipe.

    Inside a torch.distributed job (``torchrun``; :mod:`sj_rga.distributed`) it trains with
    DistributedDataParallel: each rank takes a contiguous part of every global batch of ``batch_size``
    (random starts drawn for the whole global batch and sliced), its loss is its part's sum scaled by
    N / (global batch size) so that DDP's average of the gradients is the gradient of the global batch's mean,
    and BatchNorm in training mode uses the statistics of the whole global batch
    (:func:`~sj_rga.distributed.synchronised_batch_norm`; running statistics hence equal on all ranks). A
    step thus equals one process's step on the same global batch, up to float rounding. On CUDA each rank
    uses ``cuda:LOCAL_RANK``; the per-epoch history and the test accuracy are totals over all ranks.
    """
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    world = distributed.world()
    device = _device(config)
    if world.distributed and device.type == "cuda":
        device = world.device
    adversarial = config.adversarial
    classifier = inner_classifier(model, inputs, adversarial.gradient) if adversarial.active else None
    order = GlobalBatches(len(train_set), config.batch_size, config.seed, config.max_batches, world)
    steps = len(order)
    if steps < 1:
        raise ValueError("training needs at least one batch: the training set is empty or max_batches < 1")
    model.to(device)
    starts = torch.Generator().manual_seed(config.seed + START_SEED_OFFSET)
    empty = [part[:0] for part in default_collate([train_set[0]])] if world.distributed else None
    loader = DataLoader(train_set, batch_sampler=order, num_workers=config.num_workers,
                        collate_fn=_collate_or_empty(empty))
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world.distributed else model
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    history: list[dict[str, float]] = []
    with progress_bar(total=config.epochs * steps, disable=not (config.progress and world.main), desc="train",
                      unit="step") as bar, \
            distributed.synchronised_batch_norm(model, world):
        for epoch in range(config.epochs):
            sums: dict[str, float] = {"loss": 0.0}
            seen = 0
            for index, (images, labels) in enumerate(loader):
                images, labels = images.to(device), labels.to(device)
                delta = None
                if adversarial.active:
                    shape = (order.global_count(index), *images.shape[1:])
                    delta = random_start(adversarial, shape, starts)[order.part(index)]
                losses, correct = _step_loss(net, inputs, images, labels, adversarial, classifier, delta)
                optimizer.zero_grad(set_to_none=True)
                (losses.sum() * (world.size / order.global_count(index))).backward()
                optimizer.step()
                sums["loss"] += float(losses.detach().sum())
                for key, count in correct.items():
                    sums[key] = sums.get(key, 0.0) + float(count)
                seen += len(labels)
                bar.update()
                bar.set_postfix(epoch=epoch + 1, **{key: value / max(seen, 1) for key, value in sums.items()})
            schedule.step()
            *totals, seen = distributed.all_sum([*sums.values(), seen], world)
            history.append({"epoch": epoch + 1, **{key: value / seen for key, value in zip(sums, totals)}})
    del net
    functional.reset_net(model)
    test_accuracy = None if test_set is None else accuracy(model, test_set, inputs, config.batch_size, device)
    model.eval()
    return TrainResult(model, test_accuracy, history)


def train_model(model_name: Optional[str], dataset: str, root: Optional[Union[str, Path]] = None,
                download: bool = False, *, T: Optional[int] = None, encoding: Optional[str] = None,
                lam: float = 1.0, surrogate: str = "PiecewiseQuadratic",
                surrogate_kwargs: Optional[dict[str, Any]] = None, config: Optional[TrainConfig] = None,
                checkpoint: Optional[Union[str, Path]] = None,
                dataset_options: Optional[dict[str, Any]] = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build, train and (optionally) checkpoint a reference model on a named data set; returns
    ``(model, meta)`` as :func:`~sj_rga.checkpoints.load_checkpoint` would.

    ``model_name`` defaults to the data set's model (``digits_snn``, ``vgg11``, ``dvs_vgg``), ``T`` to its
    time steps (8; 10 frames for CIFAR10-DVS, where T is the frame count), ``encoding`` to ``"direct"``
    for images and ``"frames"`` for CIFAR10-DVS. Only the direct encoding is normalised by the data set's
    mean/std; Poisson spikes of the [0, 1] pixels and event counts are fed as they are.
    """
    options = dict(dataset_options or {})
    if T is not None and dataset == "cifar10dvs":
        options.setdefault("frames", T)
    train_set, test_set, info = load_dataset(dataset, root, download, **options)
    model_config: dict[str, Any] = {
        "name": model_name or info.default_model, "num_classes": info.num_classes, "lam": lam,
        "surrogate": surrogate, "surrogate_kwargs": surrogate_kwargs,
    }
    if model_config["name"] in MODELS:
        model_config.update(in_channels=info.in_channels, image_size=info.image_size)
    encoding_name = encoding or ("frames" if info.kind == "frames" else "direct")
    normalise = encoding_name == "direct"  # Poisson spikes and event counts go in as they are
    inputs = InputSpec(T or info.default_T, encoding_name, info.mean if normalise else None,
                       info.std if normalise else None)
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    result = train(build(**model_config), train_set, inputs, config, test_set)
    if checkpoint is not None and distributed.world().main:  # in a torchrun job, rank 0 alone writes
        save_checkpoint(checkpoint, result.model, model_config, inputs, dataset, result.accuracy, asdict(config))
    return result.model, {
        "format": CHECKPOINT_FORMAT, "model": model_config, "input": asdict(inputs), "dataset": dataset,
        "accuracy": result.accuracy, "train": asdict(config), "history": result.history,
    }


#: The fast digits preset: the paper's SGD recipe (lr 0.1, momentum 0.9, weight decay 5e-4, cosine)
#: shortened to 4 epochs of batch 32: 96-97 % test accuracy at T = 8 in about 2 s on 2 idle CPU cores.
DIGITS_PRESET = TrainConfig(epochs=4, batch_size=32, progress=False)


def train_digits(T: int = 8, lam: float = 1.0, seed: int = 0, progress: bool = False,
                 checkpoint: Optional[Union[str, Path]] = None) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``digits_snn`` on scikit-learn's digits with :data:`DIGITS_PRESET` (seconds on a CPU).

    Returns ``(model in eval mode, meta)``; ``meta["accuracy"]`` is the test accuracy in [0, 1].
    """
    config = TrainConfig(**{**asdict(DIGITS_PRESET), "seed": seed, "progress": progress})
    return train_model("digits_snn", "digits", T=T, lam=lam, config=config, checkpoint=checkpoint)
