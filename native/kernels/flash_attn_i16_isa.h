// Whether this translation unit gets the int16 products of our flash-attention kernel (flash_attn_i16_avx2.h):
// built for AVX2 and FMA without AVX-512 (the AVX-512 path keeps its 16-lane F32 tiles). ggml-cpu reports it as
// the CPU feature BGE_M3_FA_INT16 (patch 0003), so the portable build's per-CPU variants say which one has it.
#pragma once
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#    define BGE_M3_FA_INT16 "avx2"
#endif
