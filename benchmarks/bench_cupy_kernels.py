"""Forward and backward time of the rate op's CuPy kernels against the torch op and SpikingJelly's stock LIF.

Runs on a CUDA GPU only. For T in {4, 8, 16} and N (neurons per layer) from 10^5 to 10^8 it times, with
CUDA events (median of several runs after a warm-up):

- ``kernel``: sj_rga's rate op with ``SJ_RGA_BACKEND=cupy`` (fused forward, fused RGA backward);
- ``torch op``: the same op with ``SJ_RGA_BACKEND=torch`` (a Python loop over T of torch kernels);
- ``sj stock``: SpikingJelly 2.0.0's ``LIFNode`` with its ATan surrogate, whatever fastest CUDA path it
  picks by itself (BPTT backward: a different gradient, timed for the cost of a spiking layer).

All three run the same LIF layer (τ = 2, decay_input, v_threshold 1, hard reset to 0) on a time-major
``[T, N]`` input. Effective bandwidth is the op's minimal memory traffic divided by the time, compared
with the card's peak (2 × memory clock × bus width): forward reads X ``[T, N]`` and V[0] ``[N]`` and
writes spikes ``[T, N]``, V[T] ``[N]`` and Ī ``[N]`` (float32); backward reads dL/dS ``[T, N]`` and Ī
and writes dL/dX ``[T, N]``. "kept" is what autograd keeps for backward (its saved tensors, input
included where an implementation saves it), in bytes. Sizes that do not fit in memory are skipped.

    python benchmarks/bench_cupy_kernels.py [--dtype float32|float16|bfloat16] [--steps 4 8 16]
                                            [--neurons 1e5 1e6 1e7 1e8] [--bandwidth-gbs PEAK]
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
from typing import Callable, Optional

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
IMPLEMENTATIONS = ("kernel", "torch op", "sj stock")


def peak_bandwidth_gbs(device: int) -> float:
    """The card's peak memory bandwidth in GB/s (10^9 bytes/s), from its memory clock and bus width."""
    import cupy

    clock_khz = cupy.cuda.runtime.deviceGetAttribute(cupy.cuda.runtime.cudaDevAttrMemoryClockRate, device)
    bus_bits = cupy.cuda.runtime.deviceGetAttribute(cupy.cuda.runtime.cudaDevAttrGlobalMemoryBusWidth, device)
    return 2.0 * clock_khz * 1e3 * bus_bits / 8 / 1e9


def traffic_bytes(steps: int, neurons: int, element: int) -> tuple[int, int]:
    """(forward, backward) minimal memory traffic of the op in bytes, as the module docstring counts it."""
    forward = 2 * steps * neurons * element + 2 * neurons * element + 4 * neurons
    backward = 2 * steps * neurons * element + 4 * neurons
    return forward, backward


def median_ms(run: Callable[[], None], repeats: int) -> float:
    """Median time of ``run`` in milliseconds over ``repeats`` runs, after two warm-up runs."""
    for _ in range(2):
        run()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def kept_bytes(forward: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd saves for backward during ``forward()``."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(storages.values())


def layer(implementation: str, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """A function running one LIF layer's forward on ``x`` ``[T, N]`` with ``implementation``."""
    from spikingjelly.activation_based import neuron, surrogate

    from sj_rga import RGA
    from sj_rga.mapping import charge_spec
    from sj_rga.neuron import slope_spec
    from sj_rga.ops import rate_neuron

    stock = neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                           surrogate_function=surrogate.ATan(), step_mode="m").to(x.device)
    if implementation == "sj stock":
        def forward() -> torch.Tensor:
            stock.reset()
            return stock(x)
        return forward
    os.environ["SJ_RGA_BACKEND"] = "cupy" if implementation == "kernel" else "torch"
    spec, slope = charge_spec(stock), slope_spec(stock, RGA())
    v0 = torch.zeros_like(x[0])
    return lambda: rate_neuron(x, v0, spec, slope)[0]


def measure(implementation: str, steps: int, neurons: int, dtype: torch.dtype,
            repeats: int) -> Optional[tuple[float, float, int]]:
    """(forward ms, backward ms, kept bytes), or None when the size does not fit in GPU memory."""
    try:
        x = torch.randn(steps, neurons, device="cuda", dtype=dtype).mul_(1.5).add_(0.8).requires_grad_()
        grad = torch.randn(steps, neurons, device="cuda", dtype=dtype)
        forward = layer(implementation, x)
        forward_ms = median_ms(forward, repeats)
        spikes = forward()
        backward_ms = median_ms(functools.partial(torch.autograd.grad, spikes, x, grad, retain_graph=True), repeats)
        del spikes
        return forward_ms, backward_ms, kept_bytes(forward)
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--neurons", type=float, nargs="+", default=[1e5, 1e6, 1e7, 1e8])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--bandwidth-gbs", type=float, default=None,
                        help="the card's peak memory bandwidth in GB/s (default: from its memory clock and bus width)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_cupy_kernels.py needs a CUDA GPU and none is visible to torch: nothing was measured.")
    try:
        import cupy
    except ImportError as error:
        sys.exit(f"bench_cupy_kernels.py needs CuPy (pip install 'sj-rga[cuda13]' or '[cuda12]'): {error}")
    device = torch.cuda.current_device()
    try:
        peak = args.bandwidth_gbs or peak_bandwidth_gbs(device)
    except cupy.cuda.runtime.CUDARuntimeError as error:
        sys.exit(f"cannot read the card's memory clock and bus width ({error}): pass --bandwidth-gbs PEAK")
    if not peak > 0:
        sys.exit("the card reports no memory clock or bus width: pass --bandwidth-gbs PEAK")
    dtype = DTYPES[args.dtype]
    element = torch.empty((), dtype=dtype).element_size()
    print(f"{torch.cuda.get_device_name(device)}, peak {peak:.0f} GB/s, {args.dtype}, torch {torch.__version__}, "
          f"cupy {cupy.__version__}")
    print("| T | N | implementation | forward ms | forward GB/s (% peak) | backward ms | backward GB/s (% peak) "
          "| kept for backward (bytes) |")
    print("|---|---|---|---|---|---|---|---|")
    for steps in args.steps:
        for neurons in (int(n) for n in args.neurons):
            forward_bytes, backward_bytes = traffic_bytes(steps, neurons, element)
            for implementation in IMPLEMENTATIONS:
                result = measure(implementation, steps, neurons, dtype, args.repeats)
                if result is None:
                    print(f"| {steps} | {neurons:.0e} | {implementation} | does not fit in GPU memory | | | | |")
                    continue
                forward_ms, backward_ms, kept = result
                rates = [size / (ms * 1e-3) / 1e9 for size, ms in ((forward_bytes, forward_ms),
                                                                    (backward_bytes, backward_ms))]
                print(f"| {steps} | {neurons:.0e} | {implementation} | {forward_ms:.3f} | "
                      f"{rates[0]:.0f} ({100 * rates[0] / peak:.0f} %) | {backward_ms:.3f} | "
                      f"{rates[1]:.0f} ({100 * rates[1] / peak:.0f} %) | {kept} |", flush=True)


if __name__ == "__main__":
    main()
