// The RGA rate op as CUDA kernels: exact multi-step IF/LIF/PLIF forward and the rate-averaged backward.
//
// Layout: time-major [T, N], element (t, i) at t * N + i; one thread per neuron i, the time loop inside.
// Storage S is float, __half or __nv_bfloat16; all arithmetic is float32. Every float32 operation is an
// explicitly rounded intrinsic (__fadd_rn, __fsub_rn, __fmul_rn, __fdiv_rn), so the compiler cannot
// contract a multiply and an add into an FMA, and the order of operations is exactly that of
// sj_rga/ops/torch_backend.py. For 16-bit storage every result is rounded to S as torch rounds its
// 16-bit arithmetic: the results are bit-identical to the torch op (and so to SpikingJelly's stock
// neurons on the CPU) in all three dtypes.
//
// The same file compiles on the host with a C++ compiler through host_shim.h (SJ_RGA_HOST defined),
// which is how the tests check it without a GPU. Argument packing lives in sj_rga/ops/kernels.py.

#ifdef SJ_RGA_HOST
#include "host_shim.h"
#else
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif

// Charge forms: H[t] from V[t-1] and X[t]; r is the reset value V_r, c the form's coefficient.
#define SJ_RGA_FORM_IF 0               // V + X
#define SJ_RGA_FORM_DIV_DECAY_INPUT 1  // V + (X - (V - r)) / c          c = tau
#define SJ_RGA_FORM_DIV 2              // V - (V - r) / c + X            c = tau
#define SJ_RGA_FORM_MUL_DECAY_INPUT 3  // V + (X - (V - r)) * c          c = sigmoid(w)
#define SJ_RGA_FORM_MUL 4              // V - (V - r) * c + X            c = sigmoid(w)
#define SJ_RGA_FORM_SCALED 5           // V * c + X                      c = 1 - 1/tau or 1 - sigmoid(w)

__device__ __forceinline__ float load(float s) { return s; }
__device__ __forceinline__ float load(__half s) { return __half2float(s); }
__device__ __forceinline__ float load(__nv_bfloat16 s) { return __bfloat162float(s); }

template <typename S> __device__ __forceinline__ S store(float f);
template <> __device__ __forceinline__ float store<float>(float f) { return f; }
template <> __device__ __forceinline__ __half store<__half>(float f) { return __float2half_rn(f); }
template <> __device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16>(float f) { return __float2bfloat16_rn(f); }

// Round a float32 result to the storage type and back: torch's own arithmetic on 16-bit tensors computes
// each operation in float32 and rounds its result to the tensor's dtype, so rounding after every
// operation reproduces it exactly (float32 keeps enough bits for that to be a single correct rounding).
template <typename S> __device__ __forceinline__ float rnd(float f) { return load(store<S>(f)); }

// Scalars follow torch too: added, subtracted or compared, a Python scalar is first rounded to the
// tensor's dtype; multiplied or divided by, it stays float32. So r (subtracted) is rounded here, c is not.
template <typename S>
__device__ __forceinline__ float charge(float v, float x, int form, float r_scalar, float c) {
    const float r = rnd<S>(r_scalar);
    switch (form) {
        case SJ_RGA_FORM_IF: return rnd<S>(__fadd_rn(v, x));
        case SJ_RGA_FORM_DIV_DECAY_INPUT:
            return rnd<S>(__fadd_rn(v, rnd<S>(__fdiv_rn(rnd<S>(__fsub_rn(x, rnd<S>(__fsub_rn(v, r)))), c))));
        case SJ_RGA_FORM_DIV: return rnd<S>(__fadd_rn(rnd<S>(__fsub_rn(v, rnd<S>(__fdiv_rn(rnd<S>(__fsub_rn(v, r)), c)))), x));
        case SJ_RGA_FORM_MUL_DECAY_INPUT:
            return rnd<S>(__fadd_rn(v, rnd<S>(__fmul_rn(rnd<S>(__fsub_rn(x, rnd<S>(__fsub_rn(v, r)))), c))));
        case SJ_RGA_FORM_MUL: return rnd<S>(__fadd_rn(rnd<S>(__fsub_rn(v, rnd<S>(__fmul_rn(rnd<S>(__fsub_rn(v, r)), c)))), x));
        default: return rnd<S>(__fadd_rn(rnd<S>(__fmul_rn(v, c)), x));
    }
}

// Forward over T steps for neurons i < N. Writes spikes [T, N] (0 or 1), the final potential v_last [N],
// the potential after every step v_seq [T, N] when v_seq is not null, and the mean input current
// mean_current [N] (float32) = (sum over t of X[t], summed in float32 from t = 0) * mean_scale,
// mean_scale being dI/dX / T. Hard reset (hard_reset != 0): V = S * v_reset + (1 - S) * H;
// soft reset: V = H - S * v_threshold. A spike is H >= v_threshold.
template <typename S>
__device__ __forceinline__ void rate_forward(
    const S* __restrict__ x, const S* __restrict__ v0, S* __restrict__ spikes, S* __restrict__ v_last,
    S* __restrict__ v_seq, float* __restrict__ mean_current, long long T, long long N, int form, float c,
    float r, float v_threshold, int hard_reset, float v_reset, float mean_scale) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    float v = load(v0[i]);
    float total = 0.0f;
    for (long long t = 0; t < T; ++t) {
        const long long k = t * N + i;
        const float xt = load(x[k]);
        const float h = charge<S>(v, xt, form, r, c);
        const float spike = h >= rnd<S>(v_threshold) ? 1.0f : 0.0f;
        if (hard_reset) {
            v = rnd<S>(__fadd_rn(rnd<S>(__fmul_rn(spike, v_reset)), __fmul_rn(__fsub_rn(1.0f, spike), h)));
        } else {
            v = rnd<S>(__fsub_rn(h, rnd<S>(__fmul_rn(spike, v_threshold))));
        }
        spikes[k] = store<S>(spike);
        if (v_seq) v_seq[k] = store<S>(v);
        total = __fadd_rn(total, xt);
    }
    v_last[i] = store<S>(v);
    mean_current[i] = __fmul_rn(total, mean_scale);
}

// Backward: grad_x[t, i] = grad_spikes[t, i] * factor_i with factor_i = g(mean_current[i]) * input_gain,
// rounded to the storage type as the torch op does (factor.to(dtype), then a product in that dtype).
// g = gamma on [0, knee], middle on (knee, upper], 0 elsewhere (negative, above upper, or NaN), with
// knee = (1 - lam) * theta and upper = beta * theta, as sj_rga.surrogate.rate_slope.
template <typename S>
__device__ __forceinline__ void rate_backward(
    const S* __restrict__ grad_spikes, const float* __restrict__ mean_current, S* __restrict__ grad_x,
    long long T, long long N, float knee, float upper, float gamma, float middle, float input_gain) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float current = mean_current[i];
    float slope = (current > knee && current <= upper) ? middle : 0.0f;
    if (current >= 0.0f && current <= knee) slope = gamma;
    const float factor = load(store<S>(__fmul_rn(slope, input_gain)));
    for (long long t = 0; t < T; ++t) {
        const long long k = t * N + i;
        grad_x[k] = store<S>(__fmul_rn(load(grad_spikes[k]), factor));
    }
}

#define SJ_RGA_KERNELS(S, NAME)                                                                              \
    extern "C" __global__ void rate_forward_##NAME(                                                          \
        const S* x, const S* v0, S* spikes, S* v_last, S* v_seq, float* mean_current, long long T,           \
        long long N, int form, float c, float r, float v_threshold, int hard_reset, float v_reset,           \
        float mean_scale) {                                                                                  \
        rate_forward<S>(x, v0, spikes, v_last, v_seq, mean_current, T, N, form, c, r, v_threshold,           \
                        hard_reset, v_reset, mean_scale);                                                    \
    }                                                                                                        \
    extern "C" __global__ void rate_backward_##NAME(                                                         \
        const S* grad_spikes, const float* mean_current, S* grad_x, long long T, long long N, float knee,     \
        float upper, float gamma, float middle, float input_gain) {                                          \
        rate_backward<S>(grad_spikes, mean_current, grad_x, T, N, knee, upper, gamma, middle, input_gain);   \
    }

SJ_RGA_KERNELS(float, float32)
SJ_RGA_KERNELS(__half, float16)
SJ_RGA_KERNELS(__nv_bfloat16, bfloat16)
