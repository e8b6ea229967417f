// Which of our int8 weight-product kernels (int8_gemm.h) the including translation unit's target flags
// allow: BGE_M3_INT8_GEMM names it (ggml-cpu reports it as the feature BGE_M3_INT8 in
// llama_print_system_info, so a run says which kernel it used), undefined where none fits.
#pragma once

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
#    define BGE_M3_INT8_AVX512VNNI 1
#    define BGE_M3_INT8_GEMM       "avx512-vnni"
#elif defined(__AVXVNNI__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#    define BGE_M3_INT8_AVXVNNI 1
#    define BGE_M3_INT8_GEMM    "avx-vnni"
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#    define BGE_M3_INT8_AVX2 1
#    define BGE_M3_INT8_GEMM "avx2"
#endif
