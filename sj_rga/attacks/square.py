"""Square (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020): a score-based random search, no gradient.

It asks the classifier for scores only, so a masked or useless surrogate gradient cannot stop it: the
gradient-free member of the robustness suites (:mod:`.autoattack`) and the reference of the
gradient-masking checks (:mod:`sj_rga.masking`). Inputs and ε are in pixel space (method §3).
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from ..classifier import SNNClassifier
from ..seeding import SampleStreams
from ..validation import check_count, check_eps, check_seed
from .ball import TINY, check_norm, l2_norm
from .base import Attack
from .losses import cross_entropy

SQUARE_LOSSES = ("margin", "ce")
#: Halvings of ``p``: ``p = p_init / 2^k`` once the iteration, rescaled to a budget of 10 000 queries, passes
#: the k-th of these points (Andriushchenko et al.'s schedule, as AutoAttack runs it).
P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
#: Iterations whose random numbers are drawn at once per sample (memory against generator calls).
CHUNK = 100


def p_schedule(iteration: int, queries: int, p_init: float) -> float:
    """The share of the image a square covers at ``iteration`` (0-based) of a ``queries`` budget:
    ``p_init / 2^k``, k = how many of :data:`P_HALVINGS` lie strictly below ``⌊iteration / queries · 10000⌋``."""
    rescaled = int(iteration / queries * 10000)
    return p_init / 2 ** sum(rescaled > point for point in P_HALVINGS)


def square_side(p: float, features: int, channels: int, height: int, width: int, norm: str) -> int:
    """The side of the square: ``round(√(p · features / channels))``, at least 1 (L∞) or at least 3 and odd
    (L2), at most the image's smaller side."""
    side = int(round(math.sqrt(p * features / channels)))
    if norm == "L2":
        side = max(side, 3)
        side += 1 - side % 2
    return max(1, min(side, height, width))


def pseudo_gaussian(side: int) -> torch.Tensor:
    """The L2 attack's ``side × side`` pattern of unit L2 norm: the top half a sum of concentric rectangles
    weighted 1/(k+1)² (k = 0, 1, ... outwards from the centre), the bottom half the same with a minus sign."""

    def rectangles(rows: int, cols: int) -> torch.Tensor:
        pattern = torch.zeros(rows, cols)
        centre_r, centre_c = rows // 2, cols // 2
        for k in range(max(rows // 2 + 1, cols // 2 + 1)):
            pattern[max(centre_r - k, 0):min(centre_r - k + 2 * k + 1, rows),
                    max(centre_c - k, 0):min(centre_c - k + 2 * k + 1, cols)] += 1.0 / (k + 1) ** 2
        return pattern / pattern.norm().clamp_min(TINY)

    pattern = torch.zeros(side, side)
    if side // 2:
        pattern[:side // 2] = rectangles(side // 2, side)
    pattern[side // 2:] = -rectangles(side - side // 2, side)
    return pattern / pattern.norm()


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``z_y − max_{i≠y} z_i`` per sample: negative exactly when the sample is misclassified."""
    true = logits.gather(1, labels[:, None])[:, 0]
    return true - logits.scatter(1, labels[:, None], float("-inf")).amax(1)


def _window(start: torch.Tensor, side: int, length: int) -> torch.Tensor:
    """``[B, length]``: True on ``start_b … start_b + side − 1``."""
    positions = torch.arange(length, device=start.device)
    return (positions >= start[:, None]) & (positions < start[:, None] + side)


def _as_images(x: torch.Tensor) -> torch.Tensor:
    """``[B, C', H, W]`` view of a batch: the last two axes are the image, every axis between the batch and
    them a channel (a ``[B, D]`` batch is one row of D pixels)."""
    if x.dim() == 2:
        return x.reshape(x.shape[0], 1, 1, x.shape[1])
    return x.reshape(x.shape[0], -1, x.shape[-2], x.shape[-1])


class Square(Attack):
    r"""Square attack of Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient
    black-box adversarial attack via random search" (ECCV 2020); pixel space, L∞ or L2, untargeted or
    targeted. It uses the classifier's scores only, never a gradient.

    Loss ``L`` (minimised): ``'margin'``: ``z_y − max_{i≠y} z_i`` (targeted: ``max_{i≠t} z_i − z_t``);
    ``'ce'``: ``−CE(z, y)`` (targeted: ``CE(z, t)``). Per sample, from an initial point x̂ (L∞: vertical
    stripes ``x + ε·σ`` with a random sign σ per channel and column; L2: a grid of ±pseudo-Gaussian
    blocks of side ⌊H/5⌋ rescaled to ‖δ‖₂ = ε), iteration i = 0 … ``queries`` − 1 draws a square of side
    ``s = round(√(p_i · C·H·W / C))`` (≥ 1; L2: ≥ 3 and odd) at a uniform position, with
    ``p_i = p_init / 2^k`` halving when ``⌊i / queries · 10000⌋`` passes 10, 50, 200, 500, 1000, 2000,
    4000, 6000 and 8000:

    - L∞: the square is set to ``x + ε·σ_c`` (a random sign per channel), the rest of x̂ kept;
    - L2: a second square W₂ is emptied and the first, W₁, gets per channel
      ``(σ_c·η + δ_{W₁}/‖δ_{W₁}‖₂)`` rescaled to norm ``√(max(ε² − ‖δ‖₂², 0)/C + ‖δ_{W₁∪W₂}‖₂²)`` (η the
      pseudo-Gaussian pattern, transposed with probability ½); then δ is rescaled to ‖δ‖₂ = ε;

    the candidate is clipped to the bounds and replaces x̂ when its loss is strictly lower. A sample stops
    at its first success (misclassified; targeted: classified as the target). For Poisson input each
    score is the mean of the classifier's ``eot`` spike samples.

    Every random number a sample uses comes from its own stream (:class:`sj_rga.seeding.SampleStreams`,
    ``seed`` and the sample's index), so its result does not depend on the batch it is attacked in.
    Returned per sample: its first adversarial point, else the point of lowest loss; every one inside the
    ε-ball around x and the classifier's bounds. ``1 + queries`` score evaluations at most per sample
    (:attr:`last_queries` counts them; :attr:`last_broken` says which samples were broken).

    Args:
        classifier: the :class:`sj_rga.SNNClassifier` to attack (its estimator is never used).
        eps: radius of the ball, in input units (default 8/255).
        norm: ``'Linf'`` (default) or ``'L2'``.
        queries: iterations, one score evaluation each (default 5000, AutoAttack's).
        p_init: initial share of the image a square covers (default 0.8, AutoAttack's).
        loss: ``'margin'`` (default) or ``'ce'``.
        targeted: ``y`` holds target classes instead of true labels (default False).
        seed: seed of the per-sample streams (default 0).

    Shape: inputs ``[B, C, H, W]`` (any ``[B, ..., H, W]``: the axes before the last two count as
    channels; ``[B, D]`` is one row of D pixels), labels ``[B]``; returns the inputs' shape.

    Example::

        >>> atk = sj_rga.attacks.Square(clf, eps=8 / 255, norm="Linf", queries=5000)
        >>> x_adv = atk(images, labels)
    """

    def __init__(self, classifier: SNNClassifier, eps: float = 8 / 255, norm: str = "Linf", queries: int = 5000,
                 p_init: float = 0.8, loss: str = "margin", targeted: bool = False, seed: int = 0):
        super().__init__(classifier, targeted)
        self.eps, self.norm = check_eps(eps), check_norm(norm)
        self.queries = check_count(queries, "queries")
        if isinstance(p_init, bool) or not isinstance(p_init, (int, float)) or not 0 < p_init <= 1:
            raise ValueError(f"p_init (the share of the image the first squares cover) must lie in (0, 1], "
                             f"got {p_init!r}")
        if loss not in SQUARE_LOSSES:
            raise ValueError(f"loss must be one of {SQUARE_LOSSES}, got {loss!r}")
        self.p_init, self.loss_name, self.seed = float(p_init), loss, check_seed(seed)
        #: Per sample of the last call: True where the attack succeeded.
        self.last_broken: Optional[torch.Tensor] = None
        #: Per sample of the last call: score evaluations spent (the initial point included).
        self.last_queries: Optional[torch.Tensor] = None

    # -- scores -------------------------------------------------------------------------------------
    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]``, the mean over the classifier's ``eot`` spike samples for Poisson input."""
        repeats = self.classifier.eot if self.classifier.encoding == "poisson" else 1
        with torch.no_grad():
            return sum(self.classifier(x) for _ in range(repeats)) / repeats

    def loss_and_success(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise ``[B]``, success ``[B]``) at ``x``."""
        logits = self.scores(x)
        if logits.shape[1] < 2:
            raise ValueError(f"Square needs at least 2 classes; this model has {logits.shape[1]}")
        if int(y.min()) < 0 or int(y.max()) >= logits.shape[1]:
            raise ValueError(f"labels must lie in [0, {logits.shape[1]}) for this {logits.shape[1]}-class model")
        if self.loss_name == "margin":
            loss = -margin(logits, y) if self.targeted else margin(logits, y)
        else:
            loss = cross_entropy(logits, y) if self.targeted else -cross_entropy(logits, y)
        predicted = logits.argmax(1)
        return loss, predicted == y if self.targeted else predicted != y

    # -- the search ---------------------------------------------------------------------------------
    def initial(self, x: torch.Tensor, streams: SampleStreams) -> torch.Tensor:
        """The starting point x̂ (``[B, C, H, W]``), inside the ball and the bounds."""
        batch, channels, height, width = x.shape
        if self.norm == "Linf":
            signs = streams.rand((channels, 1, width), dtype=x.dtype, device=x.device).lt(0.5) * 2.0 - 1
            return self.clip_to_bounds(x + self.eps * signs)
        side = max(height // 5, 1)
        offset = (height - 5 * side) // 2 if height >= 5 else 0
        starts = [offset + side * k for k in range(height // side)]
        columns = [offset + side * k for k in range(width // side)]
        draws = streams.rand((len(starts) * len(columns), channels + 1), dtype=x.dtype, device=x.device)
        delta = torch.zeros_like(x)
        pattern = pseudo_gaussian(side).to(x)
        for block, (top, left) in enumerate((r, c) for r in starts for c in columns):
            window = delta[:, :, top:top + side, left:left + side]
            if window.numel() == 0:
                continue
            flip = draws[:, block, channels].lt(0.5)[:, None, None]
            shaped = torch.where(flip, pattern.t(), pattern)[:, :window.shape[2], :window.shape[3]]
            signs = draws[:, block, :channels].lt(0.5) * 2.0 - 1
            window += signs[:, :, None, None] * shaped[:, None]
        return self.clip_to_bounds(x + self.eps * delta / l2_norm(delta).clamp_min(TINY))

    def candidate(self, x: torch.Tensor, x_best: torch.Tensor, side: int, draws: torch.Tensor) -> torch.Tensor:
        """The next point of each sample from its best one; ``draws`` ``[B, C + 5]`` uniforms: the positions
        of W₁ (and W₂), the signs per channel, the transposition of η."""
        batch, channels, height, width = x.shape

        def position(column: int, length: int) -> torch.Tensor:
            return (draws[:, column] * (length - side + 1)).long().clamp(max=length - side)

        rows1, cols1 = _window(position(0, height), side, height), _window(position(1, width), side, width)
        window1 = (rows1[:, :, None] & cols1[:, None, :])[:, None]  # [B, 1, H, W]
        signs = (draws[:, 4:4 + channels].lt(0.5) * 2.0 - 1)[:, :, None, None]
        if self.norm == "Linf":
            return self.clip_to_bounds(torch.where(window1, x + self.eps * signs, x_best))
        window2 = (_window(position(2, height), side, height)[:, :, None]
                   & _window(position(3, width), side, width)[:, None, :])[:, None]
        delta = x_best - x
        norm_image = l2_norm(delta)                                          # [B, 1, 1, 1]
        norm_windows = l2_norm(delta * (window1 | window2))                  # [B, 1, 1, 1]
        norm_window1 = (delta * window1).square().sum((2, 3), keepdim=True).sqrt()  # [B, C, 1, 1]
        # η at W₁'s position of each sample: local coordinates inside the square, then a gather.
        local_r = (torch.arange(height, device=x.device) - position(0, height)[:, None]).clamp(0, side - 1)
        local_c = (torch.arange(width, device=x.device) - position(1, width)[:, None]).clamp(0, side - 1)
        pattern = pseudo_gaussian(side).to(x)
        flip = draws[:, 4 + channels].lt(0.5)[:, None, None]
        eta = torch.where(flip, pattern.t(), pattern)                        # [B, s, s]
        index = torch.arange(batch, device=x.device)[:, None, None]
        eta = eta[index, local_r[:, :, None], local_c[:, None, :]][:, None]  # [B, 1, H, W]
        new = (signs * eta + delta / norm_window1.clamp_min(TINY)) * window1
        size = ((self.eps ** 2 - norm_image.square()).clamp_min(0) / channels + norm_windows.square()).sqrt()
        new = new / new.square().sum((2, 3), keepdim=True).sqrt().clamp_min(TINY) * size
        delta = torch.where(window1, new, delta.masked_fill(window2, 0.0))
        return self.clip_to_bounds(x + self.eps * delta / l2_norm(delta).clamp_min(TINY))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        images = _as_images(x)
        batch, channels, height, width = images.shape
        streams = SampleStreams(self.seed, batch, device=x.device)
        x_best = self.initial(images, streams)
        loss_best, broken = self.loss_and_success(x_best.reshape(x.shape), y)
        queries = torch.ones(batch, dtype=torch.int64, device=x.device)
        draws = torch.empty(0)
        for i in range(self.queries):
            active = (~broken).nonzero()[:, 0]
            if active.numel() == 0:
                break
            if i % CHUNK == 0:  # each still-active sample draws the next CHUNK iterations from its own stream
                draws = torch.zeros(batch, CHUNK, channels + 5, dtype=x.dtype, device=x.device)
                draws[active] = streams.subset(active.cpu()).rand((CHUNK, channels + 5), dtype=x.dtype,
                                                                  device=x.device)
            side = square_side(p_schedule(i, self.queries, self.p_init), channels * height * width, channels,
                               height, width, self.norm)
            point = self.candidate(images[active], x_best[active], side, draws[active, i % CHUNK])
            loss, success = self.loss_and_success(point.reshape((-1,) + x.shape[1:]), y[active])
            better = loss < loss_best[active]
            keep = active[better | success]
            x_best[keep] = point[better | success]
            loss_best[active] = torch.where(better, loss, loss_best[active])
            broken[active] = success
            queries[active] += 1
        self.last_broken, self.last_queries = broken, queries
        return x_best.reshape(x.shape)
