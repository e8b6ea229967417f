// dispose()'s work: freeing a model and its context on a uv thread once the calls made before it have settled.
#pragma once

#include <napi.h>

#include "model_state.h"

#include <memory>

namespace bge {

// Queues the free now, or when the last call queued before it settles; the promise resolves once it is done.
Napi::Promise queueFree(Napi::Env env, std::shared_ptr<ModelState> state);

}  // namespace bge
