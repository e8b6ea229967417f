// embed() and embedWithHeads()'s arguments, checked on the JS thread before a decode is queued.
#include "embed_arguments.h"

#include <cmath>

namespace bge {

// Validates one sequence and appends it to `tokens`.
static ArgumentError appendSequence(const Napi::Value & v, uint32_t index, const ModelState & s, std::vector<llama_token> & tokens, uint32_t & length) {
    const std::string where = "sequences[" + std::to_string(index) + "]";
    const uint32_t nVocab = static_cast<uint32_t>(s.nVocab);
    auto badId = [&](size_t at, const std::string & value) {
        return ArgumentError{"ERR_INVALID_TOKENS", where + "[" + std::to_string(at) + "] = " + value + " is not a token id (integers in [0, " + std::to_string(nVocab) + "))"};
    };
    auto invalid = [&](const std::string & what) { return ArgumentError{"ERR_INVALID_TOKENS", where + what}; };
    auto tooLong = [&](size_t n) {
        return ArgumentError{"ERR_BATCH_LIMIT", where + " has " + std::to_string(n) + " tokens; at most " + std::to_string(s.maxSequenceTokens) + " fit one sequence"};
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

ArgumentError readEmbedArguments(const Napi::CallbackInfo & info, const ModelState & s, bool withHeads, EmbedArguments & out) {
    // `call` names the method in messages
    const std::string call = withHeads ? "embedWithHeads(sequences, outputs, cancel)" : "embed(sequences, cancel)";
    auto fail = [&](const char * code, const std::string & message) { return ArgumentError{code, call + ": " + message}; };
    if (info.Length() < 1 || !info[0].IsArray()) return fail("ERR_INVALID_ARG", "sequences must be an array of token-id arrays");
    const size_t cancelAt = withHeads ? 2 : 1;
    if (info.Length() > cancelAt && !info[cancelAt].IsUndefined()) {
        Napi::Value flag = info[cancelAt];
        const bool isFlag = flag.IsTypedArray() && flag.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array &&
                            flag.As<Napi::TypedArray>().ElementLength() >= 1;
        if (!isFlag) return fail("ERR_INVALID_ARG", "cancel must be an Int32Array of length >= 1");
        out.cancelFlag = flag.As<Napi::Int32Array>();
    }
    Napi::Array seqs = info[0].As<Napi::Array>();
    const uint32_t count = seqs.Length();
    if (count == 0) return fail("ERR_INVALID_ARG", "the batch is empty");
    if (count > s.nSeqMax) {
        return fail("ERR_BATCH_LIMIT", std::to_string(count) + " sequences exceed the context's limit of " + std::to_string(s.nSeqMax));
    }
    if (withHeads) {
        if (!s.heads) return fail("ERR_NO_HEADS", "the model was loaded without heads");
        const bool isMasks = info.Length() > 1 && info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
        if (!isMasks || info[1].As<Napi::TypedArray>().ElementLength() != count) {
            return fail("ERR_INVALID_ARG", "outputs must be a Uint8Array with one entry per sequence");
        }
        Napi::Uint8Array masks = info[1].As<Napi::Uint8Array>();
        out.outputs.assign(masks.Data(), masks.Data() + count);
        for (uint8_t mask : out.outputs) {
            if ((mask & ~(kSparse | kColbert | kHidden)) != 0) {
                return fail("ERR_INVALID_ARG", "outputs entries are 0..7 (1 sparse, 2 ColBERT, 4 hidden states)");
            }
        }
    }
    out.lengths.resize(count);
    for (uint32_t i = 0; i < count; i++) {
        ArgumentError err = appendSequence(seqs.Get(i), i, s, out.tokens, out.lengths[i]);
        if (err.code != nullptr) return fail(err.code, err.message);
        if (out.tokens.size() > s.nBatch) {
            return fail("ERR_BATCH_LIMIT", "the batch has more than " + std::to_string(s.nBatch) + " tokens (the context's batch size)");
        }
    }
    return {};
}

}  // namespace bge
