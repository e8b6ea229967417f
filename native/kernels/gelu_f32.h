// GELU (tanh form) over F32 rows in SIMD vectors (patch 0010 includes this file into ggml-cpu/ops.cpp after
// vec.h and calls bge_m3_vec_gelu_f32 from ggml_compute_forward_gelu_f32). It relies on what ops.cpp has in
// scope: ggml_v_expf for the translation unit's ISA (vec.h) and ggml's scalar ggml_vec_gelu_f32.
//
// Why: with GGML_GELU_FP16 (vec.h's default) ggml's F32 GELU is a scalar loop that rounds every input to
// F16, looks the result up in a 128 KB table and widens it again: ~2.8 ns per value on the 2-core Zen 3 host,
// 4% of a 2,048-token input, and a relative error of up to 2^-11 in every FFN activation. Here
// gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3), with ggml's vector
// exp (max error 1.5 ulp + 0.5) and an IEEE division, so the result is the F32 formula's, not the table's.
// For x << 0, exp(-2u) overflows to +inf and the quotient is -0; for x >> 0 it is 0 and the result is x.
#pragma once

#include "neon_expf.h"

// x86: the same chain of ISAs as vec.h's ggml_v_expf, so the vector type here is the one it takes. aarch64:
// NEON with our copy of ggml's NEON exp on every variant, SVE ones included (neon_expf.h). Elsewhere (no
// variant we ship): ggml's own loop.
#if defined(__ARM_NEON) && defined(__aarch64__)
#define BGE_M3_GELU_VEC          float32x4_t
#define BGE_M3_GELU_EPR          4
#define BGE_M3_GELU_LOAD(p)      vld1q_f32(p)
#define BGE_M3_GELU_STORE(p, x)  vst1q_f32(p, x)
#define BGE_M3_GELU_SET1(x)      vdupq_n_f32(x)
#define BGE_M3_GELU_MUL(a, b)    vmulq_f32(a, b)
#define BGE_M3_GELU_ADD(a, b)    vaddq_f32(a, b)
#define BGE_M3_GELU_DIV(a, b)    vdivq_f32(a, b)
#define BGE_M3_GELU_EXP(x)       bge_m3_v_expf_neon(x)
#elif defined(__AVX512F__) && defined(__AVX512DQ__)
#define BGE_M3_GELU_VEC          __m512
#define BGE_M3_GELU_EPR          16
#define BGE_M3_GELU_LOAD(p)      _mm512_loadu_ps(p)
#define BGE_M3_GELU_STORE(p, x)  _mm512_storeu_ps(p, x)
#define BGE_M3_GELU_SET1(x)      _mm512_set1_ps(x)
#define BGE_M3_GELU_MUL(a, b)    _mm512_mul_ps(a, b)
#define BGE_M3_GELU_ADD(a, b)    _mm512_add_ps(a, b)
#define BGE_M3_GELU_DIV(a, b)    _mm512_div_ps(a, b)
#define BGE_M3_GELU_EXP(x)       ggml_v_expf(x)
#elif defined(__AVX2__) && defined(__FMA__)
#define BGE_M3_GELU_VEC          __m256
#define BGE_M3_GELU_EPR          8
#define BGE_M3_GELU_LOAD(p)      _mm256_loadu_ps(p)
#define BGE_M3_GELU_STORE(p, x)  _mm256_storeu_ps(p, x)
#define BGE_M3_GELU_SET1(x)      _mm256_set1_ps(x)
#define BGE_M3_GELU_MUL(a, b)    _mm256_mul_ps(a, b)
#define BGE_M3_GELU_ADD(a, b)    _mm256_add_ps(a, b)
#define BGE_M3_GELU_DIV(a, b)    _mm256_div_ps(a, b)
#define BGE_M3_GELU_EXP(x)       ggml_v_expf(x)
#elif defined(__SSE2__)
#define BGE_M3_GELU_VEC          __m128
#define BGE_M3_GELU_EPR          4
#define BGE_M3_GELU_LOAD(p)      _mm_loadu_ps(p)
#define BGE_M3_GELU_STORE(p, x)  _mm_storeu_ps(p, x)
#define BGE_M3_GELU_SET1(x)      _mm_set1_ps(x)
#define BGE_M3_GELU_MUL(a, b)    _mm_mul_ps(a, b)
#define BGE_M3_GELU_ADD(a, b)    _mm_add_ps(a, b)
#define BGE_M3_GELU_DIV(a, b)    _mm_div_ps(a, b)
#define BGE_M3_GELU_EXP(x)       ggml_v_expf(x)
#endif

// y[0..n) = gelu(x[0..n)); y may be x
static void bge_m3_vec_gelu_f32(const int n, float * y, const float * x) {
#if defined(BGE_M3_GELU_VEC)
    // -2 sqrt(2/pi) and -2 sqrt(2/pi) 0.044715: exp's argument is x (c1 + c3 x^2)
    constexpr float c1 = -1.5957691216057308f;
    constexpr float c3 = -0.07135481627159337f;
    int i = 0;
    for (; i + BGE_M3_GELU_EPR <= n; i += BGE_M3_GELU_EPR) {
        const BGE_M3_GELU_VEC v = BGE_M3_GELU_LOAD(x + i);
        const BGE_M3_GELU_VEC z = BGE_M3_GELU_MUL(
            v, BGE_M3_GELU_ADD(BGE_M3_GELU_SET1(c1), BGE_M3_GELU_MUL(BGE_M3_GELU_SET1(c3), BGE_M3_GELU_MUL(v, v))));
        BGE_M3_GELU_STORE(y + i, BGE_M3_GELU_DIV(v, BGE_M3_GELU_ADD(BGE_M3_GELU_SET1(1.0f), BGE_M3_GELU_EXP(z))));
    }
    for (; i < n; i++) {
        y[i] = x[i] / (1.0f + expf(x[i] * (c1 + c3 * x[i] * x[i])));
    }
#else
    ggml_vec_gelu_f32(n, y, x);
#endif
}
