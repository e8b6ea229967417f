#include "embedding_model.h"

#include "addon_state.h"
#include "attention_products.h"
#include "common.h"
#include "llama-ext.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

namespace bge {

static const char * poolingName(enum llama_pooling_type pooling) {
    switch (pooling) {
        case LLAMA_POOLING_TYPE_NONE: return "none";
        case LLAMA_POOLING_TYPE_MEAN: return "mean";
        case LLAMA_POOLING_TYPE_CLS: return "cls";
        case LLAMA_POOLING_TYPE_LAST: return "last";
        case LLAMA_POOLING_TYPE_RANK: return "rank";
        default: return "unspecified";
    }
}

// ---- ModelState --------------------------------------------------------------------------------------

void ModelState::callSettled() {
    if (--pendingCalls > 0) return;
    auto waiting = std::move(whenIdle);
    whenIdle.clear();
    for (auto & run : waiting) run();
}

void ModelState::release() {
    if (ctx != nullptr) {
        llama_free(ctx);
        ctx = nullptr;
    }
    if (model != nullptr) {
        llama_model_free(model);
        model = nullptr;
    }
    tokenRows.reset();
    heads.reset();
    vocab = nullptr;
}

ModelState::~ModelState() { release(); }

// ---- load --------------------------------------------------------------------------------------------

struct LoadOptions {
    std::string modelPath;
    uint32_t contextSize = 0;  // n_ctx (0 = the model's n_ctx_train)
    uint32_t batchSize = 0;    // n_batch = n_ubatch (0 = contextSize)
    uint32_t sequences = 1;    // n_seq_max
    bool kvUnified = true;
    int32_t threads = 0;       // 0 = hardware_concurrency
    int32_t gpuLayers = 0;     // -1 = all
    bool useGpu = false;       // false: no GPU device at all, no op offload
    enum llama_flash_attn_type flashAttention = LLAMA_FLASH_ATTN_TYPE_AUTO;
    enum llama_pooling_type pooling = LLAMA_POOLING_TYPE_UNSPECIFIED;  // from the GGUF
    int f32KeyValues = -1;       // patch 0003, flash attention keeps K/V in F32: 1 yes, 0 no, -1 = !useGpu
    AttentionAsk attentionProducts = AttentionAsk::Auto;  // patch 0003, what that CPU kernel's products run on
    bool profile = false;        // time every graph node (slower: one node per scheduler step)
    bool tokenRowsFromFile = true;  // patch 0011: read the token-embedding rows a batch needs with pread (CPU only)
    std::unique_ptr<HeadWeights> heads;  // BGE-M3's sparse and ColBERT heads (absent: dense only)
};

// ---- profiling (opt-in, load option `profile`) ------------------------------------------------------
// A scheduler eval callback that asks for every node, so the scheduler computes one node at a time, and
// times each: the time from the "ask" call to the "done" call is that node's compute time.

static std::string profileKey(const ggml_tensor * t) {
    std::string op = ggml_op_desc(t);
    if (t->op == GGML_OP_MUL_MAT) {
        const char * name = ggml_get_name(t);
        if (std::strncmp(name, "kqv", 3) == 0) return op + " (attn P.V)";
        if (std::strncmp(name, "kq", 2) == 0) return op + " (attn Q.K^T)";
        return op + " (weights " + ggml_type_name(t->src[0]->type) + ")";
    }
    if (t->op == GGML_OP_SOFT_MAX) return op + " (attn)";
    return op;
}

static bool profileCallback(struct ggml_tensor * t, bool ask, Profile * p) {
    const auto now = std::chrono::steady_clock::now();
    if (ask) {
        p->start = now;
        return true;
    }
    std::lock_guard<std::mutex> guard(p->lock);
    auto & e = p->ops[profileKey(t)];
    e.first += std::chrono::duration<double, std::milli>(now - p->start).count();
    e.second += 1;
    return true;
}

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
    if (s->profile) wanted = profileCallback(t, ask, s->profile.get()) || wanted;
    return ask ? wanted : true;
}

static double computeBufferBytes(const llama_context * ctx) {
    double total = 0;
    for (const auto & [buft, mb] : llama_get_memory_breakdown(ctx)) total += static_cast<double>(mb.compute);
    return total;
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
        cparams.kv_unified = options.kvUnified;
        const int32_t threads = options.threads > 0 ? options.threads : static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
        cparams.n_threads = threads;
        cparams.n_threads_batch = threads;
        cparams.embeddings = true;
        cparams.pooling_type = options.pooling;
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
        loaded->outputBufferBytes.store(static_cast<double>(llama_get_output_buffer_size(loaded->ctx)));
        loaded->computeBufferBytes.store(computeBufferBytes(loaded->ctx));
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

static uint32_t readUint(const Napi::Object & obj, const char * key, uint32_t fallback) {
    Napi::Value v = obj.Get(key);
    if (v.IsUndefined() || v.IsNull()) return fallback;
    if (!v.IsNumber()) throw std::invalid_argument(std::string(key) + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > std::numeric_limits<uint32_t>::max()) {
        throw std::invalid_argument(std::string(key) + " must be a non-negative integer");
    }
    return static_cast<uint32_t>(d);
}

static std::vector<float> readFloats(const Napi::Object & obj, const char * key, size_t expected) {
    Napi::Value v = obj.Get(key);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        throw std::invalid_argument(std::string("heads.") + key + " must be a Float32Array");
    }
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    if (a.ElementLength() != expected) {
        throw std::invalid_argument(std::string("heads.") + key + " must hold " + std::to_string(expected) + " floats");
    }
    for (size_t i = 0; i < expected; i++) {
        if (!std::isfinite(a[i])) throw std::invalid_argument(std::string("heads.") + key + " holds a non-finite value");
    }
    return std::vector<float>(a.Data(), a.Data() + expected);
}

// heads: {hiddenSize, sparseWeight, sparseBias, colbertSize, colbertWeight, colbertBias} (NativeHeads)
static std::unique_ptr<HeadWeights> readHeads(const Napi::Object & options) {
    Napi::Value v = options.Get("heads");
    if (v.IsUndefined() || v.IsNull()) return nullptr;
    if (!v.IsObject()) throw std::invalid_argument("heads must be an object");
    Napi::Object o = v.As<Napi::Object>();
    auto heads = std::make_unique<HeadWeights>();
    heads->hiddenSize = readUint(o, "hiddenSize", 0);
    heads->colbertSize = readUint(o, "colbertSize", 0);
    if (heads->hiddenSize == 0 || heads->colbertSize == 0 || heads->hiddenSize > 65536 || heads->colbertSize > 65536) {
        throw std::invalid_argument("heads.hiddenSize and heads.colbertSize must be integers in [1, 65536]");
    }
    heads->sparseWeight = readFloats(o, "sparseWeight", heads->hiddenSize);
    Napi::Value bias = o.Get("sparseBias");
    if (!bias.IsNumber() || !std::isfinite(bias.As<Napi::Number>().DoubleValue())) throw std::invalid_argument("heads.sparseBias must be a finite number");
    heads->sparseBias = bias.As<Napi::Number>().FloatValue();
    heads->colbertWeight = readFloats(o, "colbertWeight", static_cast<size_t>(heads->hiddenSize) * heads->colbertSize);
    heads->colbertBias = readFloats(o, "colbertBias", heads->colbertSize);
    return heads;
}

Napi::Value LoadModel(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) return rejected(env, "loadModel(options): options must be an object", "ERR_INVALID_ARG");
    Napi::Object o = info[0].As<Napi::Object>();
    LoadOptions options;
    try {
        Napi::Value path = o.Get("modelPath");
        if (!path.IsString()) throw std::invalid_argument("modelPath must be a string");
        options.modelPath = path.As<Napi::String>().Utf8Value();
        options.contextSize = readUint(o, "contextSize", 0);
        options.batchSize = readUint(o, "batchSize", 0);
        options.sequences = readUint(o, "sequences", 1);
        options.threads = static_cast<int32_t>(std::min<uint32_t>(readUint(o, "threads", 0), 1024));
        Napi::Value kv = o.Get("kvUnified");
        if (kv.IsBoolean()) options.kvUnified = kv.As<Napi::Boolean>().Value();
        Napi::Value useGpu = o.Get("useGpu");
        if (useGpu.IsBoolean()) options.useGpu = useGpu.As<Napi::Boolean>().Value();
        Napi::Value layers = o.Get("gpuLayers");
        if (layers.IsNumber()) {
            // NaN, fractions and infinities would reach an int cast (undefined behaviour) and llama.cpp
            double d = layers.As<Napi::Number>().DoubleValue();
            if (!std::isfinite(d) || d != std::floor(d) || d < -1) throw std::invalid_argument("gpuLayers must be an integer >= -1 or \"all\"");
            options.gpuLayers = d < 0 ? -1 : static_cast<int32_t>(std::min(d, 100000.0));
        } else if (layers.IsString() && layers.As<Napi::String>().Utf8Value() == "all") {
            options.gpuLayers = -1;
        } else if (!layers.IsUndefined() && !layers.IsNull()) {
            throw std::invalid_argument("gpuLayers must be a number or \"all\"");
        }
        Napi::Value prof = o.Get("profile");
        if (prof.IsBoolean()) options.profile = prof.As<Napi::Boolean>().Value();
        Napi::Value rows = o.Get("tokenRowsFromFile");
        if (rows.IsBoolean()) {
            options.tokenRowsFromFile = rows.As<Napi::Boolean>().Value();
        } else if (!rows.IsUndefined() && !rows.IsNull()) {
            throw std::invalid_argument("tokenRowsFromFile must be a boolean");
        }
        Napi::Value f32kv = o.Get("f32KeyValues");
        if (f32kv.IsBoolean()) {
            options.f32KeyValues = f32kv.As<Napi::Boolean>().Value() ? 1 : 0;
        } else if (!f32kv.IsUndefined() && !f32kv.IsNull()) {
            throw std::invalid_argument("f32KeyValues must be a boolean");
        }
        Napi::Value products = o.Get("attentionProducts");
        if (products.IsString()) {
            options.attentionProducts = parseAttentionAsk(products.As<Napi::String>().Utf8Value());
        } else if (!products.IsUndefined() && !products.IsNull()) {
            throw std::invalid_argument("attentionProducts must be \"auto\", \"f32\", \"int16\" or \"bf16\"");
        }
        Napi::Value fa = o.Get("flashAttention");
        if (fa.IsString()) {
            std::string s = fa.As<Napi::String>().Utf8Value();
            if (s == "on") options.flashAttention = LLAMA_FLASH_ATTN_TYPE_ENABLED;
            else if (s == "off") options.flashAttention = LLAMA_FLASH_ATTN_TYPE_DISABLED;
            else if (s == "auto") options.flashAttention = LLAMA_FLASH_ATTN_TYPE_AUTO;
            else throw std::invalid_argument("flashAttention must be \"auto\", \"on\" or \"off\"");
        } else if (fa.IsBoolean()) {
            options.flashAttention = fa.As<Napi::Boolean>().Value() ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
        }
        Napi::Value pooling = o.Get("pooling");
        if (pooling.IsString()) {
            std::string s = pooling.As<Napi::String>().Utf8Value();
            if (s == "mean") options.pooling = LLAMA_POOLING_TYPE_MEAN;
            else if (s == "cls") options.pooling = LLAMA_POOLING_TYPE_CLS;
            else if (s == "last") options.pooling = LLAMA_POOLING_TYPE_LAST;
            else if (s != "model") throw std::invalid_argument("pooling must be \"model\", \"mean\", \"cls\" or \"last\"");
        }
        options.heads = readHeads(o);
    } catch (const std::invalid_argument & err) {
        return rejected(env, std::string("loadModel: ") + err.what(), "ERR_INVALID_ARG");
    }
    auto * worker = new LoadWorker(env, std::move(options));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
}

// ---- calls on a loaded model -------------------------------------------------------------------------

// Counted in ModelState::pendingCalls from construction (queued) to settling, so dispose() frees only
// after every call queued before it has run.
class ModelCallWorker : public PromiseWorker {
  public:
    ModelCallWorker(Napi::Env env, const char * name, std::shared_ptr<ModelState> s) : PromiseWorker(env, name), state(std::move(s)) {
        state->pendingCalls++;
    }

  protected:
    void OnOK() override {
        PromiseWorker::OnOK();
        state->callSettled();
    }
    void OnError(const Napi::Error & error) override {
        PromiseWorker::OnError(error);
        state->callSettled();
    }

    std::shared_ptr<ModelState> state;
};

// ---- tokenize ----------------------------------------------------------------------------------------

class TokenizeWorker : public ModelCallWorker {
  public:
    TokenizeWorker(Napi::Env env, std::shared_ptr<ModelState> state, std::vector<std::string> texts)
        : ModelCallWorker(env, "bge_m3_native.tokenize", std::move(state)), texts(std::move(texts)) {}

  protected:
    void Run() override {
        std::shared_lock<std::shared_mutex> life(state->lifetime);
        if (state->vocab == nullptr) throw CodedError("ERR_DISPOSED", "the model is disposed");
        tokens.resize(texts.size());
        for (size_t i = 0; i < texts.size(); i++) {
            const std::string & text = texts[i];
            std::vector<llama_token> & out = tokens[i];
            out.resize(text.size() + 4);
            int32_t n = llama_tokenize(state->vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                                       static_cast<int32_t>(out.size()), /*add_special*/ true, /*parse_special*/ false);
            if (n < 0 && n != std::numeric_limits<int32_t>::min()) {
                out.resize(static_cast<size_t>(-n));
                n = llama_tokenize(state->vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                                   static_cast<int32_t>(out.size()), true, false);
            }
            if (n < 0) throw CodedError("ERR_LLAMA", withReason("tokenization failed for text " + std::to_string(i)));
            out.resize(static_cast<size_t>(n));
        }
    }

    Napi::Value Result(Napi::Env env) override {
        Napi::Array result = Napi::Array::New(env, tokens.size());
        for (size_t i = 0; i < tokens.size(); i++) {
            auto arr = Napi::Uint32Array::New(env, tokens[i].size());
            if (!tokens[i].empty()) std::memcpy(arr.Data(), tokens[i].data(), tokens[i].size() * sizeof(uint32_t));
            result.Set(static_cast<uint32_t>(i), arr);
        }
        return result;
    }

  private:
    std::vector<std::string> texts;
    std::vector<std::vector<llama_token>> tokens;
};

// ---- embed -------------------------------------------------------------------------------------------

// llama.cpp's abort callback: checked between graph nodes (CPU backend); data is the call's cancel flag,
// an Int32Array element JS sets to 1 when nobody wants the batch any more.
static bool cancelRequested(void * data) { return __atomic_load_n(static_cast<const int32_t *>(data), __ATOMIC_RELAXED) != 0; }

// What one sequence of embedWithHeads() asks for besides its pooled vector (bit flags of `outputs`):
// kHidden returns the encoder's last hidden states themselves (TEI's embed_all).
enum HeadOutput : uint8_t { kSparse = 1, kColbert = 2, kHidden = 4 };

// One sequence's head outputs.
struct SequenceHeads {
    std::vector<uint32_t> sparseIds;  // ascending token ids, one each
    std::vector<float> sparseWeights;
    // its ColBERT vectors, one per position after <s>: `colbertRows` rows of the call's packed vectors from `colbertRow`
    size_t colbertRow = 0;
    size_t colbertRows = 0;
    // its last hidden states, one per position after <s>: `hiddenRows` rows of the capture from `hiddenRow`
    size_t hiddenRow = 0;
    size_t hiddenRows = 0;
};

// FlagEmbedding's sparse vector: per token id the largest weight over its positions, without <s>, </s>,
// <pad> and <unk>, and only weights > 0.
static void aggregateSparse(const ModelState & s, const llama_token * ids, const float * weights, size_t n, SequenceHeads & out) {
    std::vector<std::pair<uint32_t, float>> kept;
    for (size_t i = 0; i < n; i++) {
        const llama_token id = ids[i];
        if (!(weights[i] > 0) || id == s.bos || id == s.eos || id == s.pad) continue;
        if (llama_vocab_get_attr(s.vocab, id) & LLAMA_TOKEN_ATTR_UNKNOWN) continue;
        kept.emplace_back(static_cast<uint32_t>(id), weights[i]);
    }
    std::sort(kept.begin(), kept.end());
    for (const auto & [id, weight] : kept) {
        if (!out.sparseIds.empty() && out.sparseIds.back() == id) {
            out.sparseWeights.back() = std::max(out.sparseWeights.back(), weight);
        } else {
            out.sparseIds.push_back(id);
            out.sparseWeights.push_back(weight);
        }
    }
}

class EmbedWorker : public ModelCallWorker {
  public:
    // `outputs`: empty for embed() (pooled vectors only), one HeadOutput mask per sequence for embedWithHeads()
    EmbedWorker(Napi::Env env, std::shared_ptr<ModelState> state, std::vector<llama_token> tokens, std::vector<uint32_t> lengths,
                std::vector<uint8_t> outputs, Napi::Int32Array cancelFlag)
        : ModelCallWorker(env, outputs.empty() ? "bge_m3_native.embed" : "bge_m3_native.embedWithHeads", std::move(state)),
          tokens(std::move(tokens)), lengths(std::move(lengths)), outputs(std::move(outputs)) {
        if (!cancelFlag.IsEmpty()) {
            cancelRef = Napi::Persistent(static_cast<Napi::Object>(cancelFlag));  // keeps the flag's memory alive
            cancel = cancelFlag.Data();
        }
    }

  protected:
    void Run() override {
        std::shared_lock<std::shared_mutex> life(state->lifetime);
        if (state->ctx == nullptr) throw CodedError("ERR_DISPOSED", "the model is disposed");
        std::lock_guard<std::mutex> busy(state->compute);
        llama_context * ctx = state->ctx;
        if (cancel != nullptr && cancelRequested(const_cast<int32_t *>(cancel))) throw CodedError("ERR_CANCELLED", "the batch was cancelled before it started");

        const int32_t nTokens = static_cast<int32_t>(tokens.size());
        const size_t nSeqs = lengths.size();
        llama_batch batch = llama_batch_init(nTokens, 0, 1);
        struct BatchGuard {
            llama_batch & b;
            ~BatchGuard() { llama_batch_free(b); }
        } guard{batch};

        int32_t at = 0;
        for (size_t s = 0; s < nSeqs; s++) {
            for (uint32_t p = 0; p < lengths[s]; p++) {
                batch.token[at] = tokens[at];
                batch.pos[at] = static_cast<llama_pos>(p);
                batch.n_seq_id[at] = 1;
                batch.seq_id[at][0] = static_cast<llama_seq_id>(s);
                batch.logits[at] = 1;
                at++;
            }
        }
        batch.n_tokens = nTokens;

        HiddenCapture capture = armCapture();
        struct CaptureGuard {
            ModelState & s;
            ~CaptureGuard() { s.capture = nullptr; }
        } disarm{*state};
        if (!capture.ranges.empty()) state->capture = &capture;

        // every batch starts from empty state (a no-op for encoder-only models, which keep none)
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_set_abort_callback(ctx, cancel != nullptr ? cancelRequested : nullptr, const_cast<int32_t *>(cancel));
        const int32_t rc = llama_decode(ctx, batch);
        llama_set_abort_callback(ctx, nullptr, nullptr);
        state->capture = nullptr;
        state->outputBufferBytes.store(static_cast<double>(llama_get_output_buffer_size(ctx)));
        state->computeBufferBytes.store(computeBufferBytes(ctx));
        if (rc == 2) {
            // aborted between graph nodes: nothing of the batch is kept (the next decode starts from clear state)
            llama_memory_clear(llama_get_memory(ctx), true);
            throw CodedError("ERR_CANCELLED", "the batch was cancelled");
        }
        if (rc != 0) throw CodedError("ERR_LLAMA", withReason("llama_decode failed (code " + std::to_string(rc) + ")"));

        const size_t dim = static_cast<size_t>(state->nEmbd);
        vectors.resize(nSeqs * dim);
        for (size_t s = 0; s < nSeqs; s++) {
            const float * e = llama_get_embeddings_seq(ctx, static_cast<llama_seq_id>(s));
            if (e == nullptr) throw CodedError("ERR_LLAMA", withReason("no embedding for sequence " + std::to_string(s)));
            std::memcpy(vectors.data() + s * dim, e, dim * sizeof(float));
        }
        llama_memory_clear(llama_get_memory(ctx), true);
        if (!capture.ranges.empty()) {
            if (!capture.captured) throw CodedError("ERR_NATIVE", "the encoder's last hidden states were not captured");
            runHeads(capture);
        }
    }

    Napi::Value Result(Napi::Env env) override {
        auto pooled = Napi::Float32Array::New(env, vectors.size());
        if (!vectors.empty()) std::memcpy(pooled.Data(), vectors.data(), vectors.size() * sizeof(float));
        if (outputs.empty()) return pooled;
        Napi::Array sparse = Napi::Array::New(env, lengths.size());
        Napi::Array colbert = Napi::Array::New(env, lengths.size());
        Napi::Array hidden = Napi::Array::New(env, lengths.size());
        for (uint32_t s = 0; s < lengths.size(); s++) {
            const SequenceHeads & h = heads[s];
            if (outputs[s] & kSparse) {
                Napi::Object v = Napi::Object::New(env);
                auto ids = Napi::Uint32Array::New(env, h.sparseIds.size());
                auto weights = Napi::Float32Array::New(env, h.sparseWeights.size());
                if (!h.sparseIds.empty()) std::memcpy(ids.Data(), h.sparseIds.data(), h.sparseIds.size() * sizeof(uint32_t));
                if (!h.sparseWeights.empty()) std::memcpy(weights.Data(), h.sparseWeights.data(), h.sparseWeights.size() * sizeof(float));
                v.Set("indices", ids);
                v.Set("values", weights);
                sparse.Set(s, v);
            } else {
                sparse.Set(s, env.Null());
            }
            if (outputs[s] & kHidden) {
                const size_t width = static_cast<size_t>(llama_model_n_embd(state->model));
                auto rows = Napi::Float32Array::New(env, h.hiddenRows * width);
                if (h.hiddenRows > 0) std::memcpy(rows.Data(), hiddenStates.data() + h.hiddenRow * width, h.hiddenRows * width * sizeof(float));
                hidden.Set(s, rows);
            } else {
                hidden.Set(s, env.Null());
            }
            if (outputs[s] & kColbert) {
                const size_t size = state->heads->colbertSize();
                auto vectors = Napi::Float32Array::New(env, h.colbertRows * size);
                if (h.colbertRows > 0) std::memcpy(vectors.Data(), colbertVectors.data() + h.colbertRow * size, h.colbertRows * size * sizeof(float));
                colbert.Set(s, vectors);
            } else {
                colbert.Set(s, env.Null());
            }
        }
        Napi::Object result = Napi::Object::New(env);
        result.Set("pooled", pooled);
        result.Set("sparse", sparse);
        result.Set("colbert", colbert);
        result.Set("hidden", hidden);
        return result;
    }

  private:
    // The batch rows the heads read: every position after <s> of each sequence that asks for an output.
    HiddenCapture armCapture() const {
        HiddenCapture capture;
        capture.width = static_cast<size_t>(llama_model_n_embd(state->model));
        uint32_t start = 0;
        for (size_t s = 0; s < outputs.size(); s++) {
            if (outputs[s] != 0 && lengths[s] > 1) capture.ranges.emplace_back(start + 1, lengths[s] - 1);
            start += lengths[s];
        }
        return capture;
    }

    void runHeads(HiddenCapture & capture) {
        M3Heads & m3 = *state->heads;
        const size_t width = capture.width;
        const size_t colbertSize = m3.colbertSize();
        heads.resize(lengths.size());
        // ColBERT as one product over every asking sequence's rows (each product starts ggml's thread pool
        // once: per sequence, that cost more than the arithmetic on short batches); its rows packed here
        // unless every captured sequence asks for it
        std::vector<float> colbertRows;
        std::vector<float> weights;
        size_t row = 0;    // into capture.states
        size_t start = 0;  // into tokens
        size_t colbertTotal = 0;
        bool everyCapturedWantsColbert = true;
        bool keepHidden = false;
        for (size_t s = 0; s < lengths.size(); s++) {
            if (outputs[s] != 0 && lengths[s] > 1 && !(outputs[s] & kColbert)) everyCapturedWantsColbert = false;
        }
        for (size_t s = 0; s < lengths.size(); s++) {
            const size_t n = lengths[s] - 1;
            if (outputs[s] != 0 && n > 0) {
                const float * states = capture.states.data() + row * width;
                if (outputs[s] & kSparse) {
                    weights.resize(n);
                    m3.sparse(states, n, weights.data());
                    aggregateSparse(*state, tokens.data() + start + 1, weights.data(), n, heads[s]);
                }
                if (outputs[s] & kColbert) {
                    if (!everyCapturedWantsColbert) colbertRows.insert(colbertRows.end(), states, states + n * width);
                    colbertTotal += n;
                }
                if (outputs[s] & kHidden) {
                    heads[s].hiddenRow = row;
                    heads[s].hiddenRows = n;
                    keepHidden = true;
                }
                row += n;
            }
            start += lengths[s];
        }
        if (colbertTotal > 0) {
            const float * rows = everyCapturedWantsColbert ? capture.states.data() : colbertRows.data();
            colbertVectors.resize(colbertTotal * colbertSize);
            m3.colbert(rows, colbertTotal, colbertVectors.data());
            size_t at = 0;  // into colbertVectors, in rows
            for (size_t s = 0; s < lengths.size(); s++) {
                const size_t n = lengths[s] - 1;
                if (!(outputs[s] & kColbert) || n == 0) continue;
                heads[s].colbertRow = at;
                heads[s].colbertRows = n;
                at += n;
            }
        }
        // the capture is this call's: its rows go back as they are to the sequences that ask for them
        if (keepHidden) hiddenStates = std::move(capture.states);
    }

    std::vector<llama_token> tokens;
    std::vector<uint32_t> lengths;
    std::vector<uint8_t> outputs;
    std::vector<float> vectors;
    std::vector<SequenceHeads> heads;
    std::vector<float> colbertVectors;  // every asking sequence's ColBERT vectors, packed in batch order
    std::vector<float> hiddenStates;    // the captured last hidden states, kept when a sequence asks for them
    Napi::ObjectReference cancelRef;
    const int32_t * cancel = nullptr;
};

// ---- free --------------------------------------------------------------------------------------------

class FreeWorker : public PromiseWorker {
  public:
    FreeWorker(Napi::Env env, std::shared_ptr<ModelState> state) : PromiseWorker(env, "bge_m3_native.dispose"), state(std::move(state)) {}

  protected:
    void Run() override {
        std::unique_lock<std::shared_mutex> life(state->lifetime);  // waits for calls in flight
        std::lock_guard<std::mutex> busy(state->compute);
        state->release();
        state->outputBufferBytes.store(0);
        state->computeBufferBytes.store(0);
    }

  private:
    std::shared_ptr<ModelState> state;
};

// ---- EmbeddingModel ----------------------------------------------------------------------------------

Napi::Function EmbeddingModel::Define(Napi::Env env) {
    return DefineClass(env, "EmbeddingModel", {
        InstanceMethod("tokenize", &EmbeddingModel::Tokenize),
        InstanceMethod("embed", &EmbeddingModel::Embed),
        InstanceMethod("embedWithHeads", &EmbeddingModel::EmbedWithHeads),
        InstanceMethod("tokenTexts", &EmbeddingModel::TokenTexts),
        InstanceMethod("outputBufferSize", &EmbeddingModel::OutputBufferSize),
        InstanceMethod("computeBufferSize", &EmbeddingModel::ComputeBufferSize),
        InstanceMethod("takeProfile", &EmbeddingModel::TakeProfile),
        InstanceMethod("dispose", &EmbeddingModel::Dispose),
        InstanceAccessor("disposed", &EmbeddingModel::GetDisposed, nullptr),
        InstanceAccessor("info", &EmbeddingModel::GetInfo, nullptr),
    });
}

Napi::Object EmbeddingModel::Wrap(Napi::Env env, std::shared_ptr<ModelState> state) {
    AddonState * addon = env.GetInstanceData<AddonState>();
    // the constructor only accepts this private token, so JS cannot construct half-made objects
    Napi::Object obj = addon->modelConstructor.New({addon->constructToken.Value()});
    EmbeddingModel * self = Napi::ObjectWrap<EmbeddingModel>::Unwrap(obj);
    self->state = std::move(state);

    const ModelState & s = *self->state;
    Napi::Object i = Napi::Object::New(env);
    i.Set("nVocab", s.nVocab);
    i.Set("nEmbd", s.nEmbd);
    i.Set("nCtxTrain", s.nCtxTrain);
    i.Set("nCtx", s.nCtx);
    i.Set("nBatch", s.nBatch);
    i.Set("nSeqMax", s.nSeqMax);
    i.Set("maxSequenceTokens", s.maxSequenceTokens);
    i.Set("bosToken", s.bos);
    i.Set("eosToken", s.eos);
    i.Set("pooling", poolingName(s.pooling));
    i.Set("usesGpu", s.usesGpu);
    i.Set("gpuDevices", s.gpuDevices);
    i.Set("gpuLayers", s.gpuLayers);
    i.Set("threads", s.threads);
    i.Set("flashAttention", s.flashAttention);
    i.Set("f32KeyValues", s.f32KeyValues);
    i.Set("attentionProducts", s.attentionProducts);
    i.Set("tokenRowsFromFile", s.tokenRows != nullptr);
    i.Set("hasMemory", s.hasMemory);
    i.Set("description", s.description);
    i.Set("colbertSize", s.heads ? s.heads->colbertSize() : 0);
    // control and unknown tokens (<s>, <pad>, </s>, <unk>, <mask>): what a tokenizer's decode skips
    std::vector<uint32_t> special;
    for (int32_t id = 0; id < s.nVocab; id++) {
        if (llama_vocab_get_attr(s.vocab, id) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_UNKNOWN)) special.push_back(static_cast<uint32_t>(id));
    }
    auto specialIds = Napi::Uint32Array::New(env, special.size());
    if (!special.empty()) std::memcpy(specialIds.Data(), special.data(), special.size() * sizeof(uint32_t));
    i.Set("specialTokens", specialIds);
    i.Freeze();
    self->infoObject = Napi::Persistent(i);
    return obj;
}

EmbeddingModel::EmbeddingModel(const Napi::CallbackInfo & info) : Napi::ObjectWrap<EmbeddingModel>(info) {
    AddonState * addon = info.Env().GetInstanceData<AddonState>();
    if (info.Length() < 1 || !info[0].StrictEquals(addon->constructToken.Value())) {
        throw Napi::TypeError::New(info.Env(), "EmbeddingModel cannot be constructed directly; use loadModel()");
    }
}

Napi::Value EmbeddingModel::GetInfo(const Napi::CallbackInfo & info) {
    return infoObject.IsEmpty() ? info.Env().Undefined() : infoObject.Value();
}

Napi::Value EmbeddingModel::GetDisposed(const Napi::CallbackInfo & info) {
    return Napi::Boolean::New(info.Env(), !state || state->disposed.load());
}

Napi::Value EmbeddingModel::OutputBufferSize(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), state ? state->outputBufferBytes.load() : 0);
}

Napi::Value EmbeddingModel::ComputeBufferSize(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), state ? state->computeBufferBytes.load() : 0);
}

// {op: [ms, count]} accumulated since the last call (empty unless loaded with profile: true); resets it.
// Takes only the profile's own lock, which a running decode holds for one node's update at a time.
Napi::Value EmbeddingModel::TakeProfile(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    if (!state || !state->profile) return out;
    std::map<std::string, std::pair<double, double>> ops;
    {
        std::lock_guard<std::mutex> guard(state->profile->lock);
        ops.swap(state->profile->ops);
    }
    for (const auto & [op, e] : ops) {
        Napi::Array a = Napi::Array::New(env, 2);
        a.Set(0u, e.first);
        a.Set(1u, e.second);
        out.Set(op, a);
    }
    return out;
}

Napi::Value EmbeddingModel::Tokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!state || state->disposed.load()) return rejected(env, "the model is disposed", "ERR_DISPOSED");
    if (info.Length() < 1 || !info[0].IsArray()) return rejected(env, "tokenize(texts): texts must be an array of strings", "ERR_INVALID_ARG");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<std::string> texts;
    texts.reserve(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value v = arr.Get(i);
        if (!v.IsString()) return rejected(env, "tokenize(texts): texts[" + std::to_string(i) + "] is not a string", "ERR_INVALID_ARG");
        texts.push_back(v.As<Napi::String>().Utf8Value());
        if (texts.back().size() > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
            return rejected(env, "tokenize(texts): texts[" + std::to_string(i) + "] is too long", "ERR_INVALID_ARG");
        }
    }
    auto * worker = new TokenizeWorker(env, state, std::move(texts));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
}

struct SequenceError {
    const char * code = nullptr;  // nullptr: the sequence is fine
    std::string message;
};

// Validates one sequence and appends it to `tokens`.
static SequenceError appendSequence(const Napi::Value & v, uint32_t index, const ModelState & s, std::vector<llama_token> & tokens, uint32_t & length) {
    const std::string where = "sequences[" + std::to_string(index) + "]";
    const uint32_t nVocab = static_cast<uint32_t>(s.nVocab);
    auto badId = [&](size_t at, const std::string & value) {
        return SequenceError{"ERR_INVALID_TOKENS", where + "[" + std::to_string(at) + "] = " + value + " is not a token id (integers in [0, " + std::to_string(nVocab) + "))"};
    };
    auto invalid = [&](const std::string & what) { return SequenceError{"ERR_INVALID_TOKENS", where + what}; };
    auto tooLong = [&](size_t n) {
        return SequenceError{"ERR_BATCH_LIMIT", where + " has " + std::to_string(n) + " tokens; at most " + std::to_string(s.maxSequenceTokens) + " fit one sequence"};
    };
    size_t n = 0;
    if (v.IsTypedArray()) {
        Napi::TypedArray ta = v.As<Napi::TypedArray>();
        n = ta.ElementLength();
        if (n == 0) return invalid(" is empty");
        if (n > s.maxSequenceTokens) return tooLong(n);
        if (ta.TypedArrayType() == napi_uint32_array) {
            const uint32_t * d = ta.As<Napi::Uint32Array>().Data();
            for (size_t k = 0; k < n; k++) {
                if (d[k] >= nVocab) return badId(k, std::to_string(d[k]));
                tokens.push_back(static_cast<llama_token>(d[k]));
            }
        } else if (ta.TypedArrayType() == napi_int32_array) {
            const int32_t * d = ta.As<Napi::Int32Array>().Data();
            for (size_t k = 0; k < n; k++) {
                if (d[k] < 0 || static_cast<uint32_t>(d[k]) >= nVocab) return badId(k, std::to_string(d[k]));
                tokens.push_back(d[k]);
            }
        } else {
            return invalid(" must be a Uint32Array, an Int32Array or an array of integers");
        }
    } else if (v.IsArray()) {
        Napi::Array a = v.As<Napi::Array>();
        n = a.Length();
        if (n == 0) return invalid(" is empty");
        if (n > s.maxSequenceTokens) return tooLong(n);
        for (uint32_t k = 0; k < n; k++) {
            Napi::Value e = a.Get(k);
            if (!e.IsNumber()) return badId(k, e.ToString().Utf8Value());
            double d = e.As<Napi::Number>().DoubleValue();
            if (!std::isfinite(d) || d != std::floor(d) || d < 0 || d >= static_cast<double>(nVocab)) {
                return badId(k, e.ToString().Utf8Value());
            }
            tokens.push_back(static_cast<llama_token>(d));
        }
    } else {
        return invalid(" must be a Uint32Array, an Int32Array or an array of integers");
    }
    length = static_cast<uint32_t>(n);
    return {};
}

// embed(sequences, cancel?) and embedWithHeads(sequences, outputs, cancel?): checks the arguments on the
// JS thread and queues one decode. `call` names the method in messages.
static Napi::Value queueEmbed(const Napi::CallbackInfo & info, const std::shared_ptr<ModelState> & state, bool withHeads) {
    Napi::Env env = info.Env();
    const std::string call = withHeads ? "embedWithHeads(sequences, outputs, cancel)" : "embed(sequences, cancel)";
    if (!state || state->disposed.load()) return rejected(env, "the model is disposed", "ERR_DISPOSED");
    if (info.Length() < 1 || !info[0].IsArray()) {
        return rejected(env, call + ": sequences must be an array of token-id arrays", "ERR_INVALID_ARG");
    }
    const size_t cancelAt = withHeads ? 2 : 1;
    Napi::Int32Array cancelFlag;
    if (info.Length() > cancelAt && !info[cancelAt].IsUndefined()) {
        Napi::Value flag = info[cancelAt];
        const bool isFlag = flag.IsTypedArray() && flag.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array &&
                            flag.As<Napi::TypedArray>().ElementLength() >= 1;
        if (!isFlag) return rejected(env, call + ": cancel must be an Int32Array of length >= 1", "ERR_INVALID_ARG");
        cancelFlag = flag.As<Napi::Int32Array>();
    }
    Napi::Array seqs = info[0].As<Napi::Array>();
    const ModelState & s = *state;
    const uint32_t count = seqs.Length();
    if (count == 0) return rejected(env, call + ": the batch is empty", "ERR_INVALID_ARG");
    if (count > s.nSeqMax) {
        return rejected(env, call + ": " + std::to_string(count) + " sequences exceed the context's limit of " + std::to_string(s.nSeqMax),
                        "ERR_BATCH_LIMIT");
    }
    std::vector<uint8_t> outputs;
    if (withHeads) {
        if (!s.heads) return rejected(env, call + ": the model was loaded without heads", "ERR_NO_HEADS");
        const bool isMasks = info.Length() > 1 && info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
        if (!isMasks || info[1].As<Napi::TypedArray>().ElementLength() != count) {
            return rejected(env, call + ": outputs must be a Uint8Array with one entry per sequence", "ERR_INVALID_ARG");
        }
        Napi::Uint8Array masks = info[1].As<Napi::Uint8Array>();
        outputs.assign(masks.Data(), masks.Data() + count);
        for (uint8_t mask : outputs) {
            if ((mask & ~(kSparse | kColbert | kHidden)) != 0) {
                return rejected(env, call + ": outputs entries are 0..7 (1 sparse, 2 ColBERT, 4 hidden states)", "ERR_INVALID_ARG");
            }
        }
    }
    std::vector<llama_token> tokens;
    std::vector<uint32_t> lengths(count);
    for (uint32_t i = 0; i < count; i++) {
        SequenceError err = appendSequence(seqs.Get(i), i, s, tokens, lengths[i]);
        if (err.code != nullptr) return rejected(env, call + ": " + err.message, err.code);
        if (tokens.size() > s.nBatch) {
            return rejected(env, call + ": the batch has more than " + std::to_string(s.nBatch) + " tokens (the context's batch size)",
                            "ERR_BATCH_LIMIT");
        }
    }
    auto * worker = new EmbedWorker(env, state, std::move(tokens), std::move(lengths), std::move(outputs), cancelFlag);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
}

Napi::Value EmbeddingModel::Embed(const Napi::CallbackInfo & info) { return queueEmbed(info, state, false); }

Napi::Value EmbeddingModel::EmbedWithHeads(const Napi::CallbackInfo & info) { return queueEmbed(info, state, true); }

// tokenTexts(ids): each id's vocabulary entry as stored (SentencePiece pieces keep their "\u2581" word
// marker, as FlagEmbedding's convert_ids_to_tokens shows them). A lookup: no worker needed.
Napi::Value EmbeddingModel::TokenTexts(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    auto fail = [&](const std::string & message, const char * code) {
        Napi::Error error = Napi::Error::New(env, message);
        error.Set("code", Napi::String::New(env, code));
        return error;
    };
    // dispose() sets the flag on this thread before the model can be freed: a lookup never races the free
    if (!state || state->disposed.load() || state->vocab == nullptr) throw fail("the model is disposed", "ERR_DISPOSED");
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
        throw fail("tokenTexts(ids): ids must be a Uint32Array", "ERR_INVALID_ARG");
    }
    Napi::Uint32Array ids = info[0].As<Napi::Uint32Array>();
    Napi::Array texts = Napi::Array::New(env, ids.ElementLength());
    for (size_t i = 0; i < ids.ElementLength(); i++) {
        if (ids[i] >= static_cast<uint32_t>(state->nVocab)) throw fail("tokenTexts(ids): id " + std::to_string(ids[i]) + " is not in the vocabulary", "ERR_INVALID_TOKENS");
        texts.Set(static_cast<uint32_t>(i), Napi::String::New(env, llama_vocab_get_text(state->vocab, static_cast<llama_token>(ids[i]))));
    }
    return texts;
}

Napi::Value EmbeddingModel::Dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!state) {
        auto d = Napi::Promise::Deferred::New(env);
        d.Resolve(env.Undefined());
        return d.Promise();
    }
    state->disposed.store(true);
    auto * worker = new FreeWorker(env, state);
    Napi::Promise promise = worker->Promise();
    if (state->pendingCalls == 0) worker->Queue();
    else state->whenIdle.push_back([worker] { worker->Queue(); });
    return promise;
}

}  // namespace bge
