// One loaded model and its pooled-embedding context: what the JS object, its workers and the context's eval
// callback share, and how it is freed.
#pragma once

#include "llama.h"
#include "m3_heads.h"
#include "profiler.h"
#include "token_rows.h"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace bge {

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

    // outputBufferBytes and computeBufferBytes from the context as it is now (after load, after each decode)
    void measureBuffers();
    void release();  // frees ctx + model (caller holds `lifetime` exclusively or is the last owner)
    ~ModelState();
};

// "mean", "cls", ... as NativeModelInfo.pooling spells them
const char * poolingName(enum llama_pooling_type pooling);

}  // namespace bge
