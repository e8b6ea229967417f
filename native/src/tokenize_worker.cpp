// tokenize()'s work on a uv thread: llama.cpp's tokenizer over a batch of texts.
#include "tokenize_worker.h"

#include "model_call_worker.h"

#include <cstring>
#include <limits>

namespace bge {

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

Napi::Promise queueTokenize(Napi::Env env, std::shared_ptr<ModelState> state, std::vector<std::string> texts) {
    auto * worker = new TokenizeWorker(env, std::move(state), std::move(texts));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
}

}  // namespace bge
