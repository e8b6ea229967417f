// What a context's flash attention runs its two products (Q.K^T, P.V) on: the load option `attentionProducts`
// ("auto", "f32", "int16"), the model's weights and what the loaded CPU backend was compiled with (patch 0003).
#pragma once

#include "llama.h"

#include <string>

namespace bge {

enum class AttentionAsk { Auto, F32, Int16, Bf16 };

// "auto", "f32", "int16" or "bf16"; anything else throws std::invalid_argument
AttentionAsk parseAttentionAsk(const std::string & value);

struct AttentionChoice {
    enum ggml_cpu_attn_products products;
    const char * name;  // what ran: "f32", "int16" or "bf16"
};

// The products a context runs. auto: int16 or BF16 (whichever the CPU backend has: never both) where the weights are
// quantised (their own rounding is ~10x what either adds); F32 for F32/F16/BF16 weights and where the backend has
// neither. int16, bf16: where the CPU backend has them, else F32. Without F32 K/V on the CPU (a GPU, or llama.cpp's
// F16 K/V) our kernel does not run: F32.
AttentionChoice chooseAttentionProducts(AttentionAsk ask, const llama_model * model, bool cpuF32KeyValues);

}  // namespace bge
