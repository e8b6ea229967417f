// loadModel()'s work on a uv thread: the model file, its embedding context with this context's settings, and
// the JS object around them.
#include "model_loader.h"

#include "common.h"
#include "embedding_model.h"
#include "llama-ext.h"
#include "model_state.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

namespace bge {

// The context's eval callback (installed when profiling or when heads are loaded). Asked about each graph
// node before it runs (ask = true: "do you want its data?"), then called with the data of the nodes it
// wanted. A node nobody wants does not split the graph: without profiling and an armed capture the
// scheduler computes everything at once, as without a callback.
static bool evalCallback(struct ggml_tensor * t, bool ask, void * user) {
    auto * s = static_cast<ModelState *>(user);
    bool wanted = false;
    if (s->capture != nullptr && isLastHiddenState(t)) {
        if (!ask) {
            try {
                copyCapturedRows(t, *s->capture);
            } catch (const std::exception &) {
                s->capture->captured = false;  // reported by the embed call, which finds nothing captured
            }
        }
        wanted = true;
    }
    if (s->profile) wanted = s->profile->node(t, ask) || wanted;
    return ask ? wanted : true;
}

class LoadWorker : public PromiseWorker {
  public:
    LoadWorker(Napi::Env env, LoadOptions options) : PromiseWorker(env, "bge_m3_native.loadModel"), options(std::move(options)) {}

  protected:
    void Run() override {
        struct stat st;
        if (stat(options.modelPath.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            throw CodedError("ERR_LOAD", "model file not found: " + options.modelPath);
        }
        auto loaded = std::make_shared<ModelState>();
        // opened before llama.cpp maps the file (attach() below checks it is the same file); the GPU path keeps
        // llama.cpp's own token-embedding lookup
        if (options.tokenRowsFromFile && !options.useGpu) loaded->tokenRows = TokenRowReader::open(options.modelPath);

        llama_model_params mparams = llama_model_default_params();
        std::vector<ggml_backend_dev_t> gpus;
        if (options.useGpu) {
            mparams.n_gpu_layers = options.gpuLayers;
        } else {
            gpus.push_back(nullptr);  // an empty, NULL-terminated device list: CPU only
            mparams.devices = gpus.data();
            mparams.n_gpu_layers = 0;
        }
        loaded->model = llama_model_load_from_file(options.modelPath.c_str(), mparams);
        if (loaded->model == nullptr) throw CodedError("ERR_LOAD", withReason("failed to load model " + options.modelPath));
        clearCapturedErrors();
        if (loaded->tokenRows && !loaded->tokenRows->attach(loaded->model, options.modelPath)) loaded->tokenRows.reset();

        loaded->vocab = llama_model_get_vocab(loaded->model);
        loaded->nVocab = llama_vocab_n_tokens(loaded->vocab);
        loaded->nCtxTrain = llama_model_n_ctx_train(loaded->model);
        loaded->nEmbd = llama_model_n_embd_out(loaded->model);
        // before the context (its buffers take most of the load time): heads of another model are refused
        if (options.heads && static_cast<int64_t>(options.heads->hiddenSize) != llama_model_n_embd(loaded->model)) {
            throw CodedError("ERR_INVALID_ARG", "heads.hiddenSize is " + std::to_string(options.heads->hiddenSize) +
                                                    " but the model's hidden states have " +
                                                    std::to_string(llama_model_n_embd(loaded->model)) + " values");
        }
        loaded->bos = llama_vocab_bos(loaded->vocab);
        loaded->eos = llama_vocab_eos(loaded->vocab);
        loaded->pad = llama_vocab_pad(loaded->vocab);
        char desc[256] = {0};
        llama_model_desc(loaded->model, desc, sizeof(desc));
        loaded->description = desc;

        const uint32_t nCtx = options.contextSize > 0 ? options.contextSize : static_cast<uint32_t>(std::max(loaded->nCtxTrain, 1));
        const uint32_t nBatch = options.batchSize > 0 ? options.batchSize : nCtx;
        if (options.sequences < 1 || options.sequences > 256) throw CodedError("ERR_INVALID_ARG", "sequences must be in [1, 256]");
        if (options.sequences > nBatch) throw CodedError("ERR_INVALID_ARG", "sequences must not exceed batchSize");

        llama_context_params cparams = llama_context_default_params();
        cparams.n_ctx = std::max(nCtx, nBatch);  // a KV cache (causal models) must hold a whole packed batch
        cparams.n_batch = nBatch;
        cparams.n_ubatch = nBatch;  // non-causal attention needs each sequence in one ubatch
        cparams.n_seq_max = options.sequences;
        cparams.kv_unified = true;  // one KV buffer for all sequences (encoder-only models keep none at all)
        const int32_t threads = options.threads > 0 ? options.threads : static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
        cparams.n_threads = threads;
        cparams.n_threads_batch = threads;
        cparams.embeddings = true;
        cparams.pooling_type = LLAMA_POOLING_TYPE_UNSPECIFIED;  // the GGUF's own
        cparams.flash_attn_type = options.flashAttention;
        // GPU backends' flash-attention kernels want F16 K/V; the CPU's F32 tiled kernel is faster and exact
        const bool f32KeyValues = options.f32KeyValues < 0 ? !options.useGpu : options.f32KeyValues == 1;
        const AttentionChoice attention = chooseAttentionProducts(options.attentionProducts, loaded->model, f32KeyValues && !options.useGpu);
        cparams.flash_attn_f32_kv = f32KeyValues;
        cparams.attn_products = attention.products;
        cparams.no_perf = true;
        if (options.profile) loaded->profile = std::make_unique<Profile>();
        if (options.profile || options.heads) {
            cparams.cb_eval = evalCallback;
            cparams.cb_eval_user_data = loaded.get();  // the state outlives its context (release() frees ctx first)
        }
        if (loaded->tokenRows) {
            cparams.token_embd_reader = TokenRowReader::read;
            cparams.token_embd_reader_data = loaded->tokenRows.get();  // freed after the context (release())
        }
        cparams.op_offload = options.useGpu;
        cparams.offload_kqv = options.useGpu;

        loaded->ctx = llama_init_from_model(loaded->model, cparams);
        if (loaded->ctx == nullptr) throw CodedError("ERR_LOAD", withReason("failed to create the embedding context"));

        loaded->pooling = llama_pooling_type(loaded->ctx);
        if (loaded->pooling == LLAMA_POOLING_TYPE_NONE || loaded->pooling == LLAMA_POOLING_TYPE_RANK ||
            loaded->pooling == LLAMA_POOLING_TYPE_UNSPECIFIED) {
            throw CodedError("ERR_LOAD", std::string("model pooling type is '") + poolingName(loaded->pooling) +
                                             "': not a pooled-embedding model (set a pooling type)");
        }
        loaded->nCtx = llama_n_ctx(loaded->ctx);
        loaded->nBatch = llama_n_ubatch(loaded->ctx);
        loaded->nSeqMax = llama_n_seq_max(loaded->ctx);
        loaded->hasMemory = llama_get_memory(loaded->ctx) != nullptr;
        loaded->threads = threads;
        // learned absolute position embeddings (BERT family) have exactly n_ctx_train rows
        loaded->maxSequenceTokens = std::min<uint32_t>(loaded->nBatch, loaded->nCtxTrain > 0 ? loaded->nCtxTrain : loaded->nBatch);
        loaded->maxSequenceTokens = std::min<uint32_t>(loaded->maxSequenceTokens, loaded->nCtx);

        switch (options.flashAttention) {
            case LLAMA_FLASH_ATTN_TYPE_ENABLED: loaded->flashAttention = "on"; break;
            case LLAMA_FLASH_ATTN_TYPE_DISABLED: loaded->flashAttention = "off"; break;
            default: loaded->flashAttention = "auto"; break;
        }

        const int32_t nDevices = llama_model_n_devices(loaded->model);
        for (int32_t i = 0; i < nDevices; i++) {
            ggml_backend_dev_t dev = llama_model_get_device(loaded->model, i);
            if (dev == nullptr) continue;
            auto type = ggml_backend_dev_type(dev);
            if (type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU) {
                if (!loaded->gpuDevices.empty()) loaded->gpuDevices += ",";
                loaded->gpuDevices += ggml_backend_dev_name(dev);
            }
        }
        loaded->gpuLayers = options.useGpu ? options.gpuLayers : 0;
        loaded->usesGpu = options.useGpu && !loaded->gpuDevices.empty() && options.gpuLayers != 0;
        loaded->measureBuffers();
        loaded->f32KeyValues = f32KeyValues;
        loaded->attentionProducts = attention.name;
        if (options.heads) loaded->heads = std::make_unique<M3Heads>(std::move(*options.heads), threads);
        state = std::move(loaded);
    }

    Napi::Value Result(Napi::Env env) override { return EmbeddingModel::Wrap(env, std::move(state)); }

  private:
    LoadOptions options;
    std::shared_ptr<ModelState> state;
};

Napi::Promise queueLoad(Napi::Env env, LoadOptions options) {
    auto * worker = new LoadWorker(env, std::move(options));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
}

}  // namespace bge
