// Host stand-ins for the CUDA names rate_neuron.cu uses, so the same source compiles with a C++17
// compiler (define SJ_RGA_HOST; compile with -ffp-contract=off and without -ffast-math) for tests:
//   - __global__/__device__/__forceinline__ become plain (inline) functions;
//   - blockIdx/threadIdx/blockDim/gridDim are globals that sj_rga_host::launch sets before calling a
//     kernel once per (block, thread), in order, on the calling thread;
//   - the rounding intrinsics are the plain IEEE operations (round to nearest even);
//   - __half and __nv_bfloat16 are 16-bit storage types converted in software, rounding to nearest even
//     (a NaN comes out as torch's conversion makes it; a GPU's NaN bits may differ).
// SJ_RGA_HOST_EXPORT(kernel) defines extern "C" host_<kernel>(grid, block, args) taking its arguments
// as cuLaunchKernel does: args[k] points at the k-th argument's value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __forceinline__ inline

struct sj_rga_dim3 {
    unsigned x, y, z;
};

inline sj_rga_dim3 gridDim, blockDim, blockIdx, threadIdx;

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

struct __half {
    std::uint16_t bits;
};
struct __nv_bfloat16 {
    std::uint16_t bits;
};

namespace sj_rga_host {

inline std::uint32_t float_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

inline float bits_float(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// Shift right by n >= 1 bits, rounding to nearest, ties to even.
inline std::uint32_t shift_round_even(std::uint32_t m, unsigned n) {
    if (n > 31) return 0;
    const std::uint32_t kept = m >> n, rest = m & ((1u << n) - 1u), half = 1u << (n - 1);
    return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}

template <typename... A, std::size_t... I>
void call(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

// Run kernel(args) for every block of grid and every thread of block, x fastest.
template <typename... A>
void launch(void (*kernel)(A...), const unsigned* grid, const unsigned* block, void** args) {
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    for (unsigned bz = 0; bz < grid[2]; ++bz)
        for (unsigned by = 0; by < grid[1]; ++by)
            for (unsigned bx = 0; bx < grid[0]; ++bx)
                for (unsigned tz = 0; tz < block[2]; ++tz)
                    for (unsigned ty = 0; ty < block[1]; ++ty)
                        for (unsigned tx = 0; tx < block[0]; ++tx) {
                            blockIdx = {bx, by, bz};
                            threadIdx = {tx, ty, tz};
                            call(kernel, args, std::index_sequence_for<A...>{});
                        }
}

}  // namespace sj_rga_host

inline float __half2float(__half h) {
    const std::uint32_t sign = std::uint32_t(h.bits & 0x8000u) << 16;
    std::uint32_t exponent = (h.bits >> 10) & 0x1Fu, mantissa = h.bits & 0x3FFu;
    if (exponent == 0x1Fu) return sj_rga_host::bits_float(sign | 0x7F800000u | (mantissa << 13));
    if (exponent == 0) {
        if (mantissa == 0) return sj_rga_host::bits_float(sign);
        exponent = 113;  // normalise a subnormal: value = mantissa * 2^-24
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            --exponent;
        }
        return sj_rga_host::bits_float(sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13));
    }
    return sj_rga_host::bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline __half __float2half_rn(float f) {
    const std::uint32_t u = sj_rga_host::float_bits(f);
    const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
    const std::uint32_t exponent = (u >> 23) & 0xFFu, mantissa = u & 0x7FFFFFu;
    if (exponent == 0xFFu) return {std::uint16_t(sign | (mantissa ? 0x7E00u : 0x7C00u))};
    const int e = int(exponent) - 112;  // half's biased exponent
    if (e >= 31) return {std::uint16_t(sign | 0x7C00u)};
    if (e <= 0) {  // half subnormal or zero: value = m * 2^-24
        const std::uint32_t full = exponent ? (mantissa | 0x800000u) : mantissa;
        return {std::uint16_t(sign | sj_rga_host::shift_round_even(full, unsigned(14 - e)))};
    }
    // A carry out of the mantissa rounds up into the exponent, and from 30 into infinity: both exact.
    return {std::uint16_t(sign | ((std::uint32_t(e) << 10) + sj_rga_host::shift_round_even(mantissa, 13)))};
}

inline float __bfloat162float(__nv_bfloat16 b) { return sj_rga_host::bits_float(std::uint32_t(b.bits) << 16); }

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    const std::uint32_t u = sj_rga_host::float_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return {0x7FC0u};  // NaN: torch's canonical quiet NaN
    return {std::uint16_t(sj_rga_host::shift_round_even(u & 0x7FFFFFFFu, 16) | ((u >> 16) & 0x8000u))};
}

#define SJ_RGA_HOST_EXPORT(kernel)                                                                       \
    extern "C" void host_##kernel(const unsigned* grid, const unsigned* block, void** args) {         \
        sj_rga_host::launch(kernel, grid, block, args);                                                  \
    }
