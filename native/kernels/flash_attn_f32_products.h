// The F32 products of our tiled flash attention (flash_attn_f32.h): the default policy, exact F32 on every
// target the kernel has. Scores are kept transposed (keys x queries) so that K and V are read in place, never
// packed; Q is packed and pre-scaled once per query tile; both products are register-blocked FMA
// micro-kernels (flash_attn_vec.h sizes them per ISA) whose B operand is pinned in registers.
#pragma once

#include "flash_attn_vec.h"

#ifdef FA_F32_TILED
#include <cmath>
#include <cstring>

namespace fa_f32 {

#if defined(FA_VEC_MAX)
static constexpr bool VEC_MAX = true;  // the score micro-kernel can take each tile's maximum
#else
static constexpr bool VEC_MAX = false;
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

// M rows of C in RM-row micro-kernels, the rest (a 64-key tile leaves 4 rows when RM is 6) in as few 4-, 2- and
// 1-row calls as possible (row_blocks' blocking, spelt out: see there)
template <bool ACC, bool MAX = false>
static void gemm_rows(int64_t M, float * C, int64_t ldc, const float * A, int64_t ars, int64_t aks,
                      const float * B, int64_t ldb, int64_t K, float * mx = nullptr) {
    int64_t i = 0;
    for (; i + RM <= M; i += RM) {
        ukernel<RM, ACC, MAX>(C + i*ldc, ldc, A + i*ars, ars, aks, B, ldb, K, mx);
    }
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

// The online softmax's step for one key tile: mu[i] (the tile's largest score) becomes the maximum the tile's
// probabilities use, max(mx, mu) (0 for a query with every key masked so far); where it grew, O's row i (dv values)
// and l[i] are scaled by e^(mx - max).
static void rescale_rows(float * mx, float * mu, float * l, float * O, int64_t dv) {
    for (int64_t i = 0; i < QT; i++) {
        const float m_new = mu[i] > mx[i] ? mu[i] : mx[i];
        const float m_use = m_new == -INFINITY ? 0.0f : m_new; // a query with every key masked so far
        if (m_new > mx[i] && mx[i] != -INFINITY) {
            const float alpha = expf(mx[i] - m_use);
            ggml_vec_scale_f32(dv, O + i*dv, alpha);
            l[i] *= alpha;
        }
        mx[i] = m_new;
        mu[i] = m_use;
    }
}

// The F32 products for one thread of the op. The policy interface the driver calls, per query tile:
// begin_tile, then per key tile scores, rescale, values; finish_row for each query with a non-zero sum.
struct f32_products {
    static constexpr const char * name = "f32";

    int64_t DK, DV;
    float   scale;
    float * Qt;     // [DK][QT]: the query tile, scaled (per-thread scratch of the op)
    rows_f32 K, V;  // the current head's rows

    f32_products(op_dims d, float * qt_scratch) : DK(d.DK), DV(d.DV), scale(d.scale), Qt(qt_scratch) {}

    static bool fits(int64_t, int64_t) { return true; }

    // Q rows [0, tr) of the tile (row stride nbq1 bytes), of the head whose K and V rows are K and V.
    void begin_tile(int64_t /* head */, rows_f32 k, rows_f32 v, const char * q, size_t nbq1, int64_t tr) {
        K = k;
        V = v;
        for (int64_t i = 0; i < tr; i++) {
            const float * pq = (const float *) (q + i*nbq1);
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

    // S[j][0..QT) = K_{k0+j} . (scale Q) for j < kt; with take_max (a tile the mask leaves alone) also
    // mu = max(mu, max_j S[j]) where the vectors can take it. Returns whether it took it.
    bool scores(float * S, int64_t k0, int64_t kt, bool take_max, float * mu) {
        const float * k = (const float *) (K.data + k0*K.stride);
        const int64_t ldk = K.stride / sizeof(float);
        if (VEC_MAX && take_max) {
            gemm_rows<false, VEC_MAX>(kt, S, QT, k, ldk, 1, Qt, QT, DK, mu);
            return true;
        }
        gemm_rows<false>(kt, S, QT, k, ldk, 1, Qt, QT, DK);
        return false;
    }

    void rescale(float * mx, float * mu, float * l, float * O) const { rescale_rows(mx, mu, l, O, DV); }

    // O[i] += sum_j e^(S[j][i] - mu[i]) V_{k0+j} for the tr queries, l[i] += the tile's sum; S is overwritten.
    void values(float * O, float * S, int64_t /* t */, int64_t k0, int64_t kt, int64_t tr, const float * mu, float * l) {
        exp_rows(S, kt, mu, l);
        const float * vt = (const float *) (V.data + k0*V.stride);
        const int64_t ldv = V.stride / sizeof(float);
        for (int64_t c = 0; c < DV; c += QT) {
            gemm_rows<true>(tr, O + c, DV, S, 1, QT, vt + c, ldv, kt);
        }
    }

    void finish_row(float *) const {}
};

} // namespace fa_f32
#endif
