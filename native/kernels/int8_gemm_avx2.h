// AVX2 (no VNNI) tiles of our int8 weight products: Haswell and later, Zen 1-3, and the portable build's
// haswell/skylake/zen variants. Included by int8_gemm.h.
//
// VPMADDUBSW multiplies unsigned weight bytes by signed activation bytes and adds each pair into a
// saturating int16. Q4_K (u <= 15) and Q6_K (u <= 63) go in as stored: a pair is at most 2 x 63 x 128 =
// 16,128, so several groups add up in int16 (8 for Q4_K, 2 for Q6_K) before one VPMADDWD widens them to
// int32 - half or less of the widening work of ggml's kernels. Q8_0 as q + 128 would overflow, so it is
// stored as q and its sign moved onto the activation (VPSIGNB), |q| being the unsigned operand: a pair is
// then at most 2 x 127 x 127 (ggml's quantisers never write -128).
//
// Q6_K and Q4_K keep their scales as integers (q6_K_i16_weights, q4_K_i16_weights) and take Q8_K
// activations (one scale per 256 values): VPMADDWD widens each int16 sum with its span's scale instead
// of 1, so a whole 256-value block ends in one int32 sum per column and one float update instead of 16
// (Q6_K) or 8 (Q4_K). The zero point (Q6_K: 32 x the spans' scales) and the mins (Q4_K) meet minus the
// activation sums of two spans in one more VPMADDWD each. Bounds per int32 lane, |a| <= 128: Q6_K's
// products 256 x 128 (scale) x 63 x 128 = 264M and its zero point 16 x 32 x 128 x 2,048 = 134M; Q4_K's
// products 256 x 63 x 15 x 128 = 31M and mins 8 x 63 x 4,096 = 2M: within int32.
//
// The tiles: 1 or 4 activation rows x the 16 output columns of a weight block (two ymm halves), int32
// sums per block (32 values for Q8_0, 256 for the K-quants), then scaled into the F32 sums in s.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace bge_m3::avx2 {

// Q8_0's q + 128 is too large for VPMADDUBSW's int16 pairs: stored as q, multiplied with the sign trick
constexpr int       kQ8_0ZeroPoint     = 0;
using q6_K_weights                     = q6_K_i16_weights;
using q4_K_weights                     = q4_K_i16_weights;
constexpr ggml_type kKQuantActivations = GGML_TYPE_Q8_K;
template <typename W> constexpr bool kSignedWeights = W::is_signed;
// activation sums per span are needed for a zero point or a min
template <typename W> constexpr bool kNeedsSums = W::zero_point != 0 || W::has_min;
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

// Holds a value in a vector register at this point of the schedule ("v": any of the 16 ymm, or 32 where
// the build has AVX-512), so that GCC cannot reorder the sums around it.
#define INT8_AVX2_PIN(x) __asm__("" : "+v"(x))

static inline __m256i broadcast4(const int8_t * p) {
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return _mm256_set1_epi32(v);
}

// s[r][0..16) += isum[r] x the block's 16 F16 weight scales wd16 x activation row r's scale in block a, for the rows
// of a tile whose int32 sums (two ymm halves per row) cover one weight block with one scale (Q8_0).
template <typename ROWS, int M>
static inline void add_block_sums(const __m256i (&isum)[M][2], const ggml_half * wd16, const typename ROWS::block & a,
                                  float * s, size_t bs) {
    const __m256 wd0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) wd16));
    const __m256 wd1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (wd16 + 8)));
    for (int r = 0; r < M; r++) {
        const __m256 da = _mm256_set1_ps(ROWS::scale(a, r));
        float *      o  = s + r * bs;
        _mm256_storeu_ps(o, _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][0]), _mm256_mul_ps(wd0, da), _mm256_loadu_ps(o)));
        _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][1]), _mm256_mul_ps(wd1, da), _mm256_loadu_ps(o + 8)));
    }
}

// ROWS::rows activation rows x all 16 output columns of the weight block (two ymm halves) over weight
// blocks b0 .. b1 - 1 of K, added to s: for signed weights with an F16 scale per block
// (Q8_0), whose pairs fill an int16, so each group is widened on its own. The weight's sign moves onto
// the activation (|w| once per group, not |a| once per row), and each broadcast activation group feeds
// both halves: 4.25 vector ops and 0.75 loads per 32 products with 4 rows, against 5 and 1.25 with one
// half per call (0.87x the time in a one-thread harness). The 2 x ROWS::rows int32 sums take the
// registers, so the F32 sums live in s (L1).
template <typename W, typename ROWS>
static inline void tile_signed(int b0, int b1, const typename W::block * w, const typename ROWS::block * a,
                               float * s, size_t bs) {
    static_assert(kSignedWeights<W> && W::f16_scales && !kNeedsSums<W> && W::span == W::k_per_block,
                  "signed weights, one F16 scale per block, no zero point or min");
    constexpr int M    = ROWS::rows;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = b0; b < b1; b++) {
        const int k  = b * W::k_per_block;
        const int ab = k / ROWS::k;
        __m256i   isum[M][2];
        for (int r = 0; r < M; r++) {
            isum[r][0] = isum[r][1] = _mm256_setzero_si256();
        }
        // fully unrolled: the group offsets become constants and the sums stay in registers (pinned below)
#pragma GCC unroll 8
        for (int g = 0; g < W::k_per_block / kGroupK; g++) {
            const __m256i w0 = load_group<W>(w[b], g, 0);
            const __m256i w1 = load_group<W>(w[b], g, 1);
            const __m256i u0 = _mm256_abs_epi8(w0);
            const __m256i u1 = _mm256_abs_epi8(w1);
            const int     ag = (k % ROWS::k) / kGroupK + g;
#pragma GCC unroll 4
            for (int r = 0; r < M; r++) {
                const __m256i av = broadcast4(ROWS::group(a[ab], r, ag));
                isum[r][0] = _mm256_add_epi32(isum[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(u0, _mm256_sign_epi8(av, w0)), ones));
                isum[r][1] = _mm256_add_epi32(isum[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(u1, _mm256_sign_epi8(av, w1)), ones));
            }
            // Each group's sums are complete here. Unpinned, GCC schedules the unrolled groups' products
            // ahead of their adds and spills dozens of them per block to the stack: pinned takes 0.80-0.83x
            // the time (one-thread harness, Zen 3, 512 rows x 1024x1024 or 1024x4096 weights; same bits).
            for (int r = 0; r < M; r++) {
                INT8_AVX2_PIN(isum[r][0]);
                INT8_AVX2_PIN(isum[r][1]);
            }
        }
        add_block_sums<ROWS>(isum, (const ggml_half *) W::scales(w[b], 0), a[ab], s, bs);
    }
}

// tile() for layouts with integer scales, whose weight blocks are activation blocks (Q8_K): ROWS::rows
// activation rows x all 16 columns, so that each broadcast activation group feeds both halves (Q4_K:
// 0.82-0.88x the time of one half per call in a one-thread harness; Q6_K 0.97-0.99x). Its sums take more
// than AVX2's 16 ymm with 4 rows; GCC's spills of them cost less than the broadcasts saved.
template <typename W, typename ROWS>
static inline void tile_int16_scales(int b0, int b1, const typename W::block * w, const typename ROWS::block * a,
                                     const int32_t * asum, float * s, size_t bs) {
    constexpr int M     = ROWS::rows;
    constexpr int G     = kInt16Groups<W>;            // groups per int16 sum
    constexpr int spans = W::k_per_block / W::span;
    constexpr int pairs = spans / 2;                  // activation sums per row and block
    static_assert(ROWS::k == W::k_per_block, "one activation scale per weight block");
    static_assert((W::span / kGroupK) % G == 0, "int16 sums within a span");
    for (int b = b0; b < b1; b++) {
        __m256i isum[M][2];
        __m256i msum[M][2];  // Q4_K: sum of mins x activation sums, scaled by dmin apart from isum
        for (int r = 0; r < M; r++) {
            isum[r][0] = isum[r][1] = msum[r][0] = msum[r][1] = _mm256_setzero_si256();
        }
        for (int p = 0; p < pairs; p++) {
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256i zm;  // per column, the pair's two zero points x scales, or its two mins
                if constexpr (W::has_min) {
                    zm = _mm256_loadu_si256((const __m256i *) (W::int_min_pairs(w[b], p) + h * 16));
                } else {
                    const __m256i sc0 = _mm256_loadu_si256((const __m256i *) (W::int_scales(w[b], 2 * p) + h * 16));
                    const __m256i sc1 = _mm256_loadu_si256((const __m256i *) (W::int_scales(w[b], 2 * p + 1) + h * 16));
                    zm = _mm256_mullo_epi16(_mm256_blend_epi16(sc0, sc1, 0xAA), _mm256_set1_epi16(W::zero_point));
                }
                for (int r = 0; r < M; r++) {
                    const __m256i t = _mm256_madd_epi16(zm, _mm256_set1_epi32(asum[(b * pairs + p) * M + r]));
                    if constexpr (W::has_min) {
                        msum[r][h] = _mm256_add_epi32(msum[r][h], t);
                    } else {
                        isum[r][h] = _mm256_add_epi32(isum[r][h], t);
                    }
                }
            }
            // fully unrolled: the group offsets become constants
#pragma GCC unroll 16
            for (int g0 = 0; g0 < 2 * W::span / kGroupK; g0 += G) {
                const int g    = p * 2 * W::span / kGroupK + g0;  // group within the block
                const int span = g0 < W::span / kGroupK ? 2 * p : 2 * p + 1;
                __m256i   sum16[M][2];
#pragma GCC unroll 8
                for (int gi = 0; gi < G; gi++) {
                    const __m256i w0 = load_group<W>(w[b], g + gi, 0);
                    const __m256i w1 = load_group<W>(w[b], g + gi, 1);
                    for (int r = 0; r < M; r++) {
                        const __m256i av = broadcast4(ROWS::group(a[b], r, g + gi));
                        const __m256i q0 = _mm256_maddubs_epi16(w0, av);
                        const __m256i q1 = _mm256_maddubs_epi16(w1, av);
                        sum16[r][0]      = gi == 0 ? q0 : _mm256_add_epi16(sum16[r][0], q0);
                        sum16[r][1]      = gi == 0 ? q1 : _mm256_add_epi16(sum16[r][1], q1);
                    }
                }
                const __m256i sc0 = _mm256_loadu_si256((const __m256i *) W::int_scales(w[b], span));
                const __m256i sc1 = _mm256_loadu_si256((const __m256i *) (W::int_scales(w[b], span) + 16));
                for (int r = 0; r < M; r++) {
                    isum[r][0] = _mm256_add_epi32(isum[r][0], _mm256_madd_epi16(sum16[r][0], sc0));
                    isum[r][1] = _mm256_add_epi32(isum[r][1], _mm256_madd_epi16(sum16[r][1], sc1));
                }
            }
        }
        for (int h = 0; h < 2; h++) {
            const __m256 wd = _mm256_loadu_ps(w[b].d + h * 8);
            for (int r = 0; r < M; r++) {
                float *      o   = s + r * bs + h * 8;
                const __m256 da  = _mm256_set1_ps(ROWS::scale(a[b], r));
                __m256       acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][h]), _mm256_mul_ps(wd, da), _mm256_loadu_ps(o));
                if constexpr (W::has_min) {
                    const __m256 wm = _mm256_loadu_ps(w[b].dmin + h * 8);
                    acc             = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum[r][h]), _mm256_mul_ps(wm, da), acc);
                }
                _mm256_storeu_ps(o, acc);
            }
        }
    }
}

// K is taken in chunks of this many values, so that a tile's weights (8 rows x 1,024 bytes for Q8_0) and
// the block of activation rows (4 x 1,024 bytes) fit L1 (32 KB on Zen 3) together, rather than streaming
// from L2 for the 4,096-wide inputs of ffn_down.
constexpr int kChunkK = 1024;

// Column blocks x0 .. x1 - 1 (16 output columns each) for one block of activation rows, in chunks of K, with
// TILES::tile<W, ROWS>(b0, b1, w, a, asum, s, bs), which adds weight blocks b0 .. b1 - 1 of one column block into s.
template <typename TILES, typename W, typename ROWS>
static void chunked_column_blocks(int nbw, const typename W::block * w, int x0, int x1, const typename ROWS::block * a,
                                  const int32_t * asum, float * s, size_t bs) {
    constexpr int chunk = std::max(1, kChunkK / W::k_per_block);  // weight blocks per chunk of K
    for (int b0 = 0; b0 < nbw; b0 += chunk) {
        const int b1 = std::min(nbw, b0 + chunk);
        for (int x = x0; x < x1; x++) {
            float * out = s + x * kBlockRows;
            if (b0 == 0) {  // the tiles add each chunk of K into out
                for (int r = 0; r < ROWS::rows; r++) {
                    _mm256_storeu_ps(out + r * bs, _mm256_setzero_ps());
                    _mm256_storeu_ps(out + r * bs + 8, _mm256_setzero_ps());
                }
            }
            TILES::template tile<W, ROWS>(b0, b1, w + (size_t) x * nbw, a, asum, out, bs);
        }
    }
}

// This ISA's tiles: integer scales (K-quants) or signed weights (Q8_0).
struct tiles {
    template <typename W, typename ROWS>
    static void tile(int b0, int b1, const typename W::block * w, const typename ROWS::block * a, const int32_t * asum,
                     float * s, size_t bs) {
        if constexpr (W::int16_scales) {
            tile_int16_scales<W, ROWS>(b0, b1, w, a, asum, s, bs);
        } else {
            tile_signed<W, ROWS>(b0, b1, w, a, s, bs);
        }
    }
};

// Column blocks x0 .. x1 - 1 (16 output columns each) for one block of activation rows.
template <typename W, typename ROWS>
static void column_blocks(int nbw, const typename W::block * w, int x0, int x1, const typename ROWS::block * a,
                          const int32_t * asum, float * s, size_t bs) {
    chunked_column_blocks<tiles, W, ROWS>(nbw, w, x0, x1, a, asum, s, bs);
}

}  // namespace bge_m3::avx2
