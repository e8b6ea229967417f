// Repacked layouts of Q8_0, Q6_K and Q4_K weights for our int8 weight products (int8_gemm.h), and the
// repacking from ggml's blocks. Included by ggml-cpu/repack.cpp (patch 0005), which provides ggml's
// block types (block_q8_0, block_q6_K, block_q4_K, QK8_0, QK_K, ggml_half) and GGML_FP16_TO_FP32.
//
// A block holds 16 weight rows (16 output columns) as groups of [16 rows x 4 consecutive k], 64 bytes:
// byte [k / 4][row][k % 4]. One group feeds 16 int32 lanes, one per output column, each the sum of 4
// products with 4 activation bytes broadcast (one zmm on AVX512, two ymm halves of 8 rows on AVX2).
//
// Every weight is stored as an exact byte u with w = s * (u - zero_point) - m:
// - Q8_0: q + zero point, its F16 block scale (zero point 128 for kernels that multiply unsigned weight
//   bytes, 0, i.e. q as a signed byte, for those that move the activation's sign onto the weight);
// - Q6_K: its raw 6-bit value (zero point 32), one byte per weight, with its scales in one of two forms,
//   as the kernel wants them: d * scale as F32 per 16 values (q6_K_f32_weights, 1.52x the file's bytes:
//   see repacked_row_size in the patch), or the 8-bit scale per 16 values as int16 and d per 256 as F32
//   (q6_K_i16_weights, 1.54x), for kernels that multiply the scale in integers;
// - Q4_K: its 4-bit value, two groups per byte (even group in the low nibble), with d * scale and
//   dmin * min as F32 per 32 values (q4_K_f32_weights, 1.33x the file's), or the 6-bit scales and mins
//   as int16 and d, dmin per 256 as F32 (q4_K_i16_weights, 1.28x).
#pragma once

#include <cstdint>
#include <cstring>

namespace bge_m3 {

constexpr int kBlockRows  = 16;  // weight rows (output columns) per repacked block
constexpr int kGroupK     = 4;   // consecutive k per row in a group
constexpr int kGroupBytes = kBlockRows * kGroupK;

struct block_q8_0x16 {
    ggml_half d[kBlockRows];
    uint8_t   qs[QK8_0 * kBlockRows];  // [k / 4][row][k % 4]
};
struct block_q6_Kx16 {
    float   d[QK_K / 16][kBlockRows];  // [span of 16 k][row]
    uint8_t qs[QK_K * kBlockRows];     // [k / 4][row][k % 4]
};
struct block_q6_Kx16_i16 {
    float   d[kBlockRows];                  // [row]: the block's F16 d
    int16_t sc[QK_K / 16][kBlockRows][2];   // [span of 16 k][row], twice: once per int16 lane a row gets from VPMADDUBSW
    uint8_t qs[QK_K * kBlockRows];          // [k / 4][row][k % 4]
};
struct block_q4_Kx16 {
    float   d[QK_K / 32][kBlockRows];  // [span of 32 k][row]
    float   m[QK_K / 32][kBlockRows];
    uint8_t qs[QK_K * kBlockRows / 2];  // [k / 8][row][k % 4], group k / 4 even in the low nibble, odd in the high
};
struct block_q4_Kx16_i16 {
    float   d[kBlockRows];                  // [row]: the block's F16 d
    float   dmin[kBlockRows];               // [row]: the block's F16 dmin
    int16_t sc[QK_K / 32][kBlockRows][2];   // [span of 32 k][row], twice, as block_q6_Kx16_i16
    int16_t m[QK_K / 64][kBlockRows][2];    // [pair of spans][row]: the two spans' 6-bit mins
    uint8_t qs[QK_K * kBlockRows / 2];      // as block_q4_Kx16
};

// What a kernel needs to know of a layout: k per block, k per scale (span), the zero point, the
// largest stored value (which decides how many products fit in int16 on AVX2), whether a min is
// subtracted, whether the scales are integers (int16_scales: one F32 d per row and block besides), where
// group g's bytes and span j's scales are, and how a block is made from 16 of ggml's (repack).
template <int ZERO_POINT> struct q8_0_weights_zp {
    using block                       = block_q8_0x16;
    static constexpr int  k_per_block = QK8_0;
    static constexpr int  span        = QK8_0;
    static constexpr int  zero_point  = ZERO_POINT;
    static constexpr bool is_signed   = ZERO_POINT == 0;  // bytes are q itself, -127..127
    static constexpr int  max_u       = 255;
    static constexpr bool has_min     = false;
    static constexpr bool nibbles     = false;
    static constexpr bool f16_scales  = true;
    static constexpr bool int16_scales = false;
    static const uint8_t * group(const block & b, int g) { return b.qs + g * kGroupBytes; }
    static const void *    scales(const block & b, int) { return b.d; }
    static const float *   mins(const block &, int) { return nullptr; }
    static void            repack(const block_q8_0 * const * rows, block * out);
};
inline void repack_q6_K_f32_scales(const block_q6_K * const * rows, block_q6_Kx16 * out);
inline void repack_q6_K_i16_scales(const block_q6_K * const * rows, block_q6_Kx16_i16 * out);
template <typename BLOCK, void (*PACK)(const block_q6_K * const *, BLOCK *), bool INT16_SCALES> struct q6_K_weights_as {
    using block                        = BLOCK;
    static constexpr int  k_per_block  = QK_K;
    static constexpr int  span         = 16;
    static constexpr int  zero_point   = 32;
    static constexpr bool is_signed    = false;
    static constexpr int  max_u        = 63;
    static constexpr bool has_min      = false;
    static constexpr bool nibbles      = false;
    static constexpr bool f16_scales   = false;
    static constexpr bool int16_scales = INT16_SCALES;
    static const uint8_t * group(const block & b, int g) { return b.qs + g * kGroupBytes; }
    static const void *    scales(const block & b, int j) { return b.d[j]; }  // F32 form only
    static const int16_t * int_scales(const block & b, int j) { return b.sc[j][0]; }  // int16 form only
    static const float *   mins(const block &, int) { return nullptr; }
    static void            repack(const block_q6_K * const * rows, block * out) { PACK(rows, out); }
};
using q6_K_f32_weights = q6_K_weights_as<block_q6_Kx16, repack_q6_K_f32_scales, false>;
using q6_K_i16_weights = q6_K_weights_as<block_q6_Kx16_i16, repack_q6_K_i16_scales, true>;
inline void repack_q4_K_f32_scales(const block_q4_K * const * rows, block_q4_Kx16 * out);
inline void repack_q4_K_i16_scales(const block_q4_K * const * rows, block_q4_Kx16_i16 * out);
template <typename BLOCK, void (*PACK)(const block_q4_K * const *, BLOCK *), bool INT16_SCALES> struct q4_K_weights_as {
    using block                        = BLOCK;
    static constexpr int  k_per_block  = QK_K;
    static constexpr int  span         = 32;
    static constexpr int  zero_point   = 0;
    static constexpr bool is_signed    = false;
    static constexpr int  max_u        = 15;
    static constexpr bool has_min      = true;
    static constexpr bool nibbles      = true;  // group g is (byte >> 4 * (g % 2)) & 15 of group(b, g)
    static constexpr bool f16_scales   = false;
    static constexpr bool int16_scales = INT16_SCALES;
    static const uint8_t * group(const block & b, int g) { return b.qs + (g / 2) * kGroupBytes; }
    static const void *    scales(const block & b, int j) { return b.d[j]; }              // F32 form only
    static const float *   mins(const block & b, int j) { return b.m[j]; }                // F32 form only
    static const int16_t * int_scales(const block & b, int j) { return b.sc[j][0]; }      // int16 form only
    static const int16_t * int_min_pairs(const block & b, int i) { return b.m[i][0]; }    // int16 form only
    static void            repack(const block_q4_K * const * rows, block * out) { PACK(rows, out); }
};
using q4_K_f32_weights = q4_K_weights_as<block_q4_Kx16, repack_q4_K_f32_scales, false>;
using q4_K_i16_weights = q4_K_weights_as<block_q4_Kx16_i16, repack_q4_K_i16_scales, true>;

template <int ZERO_POINT> void q8_0_weights_zp<ZERO_POINT>::repack(const block_q8_0 * const * rows, block_q8_0x16 * out) {
    for (int c = 0; c < kBlockRows; c++) {
        out->d[c] = rows[c]->d;
        for (int k = 0; k < QK8_0; k++) {
            out->qs[(k / 4) * kGroupBytes + c * 4 + k % 4] = (uint8_t) (rows[c]->qs[k] + ZERO_POINT);
        }
    }
}

// Row c's 6-bit values into qs: dequantize_row_q6_K's bit layout, 128-value halves of four 32-value quarters.
inline void repack_q6_K_values(const block_q6_K & in, int c, uint8_t * qs) {
    for (int k = 0; k < QK_K; k++) {
        const int       half = k / 128, quarter = (k % 128) / 32, l = k % 32;
        const uint8_t * ql   = in.ql + half * 64 + (quarter & 1) * 32;
        const uint8_t * qh   = in.qh + half * 32;
        const uint8_t   lo   = (quarter < 2 ? ql[l] & 0xF : ql[l] >> 4);
        const uint8_t   hi   = (qh[l] >> (2 * quarter)) & 3;
        qs[(k / 4) * kGroupBytes + c * 4 + k % 4] = lo | (hi << 4);
    }
}

inline void repack_q6_K_f32_scales(const block_q6_K * const * rows, block_q6_Kx16 * out) {
    for (int c = 0; c < kBlockRows; c++) {
        const block_q6_K & in = *rows[c];
        const float        d  = GGML_FP16_TO_FP32(in.d);
        for (int j = 0; j < QK_K / 16; j++) {
            out->d[j][c] = d * in.scales[j];
        }
        repack_q6_K_values(in, c, out->qs);
    }
}

inline void repack_q6_K_i16_scales(const block_q6_K * const * rows, block_q6_Kx16_i16 * out) {
    for (int c = 0; c < kBlockRows; c++) {
        const block_q6_K & in = *rows[c];
        out->d[c]             = GGML_FP16_TO_FP32(in.d);
        for (int j = 0; j < QK_K / 16; j++) {
            out->sc[j][c][0] = out->sc[j][c][1] = in.scales[j];
        }
        repack_q6_K_values(in, c, out->qs);
    }
}

// get_scale_min_k4 (ggml-quants.c): span j's 6-bit scale and min, the last four split over two bytes
inline void q4_K_scale_min(const block_q4_K & in, int j, uint8_t & sc, uint8_t & mn) {
    const uint8_t * q = in.scales;
    sc                = j < 4 ? q[j] & 63 : (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    mn                = j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
}

// Row c's 4-bit values into qs: dequantize_row_q4_K's layout, 64-value chunks of 32 bytes, low nibbles first.
inline void repack_q4_K_values(const block_q4_K & in, int c, uint8_t * qs) {
    for (int k = 0; k < QK_K; k++) {
        const uint8_t byte = in.qs[(k / 64) * 32 + k % 32];
        const uint8_t u    = k % 64 < 32 ? byte & 0xF : byte >> 4;
        qs[(k / 8) * kGroupBytes + c * 4 + k % 4] |= u << (4 * ((k / 4) % 2));
    }
}

inline void repack_q4_K_f32_scales(const block_q4_K * const * rows, block_q4_Kx16 * out) {
    memset(out->qs, 0, sizeof(out->qs));
    for (int c = 0; c < kBlockRows; c++) {
        const block_q4_K & in   = *rows[c];
        const float        d    = GGML_FP16_TO_FP32(in.GGML_COMMON_AGGR_U.GGML_COMMON_AGGR_S.d);
        const float        dmin = GGML_FP16_TO_FP32(in.GGML_COMMON_AGGR_U.GGML_COMMON_AGGR_S.dmin);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, mn;
            q4_K_scale_min(in, j, sc, mn);
            out->d[j][c] = d * sc;
            out->m[j][c] = dmin * mn;
        }
        repack_q4_K_values(in, c, out->qs);
    }
}

inline void repack_q4_K_i16_scales(const block_q4_K * const * rows, block_q4_Kx16_i16 * out) {
    memset(out->qs, 0, sizeof(out->qs));
    for (int c = 0; c < kBlockRows; c++) {
        const block_q4_K & in = *rows[c];
        out->d[c]             = GGML_FP16_TO_FP32(in.GGML_COMMON_AGGR_U.GGML_COMMON_AGGR_S.d);
        out->dmin[c]          = GGML_FP16_TO_FP32(in.GGML_COMMON_AGGR_U.GGML_COMMON_AGGR_S.dmin);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, mn;
            q4_K_scale_min(in, j, sc, mn);
            out->sc[j][c][0] = out->sc[j][c][1] = sc;
            out->m[j / 2][c][j % 2] = mn;
        }
        repack_q4_K_values(in, c, out->qs);
    }
}

// Repacks a 2-D tensor's rows, 16 at a time; -1 (ggml keeps the file's layout) when the shape does not fit.
template <typename SRC, typename DST, void (*PACK)(const SRC * const *, DST *)>
int repack_rows(int64_t nrow, int64_t k, const SRC * src, DST * dst, int64_t k_per_block) {
    if (nrow % kBlockRows != 0 || k % k_per_block != 0) {
        return -1;
    }
    const int64_t nblocks = k / k_per_block;
    const SRC *   rows[kBlockRows];
    for (int64_t r = 0; r < nrow; r += kBlockRows) {
        for (int64_t b = 0; b < nblocks; b++) {
            for (int c = 0; c < kBlockRows; c++) {
                rows[c] = &src[(r + c) * nblocks + b];
            }
            PACK(rows, dst++);
        }
    }
    return 0;
}

}  // namespace bge_m3
