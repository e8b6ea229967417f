// loadModel()'s options, read from its JS object and checked on the JS thread.
#include "load_options.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace bge {

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

LoadOptions readLoadOptions(const Napi::Object & o) {
    LoadOptions options;
    Napi::Value path = o.Get("modelPath");
    if (!path.IsString()) throw std::invalid_argument("modelPath must be a string");
    options.modelPath = path.As<Napi::String>().Utf8Value();
    options.contextSize = readUint(o, "contextSize", 0);
    options.batchSize = readUint(o, "batchSize", 0);
    options.sequences = readUint(o, "sequences", 1);
    options.threads = static_cast<int32_t>(std::min<uint32_t>(readUint(o, "threads", 0), 1024));
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
    options.heads = readHeads(o);
    return options;
}

}  // namespace bge
