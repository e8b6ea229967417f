// embed() and embedWithHeads()'s work on a uv thread: one llama_decode of a packed batch, cancellable between
// graph nodes, then the heads over the hidden states it captured.
#pragma once

#include <napi.h>

#include "embed_arguments.h"
#include "model_state.h"

#include <memory>

namespace bge {

// Queues the decode; the promise resolves with the pooled vectors (embed()) or NativeHeadsResult
// (embedWithHeads(): `arguments.outputs` not empty).
Napi::Promise queueDecode(Napi::Env env, std::shared_ptr<ModelState> state, EmbedArguments arguments);

}  // namespace bge
