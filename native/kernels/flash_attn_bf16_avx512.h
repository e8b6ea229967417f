// BF16 values product of our tiled flash attention on AVX512-BF16 hosts (bf16_products, a policy of
// flash_attn_f32.h's driver, taken when the context asks for GGML_CPU_ATTN_PRODUCTS_BF16). The scores Q.K^T, the
// softmax with its running max and sum, and the output stay F32; P.V runs on BF16 operands with F32 sums:
//
//   O[i][c] += sum_p (P[2p][i], P[2p+1][i]) . (V[2p][c], V[2p+1][c])
//
// VDPBF16PS multiplies 16 pairs of BF16 and adds each pair's two products into an F32 lane: 32 products per
// instruction where an FMA does 16. Rounding the probabilities and V to 8 significant bits costs little: their
// errors average out over the keys (against F32 attention at 4,096 tokens, random Q/K/V, the rows' cosines are
// 1 - 8e-6, with 3x peakier Q too). BF16 scores as well ran faster but not within the 0.9999 gate with peakier Q
// (native/patches/README.md, "Tried and not kept").
#pragma once

#include "flash_attn_f32_products.h"
#include "flash_attn_isa.h"

#ifdef BGE_M3_FA_BF16
#include <immintrin.h>
#include <cstdint>
#include <vector>

namespace fa_bf16 {

using fa_f32::QT; // 64 queries per tile: 4 zmm
using fa_f32::KT;
static constexpr int LANES = 16;         // F32 lanes of a zmm
static constexpr int RN    = QT / LANES; // vectors per micro-kernel row
static constexpr int RM    = 4;          // micro-kernel rows: 16 accumulators + 4 B + 1 broadcast A of 32 zmm

// Lane l of the result holds (x0[l], x1[l]) as BF16 (round to nearest even), x0 in the low half: the operand
// VDPBF16PS pairs up.
static inline __m512i pair_lanes(__m512 x0, __m512 x1) {
    // VCVTNE2PS2BF16 puts x0's 16 values below x1's; the permute interleaves them
    alignas(64) static const uint16_t order[32] = { 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31 };
    return _mm512_permutexvar_epi16(_mm512_load_si512(order), (__m512i) _mm512_cvtne2ps_pbh(x1, x0));
}

// O[i][0..QT) += sum_p P(i, p) . V[p][0..QT) for M queries (O row stride ldo): P(i, p) = p16[p*QT + i], a BF16 pair
// broadcast to every lane; V[p] = v16 + p*ldv, QT lanes of BF16 pairs.
template <int M>
static inline void ukernel_values(float * O, int64_t ldo, const uint32_t * p16, const uint32_t * v16, int64_t ldv, int64_t np) {
    __m512 acc[M][RN];
    for (int i = 0; i < M; i++) {
        for (int r = 0; r < RN; r++) {
            acc[i][r] = _mm512_loadu_ps(O + i*ldo + r*LANES);
        }
    }
    for (int64_t p = 0; p < np; p++) {
        __m512i b[RN];
        for (int r = 0; r < RN; r++) {
            b[r] = _mm512_loadu_si512(v16 + p*ldv + r*LANES);
            FA_F32_PIN(b[r]);
        }
        for (int i = 0; i < M; i++) {
            const __m512bh a = (__m512bh) _mm512_set1_epi32((int32_t) p16[p*QT + i]);
            for (int r = 0; r < RN; r++) {
                acc[i][r] = _mm512_dpbf16_ps(acc[i][r], a, (__m512bh) b[r]);
            }
        }
    }
    for (int i = 0; i < M; i++) {
        for (int r = 0; r < RN; r++) {
            _mm512_storeu_ps(O + i*ldo + r*LANES, acc[i][r]);
        }
    }
}

// The BF16 values product for one thread of the op, beside the F32 scores it inherits (the driver's policy
// interface: see fa_f32::f32_products).
struct bf16_products : fa_f32::f32_products {
    static constexpr const char * name = "bf16";

    int64_t n_kv;
    int64_t head = -1;         // whose V is in v16
    std::vector<uint32_t> v16; // per key tile [KT/2][DV]: pairs (V[2p][c], V[2p+1][c]), keys past n_kv zero
    std::vector<uint32_t> p16; // [KT/2][QT] a key tile's probabilities as pairs (P[2p][i], P[2p+1][i])

    bf16_products(fa_f32::op_dims d, float * qt_scratch) : f32_products(d, qt_scratch), n_kv(d.n_kv), p16(KT/2*QT) {}

    static bool fits(int64_t /* DK */, int64_t dv) { return dv % QT == 0; }

    // V in BF16 pairs, made once per head by each thread that works on it
    void begin_tile(int64_t id, fa_f32::rows_f32 k, fa_f32::rows_f32 v, const char * q, size_t nbq1, int64_t tr) {
        f32_products::begin_tile(id, k, v, q, nbq1, tr);
        if (head == id) {
            return;
        }
        head = id;
        const int64_t n_pad = (n_kv + KT - 1) / KT * KT;
        v16.resize(n_pad/2*DV);
        for (int64_t j = 0; j < n_pad; j += 2) {
            const float * v0 = (const float *) (v.data + j*v.stride);
            const float * v1 = (const float *) (v.data + (j + 1)*v.stride);
            for (int64_t c = 0; c < DV; c += LANES) {
                const __m512 a = j < n_kv ? _mm512_loadu_ps(v0 + c) : _mm512_setzero_ps();
                const __m512 b = j + 1 < n_kv ? _mm512_loadu_ps(v1 + c) : _mm512_setzero_ps();
                _mm512_storeu_si512(v16.data() + j/2*DV + c, pair_lanes(a, b));
            }
        }
    }

    // The tile's probabilities e^(S[j][i] - mu[i]) summed into l[i] in F32 and packed as BF16 pairs, then their
    // product with the tile's V added into the tr rows of O.
    void values(float * O, float * S, int64_t /* t */, int64_t k0, int64_t kt, int64_t tr, const float * mu, float * l) {
        for (int r = 0; r < RN; r++) {
            const __m512 neg_m = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_loadu_ps(mu + r*LANES));
            __m512 sum = _mm512_loadu_ps(l + r*LANES);
            for (int64_t j = 0; j < kt; j += 2) {
                const __m512 e0 = ggml_v_expf(_mm512_add_ps(_mm512_loadu_ps(S + j*QT + r*LANES), neg_m));
                const __m512 e1 = j + 1 < kt ? ggml_v_expf(_mm512_add_ps(_mm512_loadu_ps(S + (j + 1)*QT + r*LANES), neg_m))
                                             : _mm512_setzero_ps();
                sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
                _mm512_storeu_si512(p16.data() + j/2*QT + r*LANES, pair_lanes(e0, e1));
            }
            _mm512_storeu_ps(l + r*LANES, sum);
        }
        const uint32_t * v = v16.data() + k0/2*DV;
        for (int64_t c = 0; c < DV; c += QT) {
            fa_f32::row_blocks<RM>(tr, [&](auto m, int64_t i) {
                ukernel_values<decltype(m)::value>(O + i*DV + c, DV, p16.data() + i, v + c, DV, (kt + 1)/2);
            });
        }
    }
};

} // namespace fa_bf16
#endif
