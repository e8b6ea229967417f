// AVX2 (no VNNI) tiles of our int8 weight products: Haswell and later, Zen 1-3, and the portable build's
// haswell/skylake/zen variants. Included by int8_gemm.h.
//
// VPMADDUBSW multiplies unsigned weight bytes by signed activation bytes and adds each pair into a
// saturating int16. Q4_K (u <= 15) and Q6_K (u <= 63) go in as stored: a pair is at most 2 x 63 x 128 =
// 16,128, so several groups add up in int16 (8 for Q4_K, 2 for Q6_K) before one VPMADDWD widens them to
// int32 - half or less of the widening work of ggml's kernels. Q8_0 as q + 128 would overflow, so it is
// stored as q and the activation's sign moved onto it (VPSIGNB), |a| being the unsigned operand: a pair is
// then at most 2 x 127 x 127 (ggml's quantisers never write -128).
//
// Q6_K keeps its 8-bit scales as integers (q6_K_i16_weights): VPMADDWD widens each pair of groups with
// the span's scale instead of 1, so a 32-value activation block (two spans) ends in one int32 sum per
// column and one float update, not two, and the zero point is one more VPMADDWD (the spans' scales x 32
// against minus their activation sums). A pair of groups is at most 4 x 63 x 127 = 32,004 per int16
// lane, and a block's int32 sum at most 8 x 128 x 32,004 + 2 x 4,096 x 2,032: no overflow.
//
// The tile: 1 or 4 activation rows x 8 output columns (half a 16-row block), int32 sums per scale span
// (per activation block for integer scales), then scaled into F32 accumulators: 4 + 4 ymm for sums and
// accumulators, within AVX2's 16.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace bge_m3::avx2 {

// Q8_0's q + 128 is too large for VPMADDUBSW's int16 pairs: stored as q, multiplied with the sign trick
constexpr int kQ8_0ZeroPoint = 0;
using q6_K_weights           = q6_K_i16_weights;
template <typename W> constexpr bool kSignedWeights = W::is_signed;
template <typename W> constexpr int  kZeroPoint     = W::zero_point;
// activation sums per span are needed for a zero point or a min
template <typename W> constexpr bool kNeedsSums = kZeroPoint<W> != 0 || W::has_min;
// groups whose VPMADDUBSW results add up in int16 without overflow (a pair is at most 2 x max_u x 128)
template <typename W>
constexpr int kInt16Groups = kSignedWeights<W> ? 1 : std::min(W::span / kGroupK, 32767 / (2 * W::max_u * 128));

template <typename W> static inline __m256i load_group(const typename W::block & b, int g, int half) {
    __m256i v = _mm256_loadu_si256((const __m256i *) (W::group(b, g) + half * 32));
    if constexpr (W::nibbles) {
        v = _mm256_and_si256(g % 2 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
    }
    static_assert(W::is_signed || W::max_u * 2 * 128 <= 32767, "VPMADDUBSW pairs would saturate");
    return v;
}

template <typename W> static inline __m256 load_scales(const typename W::block & b, int j, int half) {
    if constexpr (W::f16_scales) {
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) ((const ggml_half *) W::scales(b, j) + half * 8)));
    } else {
        return _mm256_loadu_ps((const float *) W::scales(b, j) + half * 8);
    }
}

static inline __m256i broadcast4(const int8_t * p) {
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return _mm256_set1_epi32(v);
}

// ROWS::rows activation rows x 8 output columns (rows 8 * half .. 8 * half + 7 of the weight block) over
// weight blocks b0 .. b1 - 1 of K, added to s when `accumulate`.
template <typename W, typename ROWS>
static inline void tile(int b0, int b1, bool accumulate, const typename W::block * w, int half,
                        const typename ROWS::block * a, const int32_t * asum, float * s, size_t bs) {
    constexpr int M = ROWS::rows;
    constexpr int G = kInt16Groups<W>;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256        acc[M];
    for (int r = 0; r < M; r++) {
        acc[r] = accumulate ? _mm256_loadu_ps(s + r * bs) : _mm256_setzero_ps();
    }
    for (int b = b0; b < b1; b++) {
        for (int j = 0; j < W::k_per_block / W::span; j++) {
            const int k  = b * W::k_per_block + j * W::span;
            const int ab = k / QK8_0;
            __m256i   isum[M];
            for (int r = 0; r < M; r++) {
                isum[r] = kZeroPoint<W> ? _mm256_set1_epi32(-kZeroPoint<W> * asum[(k / W::span) * M + r])
                                        : _mm256_setzero_si256();
            }
            // fully unrolled: the group offsets become constants and the sums stay in registers
#pragma GCC unroll 8
            for (int g0 = 0; g0 < W::span / kGroupK; g0 += G) {
                __m256i sum16[M];
#pragma GCC unroll 8
                for (int gi = 0; gi < G; gi++) {
                    const __m256i wq = load_group<W>(w[b], (k % W::k_per_block) / kGroupK + g0 + gi, half);
                    const int ag = (k % QK8_0) / kGroupK + g0 + gi;
                    for (int r = 0; r < M; r++) {
                        const __m256i av = broadcast4(ROWS::group(a[ab], r, ag));
                        __m256i       p;
                        if constexpr (kSignedWeights<W>) {
                            p = _mm256_maddubs_epi16(_mm256_abs_epi8(av), _mm256_sign_epi8(wq, av));
                        } else {
                            p = _mm256_maddubs_epi16(wq, av);
                        }
                        sum16[r] = gi == 0 ? p : _mm256_add_epi16(sum16[r], p);
                    }
                }
                for (int r = 0; r < M; r++) {
                    isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(sum16[r], ones));
                }
            }
            const __m256 wd = load_scales<W>(w[b], j, half);
            for (int r = 0; r < M; r++) {
                const float da = ROWS::scale(a[ab], r);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_mul_ps(wd, _mm256_set1_ps(da)), acc[r]);
                if constexpr (W::has_min) {
                    const __m256 as = _mm256_set1_ps(da * asum[(k / W::span) * M + r]);
                    acc[r] = _mm256_fnmadd_ps(_mm256_loadu_ps(W::mins(w[b], j) + half * 8), as, acc[r]);
                }
            }
        }
    }
    for (int r = 0; r < M; r++) {
        _mm256_storeu_ps(s + r * bs, acc[r]);
    }
}

// tile() for layouts with integer scales (Q6_K), one 32-value activation block at a time
template <typename W, typename ROWS>
static inline void tile_int16_scales(int b0, int b1, bool accumulate, const typename W::block * w, int half,
                                     const typename ROWS::block * a, const int32_t * asum, float * s, size_t bs) {
    constexpr int M      = ROWS::rows;
    constexpr int blocks = W::k_per_block / QK8_0;  // activation blocks per weight block
    constexpr int groups = QK8_0 / kGroupK;         // groups per activation block
    static_assert(W::span * 2 == QK8_0 && kInt16Groups<W> == 2, "two spans per activation block, two groups per int16 sum");
    __m256 acc[M];
    for (int r = 0; r < M; r++) {
        acc[r] = accumulate ? _mm256_loadu_ps(s + r * bs) : _mm256_setzero_ps();
    }
    for (int b = b0; b < b1; b++) {
        const __m256 wd = _mm256_loadu_ps(w[b].d + half * 8);
        for (int j = 0; j < blocks; j++) {
            const int     ab  = b * blocks + j;
            const __m256i sc0 = _mm256_loadu_si256((const __m256i *) (W::int_scales(w[b], 2 * j) + half * 16));
            const __m256i sc1 = _mm256_loadu_si256((const __m256i *) (W::int_scales(w[b], 2 * j + 1) + half * 16));
            // per column: 32 x the first span's scale, 32 x the second's, against -asum of each
            const __m256i zp  = _mm256_slli_epi16(_mm256_blend_epi16(sc0, sc1, 0xAA), 5);
            __m256i       isum[M];
            for (int r = 0; r < M; r++) {
                isum[r] = _mm256_madd_epi16(zp, _mm256_set1_epi32(asum[ab * M + r]));
            }
#pragma GCC unroll 4
            for (int g = 0; g < groups; g += 2) {
                const __m256i w0 = load_group<W>(w[b], j * groups + g, half);
                const __m256i w1 = load_group<W>(w[b], j * groups + g + 1, half);
                const __m256i sc = g < groups / 2 ? sc0 : sc1;
                for (int r = 0; r < M; r++) {
                    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w0, broadcast4(ROWS::group(a[ab], r, g))),
                                                       _mm256_maddubs_epi16(w1, broadcast4(ROWS::group(a[ab], r, g + 1))));
                    isum[r]         = _mm256_add_epi32(isum[r], _mm256_madd_epi16(p, sc));
                }
            }
            for (int r = 0; r < M; r++) {
                const __m256 da = _mm256_set1_ps(ROWS::scale(a[ab], r));
                acc[r]          = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_mul_ps(wd, da), acc[r]);
            }
        }
    }
    for (int r = 0; r < M; r++) {
        _mm256_storeu_ps(s + r * bs, acc[r]);
    }
}

// K is taken in chunks of this many values, so that a tile's weights (8 rows x 1,024 bytes for Q8_0) and
// the block of activation rows (4 x 1,024 bytes) fit L1 (32 KB on Zen 3) together, rather than streaming
// from L2 for the 4,096-wide inputs of ffn_down.
constexpr int kChunkK = 1024;

// Column blocks x0 .. x1 - 1 (16 output columns each) for one block of activation rows.
template <typename W, typename ROWS>
static void column_blocks(int nbw, const typename W::block * w, int x0, int x1, const typename ROWS::block * a,
                          const int32_t * asum, float * s, size_t bs) {
    constexpr int chunk = std::max(1, kChunkK / W::k_per_block);  // weight blocks per chunk of K
    for (int b0 = 0; b0 < nbw; b0 += chunk) {
        const int b1 = std::min(nbw, b0 + chunk);
        for (int x = x0; x < x1; x++) {
            for (int half = 0; half < 2; half++) {
                if constexpr (W::int16_scales) {
                    tile_int16_scales<W, ROWS>(b0, b1, b0 > 0, w + (size_t) x * nbw, half, a, asum, s + x * kBlockRows + half * 8, bs);
                } else {
                    tile<W, ROWS>(b0, b1, b0 > 0, w + (size_t) x * nbw, half, a, asum, s + x * kBlockRows + half * 8, bs);
                }
            }
        }
    }
}

}  // namespace bge_m3::avx2
