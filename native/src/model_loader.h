// loadModel()'s work on a uv thread: the model file, its embedding context with this context's settings, and
// the JS object around them.
#pragma once

#include <napi.h>

#include "load_options.h"

namespace bge {

// Queues the load; the promise resolves with an EmbeddingModel or rejects with ERR_LOAD / ERR_INVALID_ARG.
Napi::Promise queueLoad(Napi::Env env, LoadOptions options);

}  // namespace bge
