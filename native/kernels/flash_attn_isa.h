// Which products of our tiled flash attention (flash_attn_f32.h) besides F32 the including translation unit's
// target flags give. ggml-cpu reports each as a CPU feature (patch 0003), so the portable build's per-CPU variants
// say which one has them, and the addon knows what a context's ggml_cpu_attn_products will run.
#pragma once

// int16 operands, int32 sums (flash_attn_i16_avx2.h): AVX2 and FMA without AVX-512, whose 16-lane F32 tiles
// this kernel does not fit
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#    define BGE_M3_FA_INT16 "avx2"
#endif

// BF16 operands, F32 sums (flash_attn_bf16_avx512.h): AVX512-BF16 (with BW for the pairs' permute)
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512BF16__)
#    define BGE_M3_FA_BF16 "avx512-bf16"
#endif
