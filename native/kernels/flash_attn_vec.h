// The SIMD vectors and tile sizes of our tiled flash attention (flash_attn_f32.h and its product policies):
// ggml's GGML_F32_VEC, except on ARM builds with SVE (the portable build's armv8.2_3 and later variants:
// Graviton 3/4, Neoverse N2/V1/V2), where ggml's are sizeless SVE vectors that cannot be held in arrays: there
// the kernel uses NEON, which every SVE CPU also has, with a copy of ggml's NEON exp. Relies on what ops.cpp
// has in scope (vec.h, simd-mappings.h). FA_F32_TILED says the kernel exists for this target (RISC-V keeps
// ggml's).
#pragma once

#include "neon_expf.h"

#include <type_traits>

#if defined(GGML_SIMD) && defined(__ARM_FEATURE_SVE) && defined(__ARM_NEON) && defined(__aarch64__)
#define FA_F32_NEON 1
#endif
#if defined(GGML_SIMD) && (!defined(__ARM_FEATURE_SVE) || defined(FA_F32_NEON)) && !defined(__riscv_v_intrinsic)
#define FA_F32_TILED 1

#if defined(FA_F32_NEON)
#define FA_VEC                float32x4_t
#define FA_EPR                4
#define FA_VEC_LOAD(p)        vld1q_f32(p)
#define FA_VEC_STORE(p, x)    vst1q_f32(p, x)
#define FA_VEC_ZERO           vdupq_n_f32(0.0f)
#define FA_VEC_SET1(x)        vdupq_n_f32(x)
#define FA_VEC_FMA(a, b, c)   vfmaq_f32(a, b, c) // a + b*c, as GGML_F32_VEC_FMA
#define FA_VEC_MUL(a, b)      vmulq_f32(a, b)
#define FA_VEC_ADD(a, b)      vaddq_f32(a, b)
#define FA_VEC_MAX(a, b)      vmaxq_f32(a, b)
#define FA_VEC_EXP(x)         bge_m3_v_expf_neon(x)

#else
#define FA_VEC                GGML_F32_VEC
#define FA_EPR                GGML_F32_EPR
#define FA_VEC_LOAD(p)        GGML_F32_VEC_LOAD(p)
#define FA_VEC_STORE(p, x)    GGML_F32_VEC_STORE(p, x)
#define FA_VEC_ZERO           GGML_F32_VEC_ZERO
#define FA_VEC_SET1(x)        GGML_F32_VEC_SET1(x)
#define FA_VEC_FMA(a, b, c)   GGML_F32_VEC_FMA(a, b, c)
#define FA_VEC_MUL(a, b)      GGML_F32_VEC_MUL(a, b)
#define FA_VEC_ADD(a, b)      GGML_F32_VEC_ADD(a, b)
#define FA_VEC_EXP(x)         ggml_v_expf(x)
#if defined(__AVX512F__)
#define FA_VEC_MAX(a, b)      _mm512_max_ps(a, b)
#elif defined(__AVX__)
#define FA_VEC_MAX(a, b)      _mm256_max_ps(a, b)
#elif defined(__SSE2__)
#define FA_VEC_MAX(a, b)      _mm_max_ps(a, b)
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define FA_VEC_MAX(a, b)      vmaxq_f32(a, b)
#endif
#endif

// Keeps a loaded vector in a register: without it GCC folds the B loads back into every FMA as a memory
// operand, which makes the micro-kernel load-bound (1.8x slower on Zen 4).
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FA_F32_PIN(x) __asm__("" : "+v"(x))
#elif defined(__GNUC__) && defined(__aarch64__)
#define FA_F32_PIN(x) __asm__("" : "+w"(x))
#else
#define FA_F32_PIN(x)
#endif

namespace fa_f32 {

static constexpr int EPR = FA_EPR;
// Register blocking: RM x RN accumulators + RN B vectors + 1 broadcast A must fit the register file.
#if defined(__AVX512F__)
static constexpr int RM = 4; // rows per micro-kernel: 16 accumulators of 32 zmm
static constexpr int RN = 4; // SIMD vectors per micro-kernel row
#elif defined(__AVX__)
static constexpr int RM = 6; // 12 accumulators + 2 B + 1 A = 15 of AVX2's 16 ymm (4 rows left the FMA units idle)
static constexpr int RN = 2;
#else
static constexpr int RM = 4;
static constexpr int RN = 2;
#endif
static constexpr int QT = RN * EPR; // queries per tile: one micro-kernel column block
static constexpr int KT = 64;       // keys per tile

// Calls f(std::integral_constant<int, m>, i) over rows [0, M) in blocks of R rows, the rest (a 64-key tile
// leaves 4 rows when R is 6) in as few 4-, 2- and 1-row blocks as possible. For the integer micro-kernels;
// the F32 products spell the same blocking out (gemm_rows): through this lambda GCC inlined the F32
// micro-kernels differently and the F32 kernel ran 1.14x slower (the int16 ones are unaffected).
template <int R, typename F>
static inline void row_blocks(int64_t M, F && f) {
    int64_t i = 0;
    for (; i + R <= M; i += R) {
        f(std::integral_constant<int, R>(), i);
    }
    if (R > 4 && i + 4 <= M) {
        f(std::integral_constant<int, 4>(), i);
        i += 4;
    }
    if (R > 2 && i + 2 <= M) {
        f(std::integral_constant<int, 2>(), i);
        i += 2;
    }
    for (; i < M; i++) {
        f(std::integral_constant<int, 1>(), i);
    }
}

// One head's rows of K or V: row j at data + j*stride bytes.
struct rows_f32 {
    const char * data;
    size_t       stride;
};

// What every product policy is made with: the head sizes of K and V, the keys, Q's scale.
struct op_dims {
    int64_t DK, DV;
    int64_t n_kv;
    float   scale;
};

} // namespace fa_f32
#endif
