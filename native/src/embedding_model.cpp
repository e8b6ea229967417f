// The JS object around one loaded model (EmbeddingModel) and loadModel(): the N-API methods, which check
// their arguments on the JS thread and queue the work on a uv thread.
#include "embedding_model.h"

#include "addon_state.h"
#include "common.h"
#include "decode_worker.h"
#include "free_worker.h"
#include "load_options.h"
#include "model_loader.h"
#include "tokenize_worker.h"

#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace bge {

Napi::Value LoadModel(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) return rejected(env, "loadModel(options): options must be an object", "ERR_INVALID_ARG");
    LoadOptions options;
    try {
        options = readLoadOptions(info[0].As<Napi::Object>());
    } catch (const std::invalid_argument & err) {
        return rejected(env, std::string("loadModel: ") + err.what(), "ERR_INVALID_ARG");
    }
    return queueLoad(env, std::move(options));
}

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
// Never waits for a running decode (Profile::take()).
Napi::Value EmbeddingModel::TakeProfile(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    if (!state || !state->profile) return out;
    for (const auto & [op, e] : state->profile->take()) {
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
    return queueTokenize(env, state, std::move(texts));
}

// embed(sequences, cancel?) and embedWithHeads(sequences, outputs, cancel?): one decode.
static Napi::Value queueEmbed(const Napi::CallbackInfo & info, const std::shared_ptr<ModelState> & state, bool withHeads) {
    Napi::Env env = info.Env();
    if (!state || state->disposed.load()) return rejected(env, "the model is disposed", "ERR_DISPOSED");
    EmbedArguments arguments;
    ArgumentError err = readEmbedArguments(info, *state, withHeads, arguments);
    if (err.code != nullptr) return rejected(env, err.message, err.code);
    return queueDecode(env, state, std::move(arguments));
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
    return queueFree(env, state);
}

}  // namespace bge
