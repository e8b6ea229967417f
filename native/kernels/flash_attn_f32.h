// Tiled flash attention for the CPU with F32 Q, K and V (patch 0003 includes this file into ggml-cpu/ops.cpp,
// after ggml's own flash-attention kernels, and calls ggml_compute_forward_flash_attn_ext_f32_tiled when
// fa_f32::applicable). It relies on what ops.cpp has in scope: ggml's tensor and thread-pool API, the
// GGML_F32_VEC macros and ggml_v_expf (vec.h / simd-mappings.h), GGML_FA_TILE_Q/KV (common.h).
//
// For prefill with F32 K/V (the no-KV-cache encoder path, where llama.cpp would otherwise cast K/V to F16).
// ggml's tiled kernel packs and converts every K/V tile once per query tile with scalar loops and keeps scores
// row-major, so on x86 it runs far below the FMA units' rate. This driver keeps scores transposed (keys x
// queries, one SIMD lane per query), runs the online softmax's running max and sum across lanes, classifies each
// mask tile once (all zero: not read again; all -inf: skipped, so sequences packed in one batch only pay for their
// own blocks) and splits the work over threads by (head, query tile), query tiles fastest, so both threads share
// one head's K/V in cache. The two products (Q.K^T and P.V) are a policy (flash_attn_products.h): F32
// (flash_attn_f32_products.h), or where the context asks and the build has them, approximate ones such as int16
// (flash_attn_i16_avx2.h), which serve only query tiles that attend to many keys (APPROX_MIN_KEYS).
#pragma once

#include "flash_attn_products.h"

#ifdef FA_F32_TILED
#include <type_traits>
#include <vector>

namespace fa_f32 {

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

// Approximate products (anything but F32) serve a query tile only when each of its queries attends to at least this
// many keys (not masked): short inputs, alone or packed beside long ones in a batch, keep F32's exact attention,
// where it is a small share of their time anyway.
static constexpr int64_t APPROX_MIN_KEYS = 512;

// Keys that query row q may attend to: those its mask row does not set to -inf.
static int64_t unmasked_keys(const ggml_tensor * mask, int64_t q, int64_t n_kv) {
    const uint16_t * p = (const uint16_t *) ((const char *) mask->data + q*mask->nb[1]);
    int64_t n = 0;
    for (int64_t j = 0; j < n_kv; j++) {
        n += p[j] != F16_NEG_INF;
    }
    return n;
}

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

// One thread's scratch for a query tile (within what ggml_graph_plan reserves for ggml's tiled kernel).
struct tile_state {
    float * S;  // [KT][QT] scores, then probabilities
    float * O;  // [QT][DV] output rows
    float * Mx; // [QT] running max
    float * L;  // [QT] running sum
    float * Mu; // [QT] max used for this key tile
};

// The query tile qt of head (iq2, iq3) with products P, written to dst.
template <typename P>
static void attend_query_tile(P & products, const tile_state & st, std::vector<uint8_t> & classes,
                              const ggml_tensor * dst, int64_t iq2, int64_t iq3, int64_t qt) {
    const ggml_tensor * q    = dst->src[0];
    const ggml_tensor * k    = dst->src[1];
    const ggml_tensor * v    = dst->src[2];
    const ggml_tensor * mask = dst->src[3];
    const int64_t n_q  = q->ne[1];
    const int64_t n_kv = k->ne[1];
    const int64_t DV   = v->ne[0];
    const int64_t n_kt = (n_kv + KT - 1) / KT;
    const int64_t q0   = qt*QT;
    const int64_t tr   = std::min<int64_t>(QT, n_q - q0);

    // K and V heads follow the query head (grouped-query attention repeats them)
    const int64_t ik2 = iq2 / (q->ne[2]/k->ne[2]), ik3 = iq3 / (q->ne[3]/k->ne[3]);
    const int64_t iv2 = iq2 / (q->ne[2]/v->ne[2]), iv3 = iq3 / (q->ne[3]/v->ne[3]);
    const rows_f32 k_head = { (const char *) k->data + ik2*k->nb[2] + ik3*k->nb[3], k->nb[1] };
    const rows_f32 v_head = { (const char *) v->data + iv2*v->nb[2] + iv3*v->nb[3], v->nb[1] };

    products.begin_tile(iq3*q->ne[2] + iq2, k_head, v_head, (const char *) q->data + q0*q->nb[1] + iq2*q->nb[2] + iq3*q->nb[3],
                        q->nb[1], tr);
    for (int64_t i = 0; i < QT; i++) {
        st.Mx[i] = -INFINITY;
        st.L[i]  = 0.0f;
    }
    memset(st.O, 0, QT*DV*sizeof(float));

    for (int64_t t = 0; t < n_kt; t++) {
        const int64_t k0 = t*KT;
        const int64_t kt = std::min<int64_t>(KT, n_kv - k0);

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

        // S[j][i] = K_j . (scale Q_i), and Mu[i] = max_j S[j][i] where the products can take it on the way
        for (int64_t i = 0; i < QT; i++) {
            st.Mu[i] = -INFINITY;
        }
        const bool took_max = products.scores(st.S, k0, kt, cls != MASK_MIXED, st.Mu);
        if (cls == MASK_MIXED) {
            for (int64_t i = 0; i < tr; i++) {
                const ggml_fp16_t * mp = (const ggml_fp16_t *) ((const char *) mask->data + (q0 + i)*mask->nb[1]) + k0;
                for (int64_t j = 0; j < kt; j++) {
                    st.S[j*QT + i] += GGML_CPU_FP16_TO_FP32(mp[j]);
                }
            }
        }
        if (!took_max) {
            for (int64_t j = 0; j < kt; j++) {
                const float * s = st.S + j*QT;
                for (int64_t i = 0; i < QT; i++) {
                    st.Mu[i] = s[i] > st.Mu[i] ? s[i] : st.Mu[i];
                }
            }
        }

        // online softmax, one lane per query, then O[i] += sum_j P[j][i] V_j
        products.rescale(st.Mx, st.Mu, st.L, st.O);
        products.values(st.O, st.S, t, k0, kt, tr, st.Mu, st.L);
    }

    for (int64_t i = 0; i < tr; i++) {
        float * o = st.O + i*DV;
        ggml_vec_scale_f32(DV, o, st.L[i] == 0.0f ? 0.0f : 1.0f/st.L[i]);
        if (st.L[i] != 0.0f) {
            products.finish_row(o);
        }
        // dst is permute(0, 2, 1, 3)
        memcpy((char *) dst->data + (iq3*dst->ne[2]*dst->ne[1] + iq2 + (q0 + i)*dst->ne[1])*dst->nb[1], o, dst->nb[1]);
    }
}

// The whole op on this thread's share of (head, query tile) units: F32 products, or APPROX (another policy) for the
// query tiles whose every query attends to APPROX_MIN_KEYS keys or more.
template <typename APPROX>
static void attend(const ggml_compute_params * params, ggml_tensor * dst) {
    const ggml_tensor * q    = dst->src[0];
    const ggml_tensor * k    = dst->src[1];
    const ggml_tensor * v    = dst->src[2];
    const ggml_tensor * mask = dst->src[3];
    const int64_t DK   = k->ne[0];
    const int64_t DV   = v->ne[0];
    const int64_t n_q  = q->ne[1];
    const int64_t n_kv = k->ne[1];

    op_dims dims = { DK, DV, n_kv, 1.0f };
    memcpy(&dims.scale, (const float *) dst->op_params + 0, sizeof(float));

    // per-thread scratch, within what ggml_graph_plan reserves for ggml's tiled kernel
    const size_t per_thread = GGML_FA_TILE_Q*DK + 2*GGML_FA_TILE_Q*GGML_FA_TILE_KV + GGML_FA_TILE_Q*DV +
                              GGML_FA_TILE_KV*DV + GGML_FA_TILE_KV*DK + CACHE_LINE_SIZE_F32;
    static_assert(KT <= GGML_FA_TILE_KV && QT <= GGML_FA_TILE_Q, "scratch too small");
    float * Qt = (float *) params->wdata + params->ith*per_thread; // [DK][QT]: the F32 products' query tile
    float * S  = Qt + DK*QT;
    float * O  = S + KT*QT;
    float * Mx = O + QT*DV;
    float * L  = Mx + QT;
    const tile_state st = { S, O, Mx, L, L + QT };

    constexpr bool approx = !std::is_same_v<APPROX, f32_products>;
    f32_products exact(dims, Qt);
    APPROX       other(dims, Qt); // a second, unused f32_products when there is no other policy

    const int64_t n_kt  = (n_kv + KT - 1) / KT;
    const int64_t n_qt  = (n_q + QT - 1) / QT;
    const int64_t n_all = q->ne[3] * n_qt * q->ne[2];

    // mask class of each (query tile, key tile), filled on first use; the mask is the same for every head
    std::vector<uint8_t> classes(mask ? n_qt*n_kt : 0, MASK_UNKNOWN);
    // per query tile, the fewest keys one of its queries attends to (-1: not counted yet)
    std::vector<int64_t> fewest_keys(approx && mask ? n_qt : 0, -1);
    const auto long_enough = [&](int64_t qt) {
        if (!mask) { // one sequence: every query attends to every key
            return n_kv >= APPROX_MIN_KEYS;
        }
        if (fewest_keys[qt] < 0) {
            int64_t fewest = n_kv;
            for (int64_t iq = qt*QT; iq < std::min<int64_t>(n_q, (qt + 1)*QT); iq++) {
                fewest = std::min(fewest, unmasked_keys(mask, iq, n_kv));
            }
            fewest_keys[qt] = fewest;
        }
        return fewest_keys[qt] >= APPROX_MIN_KEYS;
    };

    if (params->ith == 0) {
        ggml_threadpool_chunk_set(params->threadpool, params->nth);
    }
    ggml_barrier(params->threadpool);

    for (int64_t u = params->ith; u < n_all; u = ggml_threadpool_chunk_add(params->threadpool, 1)) {
        // query tiles fastest: the threads work through one head's K/V at a time, which stays in cache
        const int64_t iq3 = u / (n_qt*q->ne[2]);
        const int64_t iq2 = (u / n_qt) % q->ne[2];
        const int64_t qt  = u % n_qt;
        if (approx && long_enough(qt)) {
            attend_query_tile(other, st, classes, dst, iq2, iq3, qt);
        } else {
            attend_query_tile(exact, st, classes, dst, iq2, iq3, qt);
        }
    }
}

} // namespace fa_f32

static void ggml_compute_forward_flash_attn_ext_f32_tiled(const ggml_compute_params * params, ggml_tensor * dst) {
    fa_f32::with_products(params->attn_products, dst->src[1]->ne[0], dst->src[2]->ne[0], [&](auto policy) {
        fa_f32::attend<typename decltype(policy)::type>(params, dst);
    });
}
#define GGML_FA_F32_TILED 1
#endif
