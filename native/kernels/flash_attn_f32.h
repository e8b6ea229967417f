// F32 tiled flash attention for the CPU (patch 0003 includes this file into ggml-cpu/ops.cpp, after
// ggml's own flash-attention kernels, and calls ggml_compute_forward_flash_attn_ext_f32_tiled when
// fa_f32::applicable). It relies on what ops.cpp has in scope: ggml's tensor and thread-pool API, the
// GGML_F32_VEC macros and ggml_v_expf (vec.h / simd-mappings.h), GGML_FA_TILE_Q/KV (common.h).
#pragma once

#include "neon_expf.h"
#include "flash_attn_i16_avx2.h"

#include <vector>

// F32 tiled flash attention for prefill with F32 K/V (the no-KV-cache encoder path, where
// llama.cpp would otherwise cast K/V to F16). The kernel above packs and converts every K/V tile once per
// query tile with scalar loops and keeps scores row-major, so on x86 it runs far below the FMA units' rate.
// Here scores are kept transposed (keys x queries): K and V are read in place (no packing), Q is packed
// once per tile (pre-scaled), the softmax max/sum run across SIMD lanes (one lane per query), and both
// products are register-blocked FMA micro-kernels. Everything stays F32. Mask tiles that are all zero
// are not read again and all -inf ones are skipped (sequences packed in one batch only pay for their
// own blocks).
//
// The vectors are ggml's GGML_F32_VEC, except on ARM builds with SVE (the portable build's armv8.2_3 and
// later variants: Graviton 3/4, Neoverse N2/V1/V2), where ggml's are sizeless SVE vectors that cannot be
// held in arrays: there the kernel uses NEON, which every SVE CPU also has, with a copy of ggml's NEON exp.
#if defined(GGML_SIMD) && defined(__ARM_FEATURE_SVE) && defined(__ARM_NEON) && defined(__aarch64__)
#define FA_F32_NEON 1
#endif
#if defined(GGML_SIMD) && (!defined(__ARM_FEATURE_SVE) || defined(FA_F32_NEON)) && !defined(__riscv_v_intrinsic)
namespace fa_f32 {

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
#if defined(FA_VEC_MAX)
static constexpr bool VEC_MAX = true;  // the score micro-kernel can take each tile's maximum
#else
static constexpr bool VEC_MAX = false;
#endif
static constexpr int QT = RN * EPR; // queries per tile: one micro-kernel column block
static constexpr int KT = 64;       // keys per tile

// Keeps a loaded vector in a register: without it GCC folds the B loads back into every FMA as a memory
// operand, which makes the micro-kernel load-bound (1.8x slower on Zen 4).
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FA_F32_PIN(x) __asm__("" : "+v"(x))
#elif defined(__GNUC__) && defined(__aarch64__)
#define FA_F32_PIN(x) __asm__("" : "+w"(x))
#else
#define FA_F32_PIN(x)
#endif

// C[M x QT] (+)= sum_k A(i, k) * B[k][0..QT), A(i, k) = A[i*ars + k*aks]; with MAX, also
// mx[0..QT) = max(mx, max_i C[i]) (the softmax's running maximum, taken while C is still in registers)
template <int M, bool ACC, bool MAX = false>
static inline void ukernel(float * GGML_RESTRICT C, int64_t ldc,
                           const float * GGML_RESTRICT A, int64_t ars, int64_t aks,
                           const float * GGML_RESTRICT B, int64_t ldb, int64_t K, float * GGML_RESTRICT mx = nullptr) {
    FA_VEC acc[M][RN];
    for (int i = 0; i < M; i++) {
        for (int r = 0; r < RN; r++) {
            acc[i][r] = ACC ? FA_VEC_LOAD(C + i*ldc + r*EPR) : FA_VEC_ZERO;
        }
    }
    for (int64_t k = 0; k < K; k++) {
        FA_VEC b[RN];
        for (int r = 0; r < RN; r++) {
            b[r] = FA_VEC_LOAD(B + k*ldb + r*EPR);
            FA_F32_PIN(b[r]);
        }
        for (int i = 0; i < M; i++) {
            const FA_VEC a = FA_VEC_SET1(A[i*ars + k*aks]);
            for (int r = 0; r < RN; r++) {
                acc[i][r] = FA_VEC_FMA(acc[i][r], b[r], a);
            }
        }
    }
    for (int i = 0; i < M; i++) {
        for (int r = 0; r < RN; r++) {
            FA_VEC_STORE(C + i*ldc + r*EPR, acc[i][r]);
        }
    }
    if constexpr (MAX) {
        for (int r = 0; r < RN; r++) {
            FA_VEC m = FA_VEC_LOAD(mx + r*EPR);
            for (int i = 0; i < M; i++) {
                m = FA_VEC_MAX(m, acc[i][r]);
            }
            FA_VEC_STORE(mx + r*EPR, m);
        }
    }
}

// Calls f(std::integral_constant<int, m>, i) over rows [0, M) in blocks of R rows, the rest (a 64-key tile
// leaves 4 rows when R is 6) in as few 4-, 2- and 1-row blocks as possible. For the int16 micro-kernels;
// gemm_rows below spells the same blocking out: through this lambda GCC inlined the F32 micro-kernels
// differently and the F32 kernel ran 1.14x slower (the int16 ones are unaffected).
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

template <bool ACC, bool MAX = false>
static void gemm_rows(int64_t M, float * C, int64_t ldc, const float * A, int64_t ars, int64_t aks,
                      const float * B, int64_t ldb, int64_t K, float * mx = nullptr) {
    int64_t i = 0;
    for (; i + RM <= M; i += RM) {
        ukernel<RM, ACC, MAX>(C + i*ldc, ldc, A + i*ars, ars, aks, B, ldb, K, mx);
    }
    // the rest (a 64-key tile leaves 4 rows when RM is 6) in as few calls as possible
    if (RM > 4 && i + 4 <= M) {
        ukernel<4, ACC, MAX>(C + i*ldc, ldc, A + i*ars, ars, aks, B, ldb, K, mx);
        i += 4;
    }
    if (RM > 2 && i + 2 <= M) {
        ukernel<2, ACC, MAX>(C + i*ldc, ldc, A + i*ars, ars, aks, B, ldb, K, mx);
        i += 2;
    }
    for (; i < M; i++) {
        ukernel<1, ACC, MAX>(C + i*ldc, ldc, A + i*ars, ars, aks, B, ldb, K, mx);
    }
}

// S[j][i] = exp(S[j][i] - m[i]) and l[i] += S[j][i], for j < rows and i < QT
static void exp_rows(float * S, int64_t rows, const float * m, float * l) {
#if (defined(__AVX512F__) && defined(__AVX512DQ__)) || (!defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)) || \
    (defined(__ARM_NEON) && defined(__aarch64__))
    for (int r = 0; r < RN; r++) {
        const FA_VEC neg_m = FA_VEC_MUL(FA_VEC_LOAD(m + r*EPR), FA_VEC_SET1(-1.0f));
        FA_VEC sum = FA_VEC_LOAD(l + r*EPR);
        for (int64_t j = 0; j < rows; j++) {
            const FA_VEC e = FA_VEC_EXP(FA_VEC_ADD(FA_VEC_LOAD(S + j*QT + r*EPR), neg_m));
            FA_VEC_STORE(S + j*QT + r*EPR, e);
            sum = FA_VEC_ADD(sum, e);
        }
        FA_VEC_STORE(l + r*EPR, sum);
    }
#else
    for (int64_t j = 0; j < rows; j++) {
        float * s = S + j*QT;
        for (int64_t i = 0; i < QT; i++) {
            s[i] -= m[i];
        }
        ggml_vec_soft_max_f32(QT, s, s, 0.0f);
        for (int64_t i = 0; i < QT; i++) {
            l[i] += s[i];
        }
    }
#endif
}

enum mask_class : uint8_t { MASK_UNKNOWN, MASK_ZERO, MASK_SKIP, MASK_MIXED };

static constexpr uint16_t F16_NEG_INF = 0xfc00; // a masked key in the F16 mask

static mask_class classify(const ggml_tensor * mask, int64_t q0, int64_t rows, int64_t k0, int64_t cols) {
    int64_t n_ninf = 0;
    uint16_t bits = 0;
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t * p = (const uint16_t *) ((const char *) mask->data + (q0 + r)*mask->nb[1]) + k0;
        for (int64_t c = 0; c < cols; c++) {
            bits   |= p[c] & 0x7fff;    // +0 / -0
            n_ninf += p[c] == F16_NEG_INF;
        }
    }
    if (bits == 0)             return MASK_ZERO;
    if (n_ninf == rows * cols) return MASK_SKIP;
    return MASK_MIXED;
}

#ifdef BGE_M3_FA_INT16
// The int16 products serve a query tile only when each of its queries attends to at least this many keys (not
// masked): short inputs, alone or packed beside long ones in a batch, keep F32's exact attention, where it is a
// small share of their time anyway.
static constexpr int64_t INT16_MIN_KEYS = 512;

// Keys that query row q may attend to: those its mask row does not set to -inf.
static int64_t unmasked_keys(const ggml_tensor * mask, int64_t q, int64_t n_kv) {
    const uint16_t * p = (const uint16_t *) ((const char *) mask->data + q*mask->nb[1]);
    int64_t n = 0;
    for (int64_t j = 0; j < n_kv; j++) {
        n += p[j] != F16_NEG_INF;
    }
    return n;
}
#endif

// op_params slot (int32) where the graph asks for the int16 products (1): patch 0003's llama-graph.cpp sets it;
// slots 0-4 are ggml's (scale, max_bias, logit_softcap, precision, n_kv_max)
static constexpr int OP_PARAM_INT16 = 5;

static bool applicable(const ggml_tensor * dst) {
    const ggml_tensor * q    = dst->src[0];
    const ggml_tensor * k    = dst->src[1];
    const ggml_tensor * v    = dst->src[2];
    const ggml_tensor * mask = dst->src[3];
    float max_bias      = 0.0f;
    float logit_softcap = 0.0f;
    memcpy(&max_bias,      (const float *) dst->op_params + 1, sizeof(float));
    memcpy(&logit_softcap, (const float *) dst->op_params + 2, sizeof(float));
    return q->type == GGML_TYPE_F32 && k->type == GGML_TYPE_F32 && v->type == GGML_TYPE_F32 &&
           dst->src[4] == nullptr && max_bias == 0.0f && logit_softcap == 0.0f &&
           v->ne[0] % QT == 0 && k->nb[1] % sizeof(float) == 0 && v->nb[1] % sizeof(float) == 0 &&
           (mask == nullptr || (mask->type == GGML_TYPE_F16 && mask->ne[2] == 1 && mask->ne[3] == 1));
}

} // namespace fa_f32

static void ggml_compute_forward_flash_attn_ext_f32_tiled(const ggml_compute_params * params, ggml_tensor * dst) {
    using namespace fa_f32;

    const ggml_tensor * q    = dst->src[0];
    const ggml_tensor * k    = dst->src[1];
    const ggml_tensor * v    = dst->src[2];
    const ggml_tensor * mask = dst->src[3];

    GGML_TENSOR_LOCALS(int64_t, neq, q,   ne)
    GGML_TENSOR_LOCALS(size_t,  nbq, q,   nb)
    GGML_TENSOR_LOCALS(int64_t, nek, k,   ne)
    GGML_TENSOR_LOCALS(size_t,  nbk, k,   nb)
    GGML_TENSOR_LOCALS(int64_t, nev, v,   ne)
    GGML_TENSOR_LOCALS(size_t,  nbv, v,   nb)
    GGML_TENSOR_LOCALS(int64_t, ne,  dst, ne)
    GGML_TENSOR_LOCALS(size_t,  nb,  dst, nb)

    const int64_t DK = nek0;
    const int64_t DV = nev0;

    float scale = 1.0f;
    memcpy(&scale, (const float *) dst->op_params + 0, sizeof(float));

    const int64_t ldk = nbk1 / sizeof(float);
    const int64_t ldv = nbv1 / sizeof(float);

    // per-thread scratch, within what ggml_graph_plan reserves for the tiled kernel above
    const size_t per_thread = GGML_FA_TILE_Q*DK + 2*GGML_FA_TILE_Q*GGML_FA_TILE_KV + GGML_FA_TILE_Q*DV +
                              GGML_FA_TILE_KV*DV + GGML_FA_TILE_KV*DK + CACHE_LINE_SIZE_F32;
    static_assert(KT <= GGML_FA_TILE_KV && QT <= GGML_FA_TILE_Q, "scratch too small");
    float * Qt   = (float *) params->wdata + params->ith*per_thread; // [DK][QT], scaled
    float * S    = Qt + DK*QT;                                       // [KT][QT] scores, then probabilities
    float * O    = S + KT*QT;                                        // [QT][DV]
    float * Mx   = O + QT*DV;                                        // [QT] running max
    float * L    = Mx + QT;                                          // [QT] running sum
    float * Mu   = L + QT;                                           // [QT] max used for this tile

#ifdef BGE_M3_FA_INT16
    // int16 products (fa_i16): asked for by the graph and possible for this head size
    static_assert(QT == fa_i16::QT && KT == fa_i16::KT, "int16 products use the same tiles");
    const bool int16 = ggml_get_op_params_i32(dst, OP_PARAM_INT16) == 1 && DK % 16 == 0 && DV % 16 == 0;
    const int32_t qmax_q = fa_i16::operand_max(DK); // score terms per int32 sum
    const int32_t qmax_p = fa_i16::operand_max(KT); // value terms per int32 sum (one key tile)
    fa_i16::head_operands kv16;
    std::vector<int32_t> q16(int16 ? DK/2*QT : 0), p16(int16 ? KT/2*QT : 0);
    std::vector<int16_t> q_row(int16 ? DK : 0);
    std::vector<float>   qs(int16 ? QT : 0), ps(int16 ? QT : 0), pm(int16 ? QT : 0);
#endif

    const int64_t n_kt  = (nek1 + KT - 1) / KT;
    const int64_t n_qt  = (neq1 + QT - 1) / QT;
    const int64_t n_all = neq3 * n_qt * neq2;

    // mask class of each (query tile, key tile), filled on first use; the mask is the same for every head
    std::vector<uint8_t> classes(mask ? n_qt*n_kt : 0, MASK_UNKNOWN);
#ifdef BGE_M3_FA_INT16
    // per query tile, the fewest keys one of its queries attends to (-1: not counted yet); the mask is the same
    // for every head
    std::vector<int64_t> fewest_keys(int16 && mask ? n_qt : 0, -1);
    const auto int16_tile = [&](int64_t qt) {
        if (!int16) {
            return false;
        }
        if (!mask) { // one sequence: every query attends to every key
            return nek1 >= INT16_MIN_KEYS;
        }
        if (fewest_keys[qt] < 0) {
            int64_t fewest = nek1;
            for (int64_t q = qt*QT; q < std::min<int64_t>(neq1, (qt + 1)*QT); q++) {
                fewest = std::min(fewest, unmasked_keys(mask, q, nek1));
            }
            fewest_keys[qt] = fewest;
        }
        return fewest_keys[qt] >= INT16_MIN_KEYS;
    };
#endif

    if (params->ith == 0) {
        ggml_threadpool_chunk_set(params->threadpool, params->nth);
    }
    ggml_barrier(params->threadpool);

    for (int64_t u = params->ith; u < n_all; u = ggml_threadpool_chunk_add(params->threadpool, 1)) {
        // query tiles fastest: the threads work through one head's K/V at a time, which stays in cache
        const int64_t iq3 = u / (n_qt*neq2);
        const int64_t iq2 = (u / n_qt) % neq2;
        const int64_t qt  = u % n_qt;
        const int64_t q0  = qt*QT;
        const int64_t tr  = std::min<int64_t>(QT, neq1 - q0);

        const int64_t ik2 = iq2 / (neq2/nek2), ik3 = iq3 / (neq3/nek3);
        const int64_t iv2 = iq2 / (neq2/nev2), iv3 = iq3 / (neq3/nev3);

        const char * k_head = (const char *) k->data + ik2*nbk2 + ik3*nbk3;
        const char * v_head = (const char *) v->data + iv2*nbv2 + iv3*nbv3;

#ifdef BGE_M3_FA_INT16
        const bool tile16 = int16_tile(qt);
        if (tile16) {
            const int64_t head = iq3*neq2 + iq2; // identifies K and V heads alike (they follow the query head)
            if (kv16.head != head) { // this thread's first query tile of the head: its K and V in int16
                kv16.prepare(head, {k_head, nbk1}, {v_head, nbv1}, nek1, DK, DV);
            }
            fa_i16::quantize_q_tile(q16.data(), qs.data(), q_row.data(),
                                    (const char *) q->data + q0*nbq1 + iq2*nbq2 + iq3*nbq3, nbq1, tr, DK, scale, qmax_q);
        } else
#endif
        {
            for (int64_t i = 0; i < tr; i++) {
                const float * pq = (const float *) ((const char *) q->data + (q0 + i)*nbq1 + iq2*nbq2 + iq3*nbq3);
                for (int64_t d = 0; d < DK; d++) {
                    Qt[d*QT + i] = pq[d] * scale;
                }
            }
            for (int64_t d = 0; d < DK; d++) {
                for (int64_t i = tr; i < QT; i++) {
                    Qt[d*QT + i] = 0.0f;
                }
            }
        }
        for (int64_t i = 0; i < QT; i++) {
            Mx[i] = -INFINITY;
            L[i]  = 0.0f;
        }
        memset(O, 0, QT*DV*sizeof(float));

        for (int64_t t = 0; t < n_kt; t++) {
            const int64_t k0 = t*KT;
            const int64_t kt = std::min<int64_t>(KT, nek1 - k0);

            mask_class cls = MASK_ZERO;
            if (mask) {
                uint8_t & c = classes[qt*n_kt + t];
                if (c == MASK_UNKNOWN) {
                    c = classify(mask, q0, tr, k0, kt);
                }
                cls = (mask_class) c;
                if (cls == MASK_SKIP) {
                    continue;
                }
            }

            // S[j][i] = K_j . (scale Q_i), and Mu[i] = max_j S[j][i] where the vectors can take it on the way
            for (int64_t i = 0; i < QT; i++) {
                Mu[i] = -INFINITY;
            }
#ifdef BGE_M3_FA_INT16
            if (tile16) {
                const int32_t * k16 = (const int32_t *) (kv16.k.data() + k0*DK);
                const float   * ks  = kv16.ks.data() + k0;
                row_blocks<fa_i16::RM>(kt, [&](auto m, int64_t j) {
                    constexpr int M = decltype(m)::value;
                    if (cls != MASK_MIXED) {
                        fa_i16::ukernel_scores<M, true>(S + j*QT, k16 + j*DK/2, DK/2, ks + j, q16.data(), qs.data(), DK/2, Mu);
                    } else {
                        fa_i16::ukernel_scores<M, false>(S + j*QT, k16 + j*DK/2, DK/2, ks + j, q16.data(), qs.data(), DK/2, Mu);
                    }
                });
            } else
#endif
#if defined(FA_VEC_MAX)
            if (cls != MASK_MIXED) {
                gemm_rows<false, true>(kt, S, QT, (const float *) (k_head + k0*nbk1), ldk, 1, Qt, QT, DK, Mu);
            } else
#endif
            {
                gemm_rows<false>(kt, S, QT, (const float *) (k_head + k0*nbk1), ldk, 1, Qt, QT, DK);
            }
            if (cls == MASK_MIXED || !VEC_MAX) {
                if (cls == MASK_MIXED) {
                    for (int64_t i = 0; i < tr; i++) {
                        const ggml_fp16_t * mp = (const ggml_fp16_t *) ((const char *) mask->data + (q0 + i)*mask->nb[1]) + k0;
                        for (int64_t j = 0; j < kt; j++) {
                            S[j*QT + i] += GGML_CPU_FP16_TO_FP32(mp[j]);
                        }
                    }
                }
                for (int64_t j = 0; j < kt; j++) {
                    const float * s = S + j*QT;
                    for (int64_t i = 0; i < QT; i++) {
                        Mu[i] = s[i] > Mu[i] ? s[i] : Mu[i];
                    }
                }
            }

            // online softmax, one lane per query
#ifdef BGE_M3_FA_INT16
            if (tile16) {
                fa_i16::online_softmax(Mx, Mu, L, pm.data(), O, DV);
            } else
#endif
            for (int64_t i = 0; i < QT; i++) {
                const float m_new = Mu[i] > Mx[i] ? Mu[i] : Mx[i];
                const float m_use = m_new == -INFINITY ? 0.0f : m_new; // a query with every key masked so far
                if (m_new > Mx[i] && Mx[i] != -INFINITY) {
                    const float alpha = expf(Mx[i] - m_use);
                    ggml_vec_scale_f32(DV, O + i*DV, alpha);
                    L[i] *= alpha;
                }
                Mx[i] = m_new;
                Mu[i] = m_use;
            }

            // O[i] += sum_j P[j][i] V_j
#ifdef BGE_M3_FA_INT16
            if (tile16) {
                fa_i16::probabilities_tile(p16.data(), ps.data(), L, S, kt, Mu, pm.data(), qmax_p);
                const int32_t * v16 = kv16.v.data() + t*KT/2*DV;
                const float   * vs  = kv16.vs.data() + t*DV;
                for (int64_t c = 0; c < DV; c += QT) {
                    row_blocks<fa_i16::RM>(tr, [&](auto m, int64_t i) {
                        fa_i16::ukernel_values<decltype(m)::value>(O + i*DV + c, DV, p16.data() + i, ps.data() + i, v16 + c, DV, vs + c, (kt + 1)/2);
                    });
                }
                continue;
            }
#endif
            exp_rows(S, kt, Mu, L);
            const float * vt = (const float *) (v_head + k0*nbv1);
            for (int64_t c = 0; c < DV; c += QT) {
                gemm_rows<true>(tr, O + c, DV, S, 1, QT, vt + c, ldv, kt);
            }
        }

        for (int64_t i = 0; i < tr; i++) {
            ggml_vec_scale_f32(DV, O + i*DV, L[i] == 0.0f ? 0.0f : 1.0f/L[i]);
#ifdef BGE_M3_FA_INT16
            if (tile16 && L[i] != 0.0f) {
                kv16.add_value_mean(O + i*DV, DV);
            }
#endif
            // dst is permute(0, 2, 1, 3)
            memcpy((char *) dst->data + (iq3*ne2*ne1 + iq2 + (q0 + i)*ne1)*nb1, O + i*DV, nb1);
        }
    }
}
#define GGML_FA_F32_TILED 1
#endif
