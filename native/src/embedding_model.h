// The JS object around one loaded model (EmbeddingModel) and loadModel(): the N-API methods, which check
// their arguments on the JS thread and queue the work (model_loader, tokenize_worker, decode_worker, free_worker).
#pragma once

#include <napi.h>

#include "model_state.h"

#include <memory>

namespace bge {

class EmbeddingModel : public Napi::ObjectWrap<EmbeddingModel> {
  public:
    static Napi::Function Define(Napi::Env env);
    // JS object around a loaded state (called on the JS thread by the load worker)
    static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ModelState> state);

    explicit EmbeddingModel(const Napi::CallbackInfo & info);

  private:
    Napi::Value Tokenize(const Napi::CallbackInfo & info);
    Napi::Value Embed(const Napi::CallbackInfo & info);
    Napi::Value EmbedWithHeads(const Napi::CallbackInfo & info);
    Napi::Value TokenTexts(const Napi::CallbackInfo & info);
    Napi::Value OutputBufferSize(const Napi::CallbackInfo & info);
    Napi::Value ComputeBufferSize(const Napi::CallbackInfo & info);
    Napi::Value TakeProfile(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);
    Napi::Value GetDisposed(const Napi::CallbackInfo & info);
    Napi::Value GetInfo(const Napi::CallbackInfo & info);

    std::shared_ptr<ModelState> state;
    Napi::ObjectReference infoObject;
};

// loadModel(options): Promise<EmbeddingModel>
Napi::Value LoadModel(const Napi::CallbackInfo & info);

}  // namespace bge
