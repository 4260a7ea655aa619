"""The fast RGA input gradient (method §1.5): a no-grad T-step forward plus one T = 1 backward.

When every operation between spiking layers is affine and acts on each time step alike, the per-layer
RGA backward gives the same gradient ``dL/dX[t]`` at every step, and the whole backward equals the
backward of the network run once at T = 1 with each spiking layer replaced by its measured firing rate
(forward value) and the slope ``g(Ī)·dI/dX`` (backward). :func:`fast_path_obstacle` decides from the model
whether that holds; :func:`fast_rga_logits` computes it.
"""
from .exactness import RGA_PATHS, fast_path_obstacle, register_affine_block, use_fast_path
from .gradient import fast_rga_logits

__all__ = ["RGA_PATHS", "fast_path_obstacle", "register_affine_block", "use_fast_path", "fast_rga_logits"]
