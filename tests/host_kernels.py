"""Compile ``sj_rga/ops/cuda/rate_neuron.cu`` for the host through ``host_shim.h`` and run it via ctypes.

The library holds the rate op's kernels and, for testing the shim itself, a few CUDA-style kernels
that convert half/bfloat16 values and record the thread indices. :func:`launcher` gives a
:data:`sj_rga.ops.kernels.Launch` over CPU tensors, so ``kernels.forward(..., launch=...)`` runs the
same argument packing as the CuPy backend, with the kernels executed on the host.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence

from sj_rga.ops import kernels

FLAGS = ("-std=c++17", "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC")

SHIM_TEST_KERNELS = r"""
#define SHIM_CONVERSION(NAME, IN, OUT, CONVERT)                                 \
    extern "C" __global__ void NAME(const IN* in, OUT* out, long long n) {      \
        const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;   \
        if (i < n) out[i] = CONVERT(in[i]);                                     \
    }
SHIM_CONVERSION(shim_to_half, float, __half, __float2half_rn)
SHIM_CONVERSION(shim_from_half, __half, float, __half2float)
SHIM_CONVERSION(shim_to_bfloat16, float, __nv_bfloat16, __float2bfloat16_rn)
SHIM_CONVERSION(shim_from_bfloat16, __nv_bfloat16, float, __bfloat162float)
// One row of 12 ints per thread, at its linear index: blockIdx, threadIdx, blockDim, gridDim (x, y, z);
// counts[linear] += 1 shows every thread ran exactly once.
extern "C" __global__ void shim_indices(int* rows, int* counts) {
    const int block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const int thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    const int linear = block * blockDim.x * blockDim.y * blockDim.z + thread;
    const unsigned values[12] = {blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z,
                                 blockDim.x, blockDim.y, blockDim.z, gridDim.x, gridDim.y, gridDim.z};
    for (int k = 0; k < 12; ++k) rows[linear * 12 + k] = (int)values[k];
    counts[linear] += 1;
}
"""

SHIM_KERNELS = ("shim_to_half", "shim_from_half", "shim_to_bfloat16", "shim_from_bfloat16", "shim_indices")
RATE_KERNELS = tuple(kernels.kernel_name(op, dtype) for op in ("forward", "backward") for dtype in kernels.STORAGE)

_CTYPES = {"ptr": ctypes.c_void_p, "i64": ctypes.c_longlong, "i32": ctypes.c_int, "f32": ctypes.c_float}


def compiler() -> Optional[str]:
    """The C++ compiler to use: ``$CXX``, else g++, c++ or clang++ on PATH; None when there is none."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def build(directory: Path, cxx: str) -> ctypes.CDLL:
    """Compile rate_neuron.cu plus the shim's test kernels into ``directory`` and load the library."""
    exports = "\n".join(f"SJ_RGA_HOST_EXPORT({name})" for name in RATE_KERNELS + SHIM_KERNELS)
    source = directory / "host_kernels.cpp"
    source.write_text(f'#define SJ_RGA_HOST\n#include "{kernels.SOURCE.name}"\n{SHIM_TEST_KERNELS}\n{exports}\n')
    library = directory / "libsj_rga_host.so"
    subprocess.run([cxx, *FLAGS, "-I", str(kernels.SOURCE.parent), "-o", str(library), str(source)],
                   check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(library))


def launch_on(library: ctypes.CDLL, name: str, grid: Sequence[int], block: Sequence[int],
              args: Sequence[kernels.Arg]) -> None:
    """Run kernel ``name`` for every (block, thread) of a 3-D grid, with cuLaunchKernel-style arguments."""
    values = [_CTYPES[kind](value) for kind, value in args]
    pointers = (ctypes.c_void_p * max(len(values), 1))(*[ctypes.addressof(value) for value in values])
    dims = ctypes.c_uint * 3
    getattr(library, f"host_{name}")(dims(*grid), dims(*block), pointers)


def launcher(library: ctypes.CDLL) -> kernels.Launch:
    """A :data:`kernels.Launch` running the host-compiled kernels on CPU tensors (1-D grids)."""
    def launch(name: str, blocks: int, threads: int, args: Sequence[kernels.Arg]) -> None:
        launch_on(library, name, (blocks, 1, 1), (threads, 1, 1), args)
    return launch
