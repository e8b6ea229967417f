// Our int8 weight products for Q8_0, Q6_K and Q4_K weights on x86, behind ggml's CPU repack interface:
// ggml-cpu/repack.cpp includes this file (patch 0005) and routes those weights here when
// BGE_M3_INT8_GEMM is defined (int8_gemm_isa.h), i.e. when the translation unit is compiled for
// AVX512-VNNI, AVX-VNNI or AVX2 (the native build for its host, each variant of the portable build for its own
// CPU class).
//
// Why: on x86 ggml has no repacked kernel for Q8_0 (tinyBLAS multiplies it at a fraction of the int8
// rate), Q6_K goes through row-by-row dot products, and its Q4_K repack widens every product to int32.
//
// Activations come as ggml quantises them for the repack path, 4 rows interleaved 8 bytes at a time
// (ggml_quantize_mat_q8_*_4x8) for gemm, one plain row for gemv: Q8_0 (blocks of 32 with an F16 scale)
// for Q8_0 weights, and for Q6_K and Q4_K whichever the kernel names (isa::kKQuantActivations): Q8_0, or
// Q8_K (blocks of 256 with an F32 scale, as ggml's own K-quant dot products take), which lets a kernel
// with integer scales sum a whole 256-value block in int32 before one float update.
#pragma once

#include "int8_gemm_isa.h"
#include "int8_layouts.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(BGE_M3_INT8_AVX512VNNI)
#    include "int8_gemm_avx512vnni.h"
namespace bge_m3 {
namespace isa = avx512vnni;
}
#elif defined(BGE_M3_INT8_AVXVNNI)
#    include "int8_gemm_avxvnni.h"
namespace bge_m3 {
namespace isa = avxvnni;
}
#elif defined(BGE_M3_INT8_AVX2)
#    include "int8_gemm_avx2.h"
namespace bge_m3 {
namespace isa = avx2;
}
#endif

#ifdef BGE_M3_INT8_GEMM
namespace bge_m3 {

// The layouts the chosen kernel wants: Q8_0's bytes (see kQ8_0ZeroPoint there), the K-quants' scales
using q8_0_weights = q8_0_weights_zp<isa::kQ8_0ZeroPoint>;
using q6_K_weights = isa::q6_K_weights;
using q4_K_weights = isa::q4_K_weights;

// Where activation row r's 4 bytes of group g (k / 4 within a block of K values) and its scale are, for
// ggml's 4-row blocks (ggml_quantize_mat_q8_*_4x8: rows interleaved 8 bytes at a time) and for plain rows.
inline float scale_f32(ggml_half d) { return GGML_CPU_FP16_TO_FP32(d); }  // Q8_0's
inline float scale_f32(float d) { return d; }                             // Q8_K's
template <typename BLOCK, int K> struct rows4 {
    static constexpr int rows = 4;
    static constexpr int k    = K;
    using block               = BLOCK;
    static const int8_t * group(const block & b, int r, int g) { return b.qs + (g >> 1) * 32 + r * 8 + (g & 1) * 4; }
    static float scale(const block & b, int r) { return scale_f32(b.d[r]); }
};
template <typename BLOCK, int K> struct rows1 {
    static constexpr int rows = 1;
    static constexpr int k    = K;
    using block               = BLOCK;
    static const int8_t * group(const block & b, int, int g) { return b.qs + g * 4; }
    static float scale(const block & b, int) { return scale_f32(b.d); }
};
// The activation rows for each ggml activation type: for gemm (4 rows) and for gemv (1 row).
template <ggml_type T> struct activation_rows;
template <> struct activation_rows<GGML_TYPE_Q8_0> {
    using four = rows4<block_q8_0x4, QK8_0>;
    using one  = rows1<block_q8_0, QK8_0>;
};
template <> struct activation_rows<GGML_TYPE_Q8_K> {
    using four = rows4<block_q8_Kx4, QK_K>;
    using one  = rows1<block_q8_K, QK_K>;
};
constexpr ggml_type kKQuantActivations = isa::kKQuantActivations;

// Two-level blocking, so that neither operand streams from memory once long inputs outgrow the caches
// (8k tokens x 4,096 activations are 34 MB of Q8_0): a group of row blocks (its activations) and a panel of
// column blocks (its weights) stay in L2 together while every row block of the group passes over every
// column block of the panel; one block of rows, 4 x K bytes, stays in L1 across the panel.
constexpr size_t kPanelBytes    = 128 * 1024;
constexpr size_t kRowGroupBytes = 192 * 1024;

// Activation sums of each row: [k / kSumK<W>][row]. Over each span of W::span values; for integer scales,
// minus the sums of two consecutive spans, as the two int16 halves of one int32 (low: the first span;
// |sum| <= 32 x 128), the operand of one VPMADDWD with the two spans' zero points or mins.
template <typename W> constexpr int kSumK = W::int16_scales ? 2 * W::span : W::span;

template <typename ROWS> static int32_t activation_sum(const typename ROWS::block * a, int r, int k, int len) {
    int32_t sum = 0;
    for (int g = 0; g < len / kGroupK; g++) {
        const int8_t * q = ROWS::group(a[k / ROWS::k], r, (k % ROWS::k) / kGroupK + g);
        sum += q[0] + q[1] + q[2] + q[3];
    }
    return sum;
}

template <typename W, typename ROWS>
static void activation_sums(int n, const typename ROWS::block * a, int32_t * asum) {
    for (int k = 0; k < n; k += kSumK<W>) {
        for (int r = 0; r < ROWS::rows; r++) {
            int32_t & out = asum[(k / kSumK<W>) * ROWS::rows + r];
            if constexpr (W::int16_scales) {
                const uint32_t lo = (uint16_t) -activation_sum<ROWS>(a, r, k, W::span);
                const uint32_t hi = (uint16_t) -activation_sum<ROWS>(a, r, k + W::span, W::span);
                out               = (int32_t) (lo | hi << 16);
            } else {
                out = activation_sum<ROWS>(a, r, k, W::span);
            }
        }
    }
}

// s[r * bs + c] for the nr rows of vy (blocks of ROWS::rows) and the nc columns of vx (a multiple of 16).
template <typename W, typename ROWS>
static void gemm(int n, float * GGML_RESTRICT s, size_t bs, const void * GGML_RESTRICT vx, const void * GGML_RESTRICT vy,
                 int nr, int nc) {
    constexpr int M         = ROWS::rows;
    const int     nb        = n / ROWS::k;
    const int     nbw       = n / W::k_per_block;
    const auto *  w         = (const typename W::block *) vx;
    const auto *  a         = (const typename ROWS::block *) vy;
    const int     nx        = nc / kBlockRows;
    const int     ny        = nr / M;
    const size_t  col_bytes = (size_t) nbw * sizeof(typename W::block);
    const size_t  row_bytes = (size_t) nb * sizeof(typename ROWS::block);
    const int     panel     = (int) std::max<size_t>(1, kPanelBytes / col_bytes);
    const int     group     = (int) std::max<size_t>(1, kRowGroupBytes / row_bytes);
    const size_t  sums      = (size_t) (n / kSumK<W>) * M;  // activation sums of one row block
    std::vector<int32_t> asum(isa::kNeedsSums<W> ? sums * std::min(group, ny) : 0);
    for (int y0 = 0; y0 < ny; y0 += group) {
        const int y1 = std::min(ny, y0 + group);
        if constexpr (isa::kNeedsSums<W>) {
            for (int y = y0; y < y1; y++) {
                activation_sums<W, ROWS>(n, a + (size_t) y * nb, asum.data() + (y - y0) * sums);
            }
        }
        for (int x0 = 0; x0 < nx; x0 += panel) {
            const int x1 = std::min(nx, x0 + panel);
            for (int y = y0; y < y1; y++) {
                isa::column_blocks<W, ROWS>(nbw, w, x0, x1, a + (size_t) y * nb, asum.data() + (y - y0) * sums,
                                            s + (size_t) y * M * bs, bs);
            }
        }
    }
}

}  // namespace bge_m3
#endif
