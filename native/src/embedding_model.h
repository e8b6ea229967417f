// One llama.cpp model + its pooled-embedding context, owned by a JS object.
#pragma once

#include <napi.h>

#include "llama.h"
#include "m3_heads.h"
#include "token_rows.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace bge {

// per-op compute time of the graph nodes (load option profile: true)
struct Profile {
    std::chrono::steady_clock::time_point start;  // the computing thread's only
    // guards `ops` alone (held per node, briefly), so takeProfile() never waits for a running decode
    std::mutex lock;
    std::map<std::string, std::pair<double, double>> ops;  // op -> (ms, nodes)
};

struct ModelState {
    // shared: tokenize / embed in progress; unique: freeing. Frees wait for running calls.
    std::shared_mutex lifetime;
    // one decode at a time per context (the TS side serialises too; this keeps misuse from crashing)
    std::mutex compute;

    llama_model * model = nullptr;
    llama_context * ctx = nullptr;
    const llama_vocab * vocab = nullptr;

    // set on the JS thread by dispose(): later calls reject at once
    std::atomic<bool> disposed{false};
    std::atomic<double> outputBufferBytes{0};
    std::atomic<double> computeBufferBytes{0};
    std::unique_ptr<Profile> profile;  // set when loaded with profile: true (used by the eval callback)
    std::unique_ptr<M3Heads> heads;    // set when loaded with heads (sparse and ColBERT outputs)
    // the context's token-embedding rows come from the file through it (patch 0011); freed after ctx
    std::unique_ptr<TokenRowReader> tokenRows;
    // armed by an embed call that wants head outputs, for the length of its decode (under `compute`)
    HiddenCapture * capture = nullptr;

    // JS thread only: calls queued or running, and what waits for them all to settle (frees). libuv may
    // start a call queued before dispose() after the free queued by it; counting them keeps that order.
    uint32_t pendingCalls = 0;
    std::vector<std::function<void()>> whenIdle;
    void callSettled();

    // immutable after load
    int32_t nVocab = 0;
    int32_t nEmbd = 0;       // pooled vector length (n_embd_out)
    int32_t nCtxTrain = 0;
    uint32_t nCtx = 0;
    uint32_t nBatch = 0;     // == n_ubatch: most tokens per embed call
    uint32_t nSeqMax = 0;
    uint32_t maxSequenceTokens = 0;
    llama_token bos = LLAMA_TOKEN_NULL;
    llama_token eos = LLAMA_TOKEN_NULL;
    llama_token pad = LLAMA_TOKEN_NULL;
    enum llama_pooling_type pooling = LLAMA_POOLING_TYPE_UNSPECIFIED;
    bool usesGpu = false;
    int32_t gpuLayers = 0;
    int32_t threads = 0;
    bool hasMemory = false;
    bool f32KeyValues = false;
    std::string attentionProducts;  // what the context's flash attention runs its products on (patch 0003)
    std::string flashAttention;
    std::string description;
    std::string gpuDevices;  // comma-separated names of the GPU devices the model uses

    void release();  // frees ctx + model (caller holds `lifetime` exclusively or is the last owner)
    ~ModelState();
};

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
