// loadModel()'s options, read from its JS object and checked on the JS thread (NativeLoadOptions in
// src/engine/native/addon-types.ts).
#pragma once

#include <napi.h>

#include "attention_products.h"
#include "llama.h"
#include "m3_heads.h"

#include <cstdint>
#include <memory>
#include <string>

namespace bge {

struct LoadOptions {
    std::string modelPath;
    uint32_t contextSize = 0;  // n_ctx (0 = the model's n_ctx_train)
    uint32_t batchSize = 0;    // n_batch = n_ubatch (0 = contextSize)
    uint32_t sequences = 1;    // n_seq_max
    int32_t threads = 0;       // 0 = hardware_concurrency
    int32_t gpuLayers = 0;     // -1 = all
    bool useGpu = false;       // false: no GPU device at all, no op offload
    enum llama_flash_attn_type flashAttention = LLAMA_FLASH_ATTN_TYPE_AUTO;
    int f32KeyValues = -1;       // patch 0003, flash attention keeps K/V in F32: 1 yes, 0 no, -1 = !useGpu
    AttentionAsk attentionProducts = AttentionAsk::Auto;  // patch 0003, what that CPU kernel's products run on
    bool profile = false;        // time every graph node (slower: one node per scheduler step)
    bool tokenRowsFromFile = true;  // patch 0011: read the token-embedding rows a batch needs with pread (CPU only)
    std::unique_ptr<HeadWeights> heads;  // BGE-M3's sparse and ColBERT heads (absent: dense only)
};

// Throws std::invalid_argument saying which option is wrong and why.
LoadOptions readLoadOptions(const Napi::Object & options);

}  // namespace bge
