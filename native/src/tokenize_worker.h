// tokenize()'s work on a uv thread: llama.cpp's tokenizer over a batch of texts.
#pragma once

#include <napi.h>

#include "model_state.h"

#include <memory>
#include <string>
#include <vector>

namespace bge {

// Queues the call; the promise resolves with one Uint32Array of token ids per text (<s> and </s> added).
Napi::Promise queueTokenize(Napi::Env env, std::shared_ptr<ModelState> state, std::vector<std::string> texts);

}  // namespace bge
