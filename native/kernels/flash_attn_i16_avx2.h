// Int16 products of our tiled flash attention on AVX2 hosts (i16_products, a policy of flash_attn_f32.h's
// driver, taken when the context asks for GGML_CPU_ATTN_PRODUCTS_INT16). Softmax, its running max and sum, and
// the output stay F32; only the two products run on 16-bit integers:
//
//   scores  S[j][i] = ks[j] * qs[i] * sum_d K16[j][d] * Q16[i][d]   (per-key and per-query scales)
//   values  O[i][d] += ps[i] * vs[d] * sum_j P16[j][i] * V16[j][d]  (per-query and per-column scales, per key tile)
//
// VPMADDWD multiplies 16 pairs of int16 and adds neighbours into 8 int32 lanes: 16 products per instruction
// where an 8-lane FMA does 8, at the same issue rate on Zen 3 (two per cycle, measured). Each product is summed
// in int32 over one 64-term dot product (the head size for scores, the key tile for values), so
// 64 * qmax^2 < 2^31 bounds every operand to +-5,792 (12.5 bits), relative to its row's (or column's) largest.
// That is 45x finer than the int8 scores that failed the 0.9999 fidelity gate (native/patches/README.md): against
// F32 attention at 4,096 tokens, random Q/K/V, the outputs' cosines are 1 - 1e-7 (1 - 1.2e-6 with 3x peakier Q).
#pragma once

#include "flash_attn_isa.h"
#include "flash_attn_vec.h"

#ifdef BGE_M3_FA_INT16
#include <immintrin.h>
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>

namespace fa_i16 {

static constexpr int LANES = 8;  // int32 / F32 lanes of a ymm
static constexpr int QT    = 16; // queries per tile, as the F32 kernel's on AVX2 (2 ymm)
static constexpr int KT    = 64; // keys per tile, as the F32 kernel's
static_assert(QT == fa_f32::QT && KT == fa_f32::KT, "the driver's tiles");
static constexpr int RM    = 6;  // micro-kernel rows: 12 accumulators + 2 B + 1 broadcast A + 1 product of 16 ymm

// Largest operand magnitude for which n pairs-of-products summed in int32 cannot overflow.
static inline int32_t operand_max(int64_t n) {
    return (int32_t) std::floor(std::sqrt(2147483647.0 / (double) n));
}

static inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline __m256 vabs(__m256 x) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

// Packs the low int16 of a's lanes with those of b's: int32 lane l holds (a[l], b[l]) as an int16 pair.
static inline __m256i pair_lanes(__m256i a, __m256i b) {
    return _mm256_blend_epi16(a, _mm256_slli_epi32(b, 16), 0xAA);
}

// q[0..n) = round((x[0..n) - sub[0..n)) * mul / scale) with scale chosen so |q| <= qmax (sub: nullptr for none);
// returns scale / mul (0 for a zero row). n is a multiple of 16; q is written as consecutive int16 (pairs of
// neighbours form the int32 operands).
static inline float quantize_row(int16_t * q, const float * x, const float * sub, int64_t n, float mul, int32_t qmax) {
    const auto load = [&](int64_t d) {
        return sub ? _mm256_sub_ps(_mm256_loadu_ps(x + d), _mm256_loadu_ps(sub + d)) : _mm256_loadu_ps(x + d);
    };
    __m256 m = _mm256_setzero_ps();
    for (int64_t d = 0; d < n; d += LANES) {
        m = _mm256_max_ps(m, vabs(load(d)));
    }
    const float amax = hmax(m) * std::fabs(mul);
    const float inv  = amax > 0.0f ? (float) qmax / amax * mul : 0.0f;
    const __m256 vinv = _mm256_set1_ps(inv);
    for (int64_t d = 0; d < n; d += 2*LANES) {
        const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(load(d), vinv));
        const __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(load(d + LANES), vinv));
        // packs interleaves 128-bit halves (a0-3 b0-3 a4-7 b4-7); the permute restores a0-7 b0-7
        _mm256_storeu_si256((__m256i *) (q + d), _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8));
    }
    return amax > 0.0f ? amax / (float) qmax : 0.0f;
}

// mean[0..n) = the mean of rows [0, rows) of x (row stride ld floats); n a multiple of 8
static void column_means(float * mean, const char * x, size_t ld, int64_t rows, int64_t n) {
    for (int64_t c = 0; c < n; c += LANES) {
        __m256 sum = _mm256_setzero_ps();
        for (int64_t j = 0; j < rows; j++) {
            sum = _mm256_add_ps(sum, _mm256_loadu_ps((const float *) (x + j*ld) + c));
        }
        _mm256_storeu_ps(mean + c, _mm256_mul_ps(sum, _mm256_set1_ps(1.0f / (float) rows)));
    }
}

// V16 of one key tile: rows [0, kt) of V (row stride ldv bytes) less mean, column scales to vs[0..DV).
static void quantize_v_tile(int32_t * v16, float * vs, const char * v, size_t ldv, const float * mean, int64_t kt, int64_t DV,
                            int32_t qmax) {
    for (int64_t c = 0; c < DV; c += LANES) {
        const __m256 mu = _mm256_loadu_ps(mean + c);
        const auto load = [&](int64_t j) { return _mm256_sub_ps(_mm256_loadu_ps((const float *) (v + j*ldv) + c), mu); };
        __m256 m = _mm256_setzero_ps();
        for (int64_t j = 0; j < kt; j++) {
            m = _mm256_max_ps(m, vabs(load(j)));
        }
        const __m256 inv = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps((float) qmax), m),
                                         _mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ)); // 0 for a zero column
        _mm256_storeu_ps(vs + c, _mm256_mul_ps(m, _mm256_set1_ps(1.0f / (float) qmax)));
        for (int64_t j = 0; j < kt; j += 2) {
            const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(load(j), inv));
            const __m256i b = j + 1 < kt ? _mm256_cvtps_epi32(_mm256_mul_ps(load(j + 1), inv)) : _mm256_setzero_si256();
            _mm256_storeu_si256((__m256i *) (v16 + (j/2)*DV + c), pair_lanes(a, b));
        }
    }
}

// One head's K and V in int16, made once per head by each thread that works on it. Both are centred first
// (their mean over the keys taken out, per column): keys usually share a large common part (biases), which
// would otherwise spend the 12.5 bits on what every key has. Exact: a score shift common to all keys cancels in
// the softmax, and V's mean comes back with add_value_mean.
struct head_operands {
    int64_t head = -1;
    std::vector<int16_t> k;      // [n_keys][DK], rows of K - mean
    std::vector<float>   ks;     // [n_keys] per-key scale
    std::vector<int32_t> v;      // per key tile [KT/2][DV]: int16 pairs (key 2p, key 2p+1) of one column of V - mean
    std::vector<float>   vs;     // per key tile [DV] per-column scale
    std::vector<float>   k_mean; // [DK]
    std::vector<float>   v_mean; // [DV]

    void prepare(int64_t id, fa_f32::rows_f32 K, fa_f32::rows_f32 V, int64_t n_keys, int64_t DK, int64_t DV) {
        head = id;
        const int32_t qmax_k = operand_max(DK);
        const int32_t qmax_v = operand_max(KT);
        const int64_t n_kt   = (n_keys + KT - 1) / KT;
        k.resize(n_keys*DK);
        ks.resize(n_keys);
        v.resize(n_kt*KT/2*DV);
        vs.resize(n_kt*DV);
        k_mean.resize(DK);
        v_mean.resize(DV);
        column_means(k_mean.data(), K.data, K.stride, n_keys, DK);
        column_means(v_mean.data(), V.data, V.stride, n_keys, DV);
        for (int64_t j = 0; j < n_keys; j++) {
            ks[j] = quantize_row(k.data() + j*DK, (const float *) (K.data + j*K.stride), k_mean.data(), DK, 1.0f, qmax_k);
        }
        for (int64_t t = 0; t < n_kt; t++) {
            quantize_v_tile(v.data() + t*KT/2*DV, vs.data() + t*DV, V.data + t*KT*V.stride, V.stride, v_mean.data(),
                            std::min<int64_t>(KT, n_keys - t*KT), DV, qmax_v);
        }
    }

    // o[0..DV) += the mean taken out of V (after the softmax's division: the weights sum to 1)
    void add_value_mean(float * o, int64_t DV) const {
        for (int64_t c = 0; c < DV; c += LANES) {
            _mm256_storeu_ps(o + c, _mm256_add_ps(_mm256_loadu_ps(o + c), _mm256_loadu_ps(v_mean.data() + c)));
        }
    }
};

// Q16 of one query tile: q16[p][i] = (Q[i][2p], Q[i][2p+1]) * scale / qs[i], queries past tr zero.
static void quantize_q_tile(int32_t * q16, float * qs, int16_t * row, const char * q, size_t nbq1, int64_t tr, int64_t DK,
                            float scale, int32_t qmax) {
    for (int64_t i = 0; i < QT; i++) {
        if (i < tr) {
            qs[i] = quantize_row(row, (const float *) (q + i*nbq1), nullptr, DK, scale, qmax);
        } else {
            qs[i] = 0.0f;
            memset(row, 0, DK*sizeof(int16_t));
        }
        const int32_t * pairs = (const int32_t *) row;
        for (int64_t p = 0; p < DK/2; p++) {
            q16[p*QT + i] = pairs[p];
        }
    }
}

// e^x for x <= 0 (softmax arguments): relative error below 3e-6, plenty for probabilities kept to 12.5 bits;
// 0 from -88 down (and for -inf), where ggml's exp gives denormals through a slower path. 13 operations.
static inline __m256 exp_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-88.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693147181f), x); // |r| <= ln2 / 2
    __m256 p = _mm256_set1_ps(1.0f / 120);                                  // e^r to the r^5 term
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    // 2^n for n in [-127, 0] as exponent bits; n = -127 makes +0
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// One key tile's softmax numerators for the values product: P[j][i] = e^(S[j][i] - m[i]) for kt rows of
// scores S[j][0..QT), added to l[i] and written as int16 pairs p16[p][i] = (P[2p][i], P[2p+1][i]) scaled by
// qmax / pm[i], where pm[i] = e^(max_j S[j][i] - m[i]) is the tile's largest; ps[i] = pm[i] / qmax.
static void probabilities_tile(int32_t * p16, float * ps, float * l, const float * S, int64_t kt, const float * m,
                               const float * pm, int32_t qmax) {
    for (int r = 0; r < 2; r++) {
        const __m256 top   = _mm256_loadu_ps(pm + r*LANES);
        const __m256 inv   = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps((float) qmax), top),
                                           _mm256_cmp_ps(top, _mm256_setzero_ps(), _CMP_GT_OQ)); // 0: every key masked
        const __m256 neg_m = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_loadu_ps(m + r*LANES));
        __m256 sum = _mm256_loadu_ps(l + r*LANES);
        for (int64_t j = 0; j < kt; j += 2) {
            const __m256 e0 = exp_nonpositive(_mm256_add_ps(_mm256_loadu_ps(S + j*QT + r*LANES), neg_m));
            const __m256 e1 = j + 1 < kt ? exp_nonpositive(_mm256_add_ps(_mm256_loadu_ps(S + (j + 1)*QT + r*LANES), neg_m))
                                         : _mm256_setzero_ps();
            sum = _mm256_add_ps(sum, _mm256_add_ps(e0, e1));
            _mm256_storeu_si256((__m256i *) (p16 + (j/2)*QT + r*LANES),
                                pair_lanes(_mm256_cvtps_epi32(_mm256_mul_ps(e0, inv)), _mm256_cvtps_epi32(_mm256_mul_ps(e1, inv))));
        }
        _mm256_storeu_ps(l + r*LANES, sum);
        _mm256_storeu_ps(ps + r*LANES, _mm256_mul_ps(top, _mm256_set1_ps(1.0f / (float) qmax)));
    }
}

// The online softmax's step for one key tile, all QT queries in vectors (the F32 kernel's scalar loop, with
// libm's expf twice per query, took ~3% of this kernel's time): mu[i] (the tile's largest score) becomes the
// max used for its probabilities, m_use = max(mx, mu) (0 for a query with every key masked so far); where the
// max grew, O's row i and l[i] are scaled by e^(mx - m_use); pm[i] = e^(mu - m_use), the tile's largest
// probability (0 when all its keys are masked). The same exp as the probabilities, so their largest is pm.
static void online_softmax(float * mx, float * mu, float * l, float * pm, float * O, int64_t dv) {
    for (int r = 0; r < 2; r++) {
        const __m256 ninf  = _mm256_set1_ps(-INFINITY);
        const __m256 m_old = _mm256_loadu_ps(mx + r*LANES);
        const __m256 m_top = _mm256_loadu_ps(mu + r*LANES);
        const __m256 m_new = _mm256_max_ps(m_top, m_old);
        const __m256 m_use = _mm256_andnot_ps(_mm256_cmp_ps(m_new, ninf, _CMP_EQ_OQ), m_new);
        const __m256 grew  = _mm256_and_ps(_mm256_cmp_ps(m_new, m_old, _CMP_GT_OQ), _mm256_cmp_ps(m_old, ninf, _CMP_NEQ_OQ));
        const __m256 alpha = exp_nonpositive(_mm256_sub_ps(m_old, m_use));
        alignas(32) float a[LANES];
        _mm256_store_ps(a, alpha);
        for (int mask = _mm256_movemask_ps(grew); mask != 0; mask &= mask - 1) {
            const int    i  = __builtin_ctz(mask);
            const __m256 ai = _mm256_set1_ps(a[i]);
            float *      o  = O + (r*LANES + i)*dv;
            for (int64_t c = 0; c < dv; c += LANES) {
                _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_loadu_ps(o + c), ai));
            }
        }
        const __m256 l_old = _mm256_loadu_ps(l + r*LANES);
        _mm256_storeu_ps(l + r*LANES, _mm256_blendv_ps(l_old, _mm256_mul_ps(l_old, alpha), grew));
        _mm256_storeu_ps(pm + r*LANES, exp_nonpositive(_mm256_sub_ps(m_top, m_use)));
        _mm256_storeu_ps(mx + r*LANES, m_new);
        _mm256_storeu_ps(mu + r*LANES, m_use);
    }
}

// Keeps a loaded vector in a register (as the F32 kernel's FA_F32_PIN): GCC otherwise folds the B loads into
// every VPMADDWD as a memory operand.
#if defined(__GNUC__)
#define FA_I16_PIN(x) __asm__("" : "+x"(x))
#else
#define FA_I16_PIN(x)
#endif

// int32 x 8 as GCC's vector type: the accumulator arrays stay in registers (as __m256i, whose operations
// convert between element types, GCC kept them in memory)
typedef int32_t v8i32 __attribute__((vector_size(32)));

static inline v8i32 madd(int32_t a, __m256i b) {
    return (v8i32) _mm256_madd_epi16(_mm256_set1_epi32(a), b);
}

// acc[i][0..2) = sum_p madd(A(i, p), B[p][0..16)) for i < M: A(i, p) = a[i*ars + p*aps], an int16 pair
// broadcast to every lane; B[p] = b + p*ldb, 16 int32 lanes of int16 pairs. Both products' micro-kernel.
template <int M>
static inline void madd_tile(v8i32 (&acc)[M][2], const int32_t * a, int64_t ars, int64_t aps,
                             const int32_t * b, int64_t ldb, int64_t np) {
    for (int64_t p = 0; p < np; p++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *) (b + p*ldb));
        __m256i b1 = _mm256_loadu_si256((const __m256i *) (b + p*ldb + LANES));
        FA_I16_PIN(b0);
        FA_I16_PIN(b1);
        for (int i = 0; i < M; i++) {
            acc[i][0] += madd(a[i*ars + p*aps], b0);
            acc[i][1] += madd(a[i*ars + p*aps], b1);
        }
    }
}

// S[i][0..QT) = ks[i] * qs[0..QT) * sum_p madd(K(i, p), Q16[p][0..QT)) for M keys, K(i, p) the int16 pair p of
// key i's row (k: int32 pairs, row stride ldk pairs); with MAX, mx[0..QT) = max(mx, max_i S[i]).
template <int M, bool MAX>
static inline void ukernel_scores(float * S, const int32_t * k, int64_t ldk, const float * ks,
                                  const int32_t * q16, const float * qs, int64_t np, float * mx) {
    v8i32 acc[M][2] = {};
    madd_tile<M>(acc, k, ldk, 1, q16, QT, np);
    const __m256 q0 = _mm256_loadu_ps(qs), q1 = _mm256_loadu_ps(qs + LANES);
    __m256 m0 = _mm256_loadu_ps(mx), m1 = _mm256_loadu_ps(mx + LANES);
    for (int i = 0; i < M; i++) {
        const __m256 kf = _mm256_set1_ps(ks[i]);
        const __m256 s0 = _mm256_mul_ps(_mm256_cvtepi32_ps((__m256i) acc[i][0]), _mm256_mul_ps(q0, kf));
        const __m256 s1 = _mm256_mul_ps(_mm256_cvtepi32_ps((__m256i) acc[i][1]), _mm256_mul_ps(q1, kf));
        _mm256_storeu_ps(S + i*QT, s0);
        _mm256_storeu_ps(S + i*QT + LANES, s1);
        if constexpr (MAX) {
            m0 = _mm256_max_ps(m0, s0);
            m1 = _mm256_max_ps(m1, s1);
        }
    }
    if constexpr (MAX) {
        _mm256_storeu_ps(mx, m0);
        _mm256_storeu_ps(mx + LANES, m1);
    }
}

// O[i][0..16) += ps[i] * vs[0..16) * sum_p madd(P16[p][i], V16[p][0..16)) for M queries (O row stride ldo),
// p16 at the tile's first query, v16 and vs at the first of the 16 columns (v16 row stride ldv pairs).
template <int M>
static inline void ukernel_values(float * O, int64_t ldo, const int32_t * p16, const float * ps,
                                  const int32_t * v16, int64_t ldv, const float * vs, int64_t np) {
    v8i32 acc[M][2] = {};
    madd_tile<M>(acc, p16, 1, QT, v16, ldv, np);
    const __m256 v0 = _mm256_loadu_ps(vs), v1 = _mm256_loadu_ps(vs + LANES);
    for (int i = 0; i < M; i++) {
        const __m256 pf = _mm256_set1_ps(ps[i]);
        float * o = O + i*ldo;
        _mm256_storeu_ps(o,         _mm256_fmadd_ps(_mm256_cvtepi32_ps((__m256i) acc[i][0]), _mm256_mul_ps(v0, pf), _mm256_loadu_ps(o)));
        _mm256_storeu_ps(o + LANES, _mm256_fmadd_ps(_mm256_cvtepi32_ps((__m256i) acc[i][1]), _mm256_mul_ps(v1, pf), _mm256_loadu_ps(o + LANES)));
    }
}

// The int16 products for one thread of the op (the driver's policy interface: see fa_f32::f32_products).
struct i16_products {
    static constexpr const char * name = "int16";

    int64_t DK, DV, n_kv;
    float   scale;
    int32_t qmax_q;             // score terms per int32 sum: the head size
    int32_t qmax_p;             // value terms per int32 sum: one key tile
    head_operands kv16;         // the current head's K and V, made by this thread when it starts on the head
    std::vector<int32_t> q16;   // [DK/2][QT] the query tile's int16 pairs
    std::vector<int32_t> p16;   // [KT/2][QT] a key tile's probabilities as int16 pairs
    std::vector<int16_t> q_row; // [DK] one query row being quantised
    std::vector<float>   qs, ps, pm; // [QT] per query: Q's scale, the probabilities' scale, the tile's largest

    i16_products(fa_f32::op_dims d, float * /* F32 scratch: not used */)
        : DK(d.DK), DV(d.DV), n_kv(d.n_kv), scale(d.scale), qmax_q(operand_max(d.DK)), qmax_p(operand_max(KT)),
          q16(d.DK/2*QT), p16(KT/2*QT), q_row(d.DK), qs(QT), ps(QT), pm(QT) {}

    // whole int16 pairs, in vectors of 16
    static bool fits(int64_t dk, int64_t dv) { return dk % 16 == 0 && dv % 16 == 0; }

    void begin_tile(int64_t head, fa_f32::rows_f32 K, fa_f32::rows_f32 V, const char * q, size_t nbq1, int64_t tr) {
        if (kv16.head != head) {
            kv16.prepare(head, K, V, n_kv, DK, DV);
        }
        quantize_q_tile(q16.data(), qs.data(), q_row.data(), q, nbq1, tr, DK, scale, qmax_q);
    }

    bool scores(float * S, int64_t k0, int64_t kt, bool take_max, float * mu) {
        const int32_t * k16 = (const int32_t *) (kv16.k.data() + k0*DK);
        const float   * ks  = kv16.ks.data() + k0;
        fa_f32::row_blocks<RM>(kt, [&](auto m, int64_t j) {
            constexpr int M = decltype(m)::value;
            if (take_max) {
                ukernel_scores<M, true>(S + j*QT, k16 + j*DK/2, DK/2, ks + j, q16.data(), qs.data(), DK/2, mu);
            } else {
                ukernel_scores<M, false>(S + j*QT, k16 + j*DK/2, DK/2, ks + j, q16.data(), qs.data(), DK/2, mu);
            }
        });
        return take_max;
    }

    void rescale(float * mx, float * mu, float * l, float * O) {
        online_softmax(mx, mu, l, pm.data(), O, DV);
    }

    void values(float * O, float * S, int64_t t, int64_t /* k0 */, int64_t kt, int64_t tr, const float * mu, float * l) {
        probabilities_tile(p16.data(), ps.data(), l, S, kt, mu, pm.data(), qmax_p);
        const int32_t * v16 = kv16.v.data() + t*KT/2*DV;
        const float   * vs  = kv16.vs.data() + t*DV;
        for (int64_t c = 0; c < DV; c += QT) {
            fa_f32::row_blocks<RM>(tr, [&](auto m, int64_t i) {
                ukernel_values<decltype(m)::value>(O + i*DV + c, DV, p16.data() + i, ps.data() + i, v16 + c, DV, vs + c, (kt + 1)/2);
            });
        }
    }

    // the mean taken out of V, after the softmax's division (the weights sum to 1)
    void finish_row(float * o) const { kv16.add_value_mean(o, DV); }
};

} // namespace fa_i16
#endif
