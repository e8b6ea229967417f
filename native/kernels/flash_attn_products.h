// The product policies our tiled flash attention (flash_attn_f32.h) can run with in this translation unit, and
// the choice between them: what the context asked for (ggml_cpu_attn_products, per CPU backend instance, so per
// llama context: patch 0003) where this build has it and the head sizes fit it, else F32. The only place that
// knows which policies the target flags give (flash_attn_isa.h).
#pragma once

#include "flash_attn_bf16_avx512.h"
#include "flash_attn_f32_products.h"
#include "flash_attn_i16_avx2.h"
#include "flash_attn_isa.h"

#ifdef FA_F32_TILED
namespace fa_f32 {

template <typename P> struct policy_tag {
    using type = P;
};

// Calls f(policy_tag<P>()) with the products P that run for an op asked to run `asked` with these head sizes.
template <typename F>
static void with_products(ggml_cpu_attn_products asked, int64_t DK, int64_t DV, F && f) {
    switch (asked) {
#ifdef BGE_M3_FA_INT16
        case GGML_CPU_ATTN_PRODUCTS_INT16:
            if (fa_i16::i16_products::fits(DK, DV)) {
                f(policy_tag<fa_i16::i16_products>());
                return;
            }
            break;
#endif
#ifdef BGE_M3_FA_BF16
        case GGML_CPU_ATTN_PRODUCTS_BF16:
            if (fa_bf16::bf16_products::fits(DK, DV)) {
                f(policy_tag<fa_bf16::bf16_products>());
                return;
            }
            break;
#endif
        default:
            break;
    }
    f(policy_tag<f32_products>());
}

} // namespace fa_f32
#endif
