// What a context's flash attention runs its products on (load option `attentionProducts`, patch 0003).
#include "attention_products.h"

#include "ggml-backend.h"

#include <cstring>
#include <stdexcept>

namespace bge {

AttentionAsk parseAttentionAsk(const std::string & value) {
    if (value == "auto") return AttentionAsk::Auto;
    if (value == "f32") return AttentionAsk::F32;
    if (value == "int16") return AttentionAsk::Int16;
    if (value == "bf16") return AttentionAsk::Bf16;
    throw std::invalid_argument("attentionProducts must be \"auto\", \"f32\", \"int16\" or \"bf16\"");
}

// Whether the CPU backend llama.cpp loaded reports this feature (the portable build picks one of its
// per-CPU variants at run time, so only the loaded backend knows what it was compiled with).
static bool cpuBackendHasFeature(const char * name) {
    ggml_backend_reg_t cpu = ggml_backend_reg_by_name("CPU");
    if (cpu == nullptr) return false;
    auto getFeatures = reinterpret_cast<ggml_backend_get_features_t>(ggml_backend_reg_get_proc_address(cpu, "ggml_backend_get_features"));
    if (getFeatures == nullptr) return false;
    for (const ggml_backend_feature * f = getFeatures(cpu); f->name != nullptr; f++) {
        if (std::strcmp(f->name, name) == 0) return true;
    }
    return false;
}

static bool quantisedWeights(const llama_model * model) {
    const auto ftype = static_cast<enum llama_ftype>(llama_model_ftype(model) & ~LLAMA_FTYPE_GUESSED);
    return ftype != LLAMA_FTYPE_ALL_F32 && ftype != LLAMA_FTYPE_MOSTLY_F16 && ftype != LLAMA_FTYPE_MOSTLY_BF16;
}

AttentionChoice chooseAttentionProducts(AttentionAsk ask, const llama_model * model, bool cpuF32KeyValues) {
    const AttentionChoice f32 = {GGML_CPU_ATTN_PRODUCTS_F32, "f32"};
    const AttentionChoice int16 = {GGML_CPU_ATTN_PRODUCTS_INT16, "int16"};
    const AttentionChoice bf16 = {GGML_CPU_ATTN_PRODUCTS_BF16, "bf16"};
    if (!cpuF32KeyValues) return f32;
    const bool hasInt16 = cpuBackendHasFeature("BGE_M3_FA_INT16");
    const bool hasBf16 = cpuBackendHasFeature("BGE_M3_FA_BF16");
    switch (ask) {
        case AttentionAsk::Auto: return !quantisedWeights(model) ? f32 : hasInt16 ? int16 : hasBf16 ? bf16 : f32;
        case AttentionAsk::Int16: return hasInt16 ? int16 : f32;
        case AttentionAsk::Bf16: return hasBf16 ? bf16 : f32;
        default: return f32;
    }
}

}  // namespace bge
