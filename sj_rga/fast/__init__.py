"""The fast input gradient of the time-uniform estimators (RGA, BPTR, HART; method §1.5 and §2): a no-grad
T-step forward plus one T = 1 backward.

When every operation between spiking layers is affine and acts on each time step alike, a time-uniform
per-layer backward gives the same gradient ``dL/dX[t]`` at every step, and the whole backward equals the
backward of the network run once at T = 1 with each spiking layer replaced by its measured firing rate
(forward value) and the estimator's recorded slope (backward). :func:`prove_fast_path` decides from the
model's traced forward whether that holds; :func:`fast_logits` computes it.
"""
from .exactness import (
                        RGA_PATHS,
                        Verdict,
                        fast_path_obstacle,
                        prove_fast_path,
                        refuse_at_run_time,
                        register_affine_block,
                        use_fast_path,
)
from .gradient import FastPathMismatch, fast_logits

__all__ = ["RGA_PATHS", "Verdict", "fast_path_obstacle", "prove_fast_path", "refuse_at_run_time",
           "register_affine_block", "use_fast_path", "fast_logits", "FastPathMismatch"]
