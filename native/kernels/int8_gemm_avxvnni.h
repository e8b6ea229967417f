// AVX-VNNI tiles of our int8 weight products (VPDPBUSD on ymm, no AVX-512): Intel's client CPUs since Alder
// Lake and its E-core Xeons (Sierra Forest), and the portable build's alderlake variant. Included by int8_gemm.h.
//
// Q8_0 is stored as q + 128: VPDPBUSD multiplies those unsigned weight bytes by the signed activation bytes and
// adds 4 products into each int32 lane without saturating, one instruction per group of 4 k and ymm half, where
// the AVX2 tile needs VPSIGNB, VPMADDUBSW, VPMADDWD and VPADDD. The zero point comes off as 128 x the
// activations' sum over the block (kNeedsSums: the driver sums each row once), which seeds the int32 sums.
// Bounds per lane: 32 x 255 x 127 + 128 x 32 x 127, within int32.
//
// Q6_K and Q4_K take the AVX2 tiles (int8_gemm_avx2.h: int16 sums of VPMADDUBSW widened with their integer
// scales, Q8_K activations), whose cost is the widening, not the products.
//
// The Q8_0 tile: 1 or 4 activation rows x the 16 output columns of a weight block (two ymm halves), int32 sums
// per block, then scaled into the F32 sums in s (8 int32 sums take half of the 16 ymm; the F32 ones would not fit
// beside them). K goes in chunks, as AVX2's, so a tile's operands stay in L1.
#pragma once

#include "int8_gemm_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace bge_m3::avxvnni {

// VPDPBUSD's weight operand is unsigned: Q8_0 is stored as q + 128
constexpr int kQ8_0ZeroPoint = 128;
// the K-quants as AVX2 has them
using q6_K_weights                     = avx2::q6_K_weights;
using q4_K_weights                     = avx2::q4_K_weights;
constexpr ggml_type kKQuantActivations = avx2::kKQuantActivations;
template <typename W> constexpr bool kNeedsSums = W::zero_point != 0 || W::has_min;

// ROWS::rows activation rows x the 16 output columns of a Q8_0 block layout with a zero point, over weight
// blocks b0 .. b1 - 1 of K, added to s; asum[b * rows + r]: row r's activation sum over block b.
template <typename W, typename ROWS>
static inline void tile_q8_0(int b0, int b1, const typename W::block * w, const typename ROWS::block * a,
                             const int32_t * asum, float * s, size_t bs) {
    static_assert(!W::is_signed && W::f16_scales && !W::has_min && !W::int16_scales && W::span == W::k_per_block,
                  "unsigned weights with a zero point, one F16 scale per block");
    constexpr int M = ROWS::rows;
    for (int b = b0; b < b1; b++) {
        const int k  = b * W::k_per_block;
        const int ab = k / ROWS::k;
        __m256i   isum[M][2];
        for (int r = 0; r < M; r++) {
            isum[r][0] = isum[r][1] = _mm256_set1_epi32(-W::zero_point * asum[b * M + r]);
        }
        // fully unrolled: the group offsets become constants and the sums stay in registers (pinned below)
#pragma GCC unroll 8
        for (int g = 0; g < W::k_per_block / kGroupK; g++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *) W::group(w[b], g));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *) (W::group(w[b], g) + 32));
            const int     ag = (k % ROWS::k) / kGroupK + g;
#pragma GCC unroll 4
            for (int r = 0; r < M; r++) {
                const __m256i av = avx2::broadcast4(ROWS::group(a[ab], r, ag));
                isum[r][0] = _mm256_dpbusd_avx_epi32(isum[r][0], w0, av);
                isum[r][1] = _mm256_dpbusd_avx_epi32(isum[r][1], w1, av);
            }
            for (int r = 0; r < M; r++) {  // as the AVX2 tile's: GCC would otherwise spill sums across groups
                INT8_AVX2_PIN(isum[r][0]);
                INT8_AVX2_PIN(isum[r][1]);
            }
        }
        avx2::add_block_sums<ROWS>(isum, (const ggml_half *) W::scales(w[b], 0), a[ab], s, bs);
    }
}

// This ISA's tiles: AVX2's for integer scales (K-quants), VPDPBUSD for Q8_0.
struct tiles {
    template <typename W, typename ROWS>
    static void tile(int b0, int b1, const typename W::block * w, const typename ROWS::block * a, const int32_t * asum,
                     float * s, size_t bs) {
        if constexpr (W::int16_scales) {
            avx2::tile_int16_scales<W, ROWS>(b0, b1, w, a, asum, s, bs);
        } else {
            tile_q8_0<W, ROWS>(b0, b1, w, a, asum, s, bs);
        }
    }
};

// Column blocks x0 .. x1 - 1 (16 output columns each) for one block of activation rows, in chunks of K (as AVX2's).
template <typename W, typename ROWS>
static void column_blocks(int nbw, const typename W::block * w, int x0, int x1, const typename ROWS::block * a,
                          const int32_t * asum, float * s, size_t bs) {
    avx2::chunked_column_blocks<tiles, W, ROWS>(nbw, w, x0, x1, a, asum, s, bs);
}

}  // namespace bge_m3::avxvnni
