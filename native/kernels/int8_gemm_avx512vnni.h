// AVX512-VNNI tiles of our int8 weight products: Intel Ice Lake and later, AMD Zen 4 and later, and the
// portable build's icelake/cascadelake/cooperlake/sapphirerapids/zen4 variants. Included by int8_gemm.h.
//
// VPDPBUSD multiplies unsigned weight bytes by signed activation bytes and adds 4 products into each
// int32 lane without saturating, so every layout goes in as stored; zp x the activations' sum over each
// scale's span is taken off the int32 sum before it is scaled, m x that sum after. One 64-byte group is
// 16 output columns; the tile is 1 or 4 activation rows x 32 (or 16) columns.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace bge_m3::avx512vnni {

// VPDPBUSD's weight operand is unsigned: Q8_0 is stored as q + 128
constexpr int kQ8_0ZeroPoint = 128;
// K-quant scales as F32 per span, activations as Q8_0: VPDPBUSD's int32 sums need no integer scaling
using q6_K_weights                     = q6_K_f32_weights;
using q4_K_weights                     = q4_K_f32_weights;
constexpr ggml_type kKQuantActivations = GGML_TYPE_Q8_0;
template <typename W> constexpr int  kZeroPoint = W::zero_point;
template <typename W> constexpr bool kNeedsSums = kZeroPoint<W> != 0 || W::has_min;

template <typename W> static inline __m512i load_group(const typename W::block & b, int g) {
    static_assert(!W::is_signed, "VPDPBUSD multiplies unsigned weight bytes");
    const __m512i v = _mm512_loadu_si512((const __m512i *) W::group(b, g));
    if constexpr (W::nibbles) {
        return _mm512_and_si512(g % 2 ? _mm512_srli_epi16(v, 4) : v, _mm512_set1_epi8(0x0F));
    } else {
        return v;
    }
}

template <typename W> static inline __m512 load_scales(const typename W::block & b, int j) {
    if constexpr (W::f16_scales) {
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) W::scales(b, j)));
    } else {
        return _mm512_loadu_ps((const float *) W::scales(b, j));
    }
}

// ROWS::rows activation rows x (16 * NT) output columns over the whole K.
template <typename W, typename ROWS, int NT>
static inline void tile(int nbw, const typename W::block * w, const typename ROWS::block * a, const int32_t * asum,
                        float * s, size_t bs) {
    constexpr int M = ROWS::rows;
    __m512        acc[M][NT];
    for (int r = 0; r < M; r++) {
        for (int t = 0; t < NT; t++) {
            acc[r][t] = _mm512_setzero_ps();
        }
    }
    for (int b = 0; b < nbw; b++) {
        for (int j = 0; j < W::k_per_block / W::span; j++) {
            const int k  = b * W::k_per_block + j * W::span;
            const int ab = k / ROWS::k;
            __m512i   isum[M][NT];
            for (int r = 0; r < M; r++) {
                const __m512i c = _mm512_set1_epi32(-W::zero_point * asum[(k / W::span) * M + r]);
                for (int t = 0; t < NT; t++) {
                    isum[r][t] = c;
                }
            }
            for (int g = 0; g < W::span / kGroupK; g++) {
                __m512i wq[NT];
                for (int t = 0; t < NT; t++) {
                    wq[t] = load_group<W>(w[t * nbw + b], (k % W::k_per_block) / kGroupK + g);
                }
                for (int r = 0; r < M; r++) {
                    int32_t aq;
                    memcpy(&aq, ROWS::group(a[ab], r, (k % ROWS::k) / kGroupK + g), sizeof(aq));
                    const __m512i av = _mm512_set1_epi32(aq);
                    for (int t = 0; t < NT; t++) {
                        isum[r][t] = _mm512_dpbusd_epi32(isum[r][t], wq[t], av);
                    }
                }
            }
            __m512 wd[NT];
            __m512 wm[NT];
            for (int t = 0; t < NT; t++) {
                wd[t] = load_scales<W>(w[t * nbw + b], j);
                if constexpr (W::has_min) {
                    wm[t] = _mm512_loadu_ps(W::mins(w[t * nbw + b], j));
                }
            }
            for (int r = 0; r < M; r++) {
                const float  da = ROWS::scale(a[ab], r);
                const __m512 ad = _mm512_set1_ps(da);
                for (int t = 0; t < NT; t++) {
                    acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][t]), _mm512_mul_ps(wd[t], ad), acc[r][t]);
                }
                if constexpr (W::has_min) {
                    const __m512 as = _mm512_set1_ps(da * asum[(k / W::span) * M + r]);
                    for (int t = 0; t < NT; t++) {
                        acc[r][t] = _mm512_fnmadd_ps(wm[t], as, acc[r][t]);
                    }
                }
            }
        }
    }
    for (int r = 0; r < M; r++) {
        for (int t = 0; t < NT; t++) {
            _mm512_storeu_ps(s + r * bs + t * kBlockRows, acc[r][t]);
        }
    }
}

// Column blocks x0 .. x1 - 1 (16 output columns each) for one block of activation rows, two at a time.
template <typename W, typename ROWS>
static void column_blocks(int nbw, const typename W::block * w, int x0, int x1, const typename ROWS::block * a,
                          const int32_t * asum, float * s, size_t bs) {
    int x = x0;
    for (; x + 2 <= x1; x += 2) {
        tile<W, ROWS, 2>(nbw, w + (size_t) x * nbw, a, asum, s + x * kBlockRows, bs);
    }
    for (; x < x1; x++) {
        tile<W, ROWS, 1>(nbw, w + (size_t) x * nbw, a, asum, s + x * kBlockRows, bs);
    }
}

}  // namespace bge_m3::avx512vnni
