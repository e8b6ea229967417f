// embed() and embedWithHeads()'s work on a uv thread: one llama_decode of a packed batch, cancellable between
// graph nodes, then the heads over the hidden states it captured.
#include "decode_worker.h"

#include "model_call_worker.h"

#include <cstring>

namespace bge {

// llama.cpp's abort callback: checked between graph nodes (CPU backend); data is the call's cancel flag,
// an Int32Array element JS sets to 1 when nobody wants the batch any more.
static bool cancelRequested(void * data) { return __atomic_load_n(static_cast<const int32_t *>(data), __ATOMIC_RELAXED) != 0; }

class DecodeWorker : public ModelCallWorker {
  public:
    // `outputs`: empty for embed() (pooled vectors only), one HeadOutput mask per sequence for embedWithHeads()
    DecodeWorker(Napi::Env env, std::shared_ptr<ModelState> state, EmbedArguments arguments)
        : ModelCallWorker(env, arguments.outputs.empty() ? "bge_m3_native.embed" : "bge_m3_native.embedWithHeads", std::move(state)),
          tokens(std::move(arguments.tokens)), lengths(std::move(arguments.lengths)), outputs(std::move(arguments.outputs)) {
        if (!arguments.cancelFlag.IsEmpty()) {
            cancelRef = Napi::Persistent(static_cast<Napi::Object>(arguments.cancelFlag));  // keeps the flag's memory alive
            cancel = arguments.cancelFlag.Data();
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

        HiddenCapture capture = armCapture(lengths, outputs, static_cast<size_t>(llama_model_n_embd(state->model)));
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
        state->measureBuffers();
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
        if (!capture.ranges.empty() && !capture.captured) throw CodedError("ERR_NATIVE", "the encoder's last hidden states were not captured");
        // every sequence gets its (maybe empty) outputs, also when none had a row to capture
        if (!outputs.empty()) heads = runHeads(*state->heads, capture, state->vocab, tokens.data(), lengths, outputs);
    }

    Napi::Value Result(Napi::Env env) override {
        auto pooled = Napi::Float32Array::New(env, vectors.size());
        if (!vectors.empty()) std::memcpy(pooled.Data(), vectors.data(), vectors.size() * sizeof(float));
        if (outputs.empty()) return pooled;
        Napi::Array sparse = Napi::Array::New(env, lengths.size());
        Napi::Array colbert = Napi::Array::New(env, lengths.size());
        Napi::Array hidden = Napi::Array::New(env, lengths.size());
        for (uint32_t s = 0; s < lengths.size(); s++) {
            const SequenceHeads & h = heads.sequences[s];
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
                if (h.hiddenRows > 0) std::memcpy(rows.Data(), heads.hiddenStates.data() + h.hiddenRow * width, h.hiddenRows * width * sizeof(float));
                hidden.Set(s, rows);
            } else {
                hidden.Set(s, env.Null());
            }
            if (outputs[s] & kColbert) {
                const size_t size = state->heads->colbertSize();
                auto vectors = Napi::Float32Array::New(env, h.colbertRows * size);
                if (h.colbertRows > 0) std::memcpy(vectors.Data(), heads.colbertVectors.data() + h.colbertRow * size, h.colbertRows * size * sizeof(float));
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
    std::vector<llama_token> tokens;
    std::vector<uint32_t> lengths;
    std::vector<uint8_t> outputs;
    std::vector<float> vectors;
    BatchHeads heads;
    Napi::ObjectReference cancelRef;
    const int32_t * cancel = nullptr;
};

Napi::Promise queueDecode(Napi::Env env, std::shared_ptr<ModelState> state, EmbedArguments arguments) {
    auto * worker = new DecodeWorker(env, std::move(state), std::move(arguments));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
}

}  // namespace bge
