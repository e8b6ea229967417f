// bge_m3_native: a thin N-API binding of llama.cpp for pooled text embeddings.
// C++ owns the llama.cpp objects and nothing else; scheduling, batching policy and normalisation live
// in TypeScript (src/engine/native/). The JS surface is typed in src/engine/native/addon-types.ts.
#include <napi.h>

#include "addon_state.h"
#include "common.h"
#include "embedding_model.h"
#include "ggml-backend.h"
#include "llama.h"

#include <mutex>
#include <string>

#if defined(BGE_BACKEND_DL) && !defined(_WIN32)
#include <dlfcn.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#include <cstdlib>
#endif

namespace bge {

static std::once_flag g_backend_once;
static std::string g_backend_dir;

static void initBackendOnce() {
    std::call_once(g_backend_once, [] {
        installLogCallback();
#if defined(BGE_BACKEND_DL)
        // portable/DL builds: ggml's CPU variants (and CUDA) are .so files shipped next to this addon
#if !defined(_WIN32)
        Dl_info info;
        if (dladdr(reinterpret_cast<void *>(&initBackendOnce), &info) != 0 && info.dli_fname != nullptr) {
            std::string file = info.dli_fname;
            size_t slash = file.find_last_of('/');
            g_backend_dir = slash == std::string::npos ? "." : file.substr(0, slash);
        }
#endif
        ggml_backend_load_all_from_path(g_backend_dir.empty() ? nullptr : g_backend_dir.c_str());
#endif
        llama_backend_init();
    });
}

static const char * deviceTypeName(enum ggml_backend_dev_type type) {
    switch (type) {
        case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
        case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
        case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
        case GGML_BACKEND_DEVICE_TYPE_ACCEL: return "accel";
        default: return "other";
    }
}

static Napi::Value Devices(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const size_t count = ggml_backend_dev_count();
    Napi::Array out = Napi::Array::New(env, count);
    for (size_t i = 0; i < count; i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        Napi::Object d = Napi::Object::New(env);
        d.Set("name", ggml_backend_dev_name(dev));
        d.Set("description", ggml_backend_dev_description(dev));
        d.Set("type", deviceTypeName(ggml_backend_dev_type(dev)));
        d.Set("memoryFree", static_cast<double>(free));
        d.Set("memoryTotal", static_cast<double>(total));
        out.Set(static_cast<uint32_t>(i), d);
    }
    return out;
}

static const char * kLevels[] = {"none", "debug", "info", "warn", "error"};

static Napi::Value SetLogLevel(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "setLogLevel(level): level must be a string");
    std::string level = info[0].As<Napi::String>().Utf8Value();
    for (int i = 0; i < 5; i++) {
        if (level == kLevels[i]) {
            setLogLevel(i);  // matches GGML_LOG_LEVEL_{NONE,DEBUG,INFO,WARN,ERROR}
            return env.Undefined();
        }
    }
    throw Napi::TypeError::New(env, "setLogLevel(level): level must be one of none|debug|info|warn|error");
}

static Napi::Value GetLogLevel(const Napi::CallbackInfo & info) {
    int level = getLogLevel();
    return Napi::String::New(info.Env(), level >= 0 && level < 5 ? kLevels[level] : "none");
}

// glibc raises its mmap threshold (initially 128 KiB) up to 32 MiB each time a mapped block is freed; blocks up to
// that size then come from the heap, whose freed pages stay in RSS. Answers' vectors are such blocks (ColBERT rows:
// ~12 MB per 2,862-token input): a 22,912-token ColBERT request left ~180 MiB resident after it and peaked ~100 MiB
// higher. Fixing the threshold keeps every block over 128 KiB mapped, and unmapped when freed. A process setting by
// nature (it is the allocator's); MALLOC_MMAP_THRESHOLD_ in the environment still overrides it.
static void keepLargeBlocksMapped() {
#if defined(__GLIBC__)
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

static Napi::Value SystemInfo(const Napi::CallbackInfo & info) {
    return Napi::String::New(info.Env(), llama_print_system_info());
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    keepLargeBlocksMapped();
    initBackendOnce();

    auto * state = new AddonState();
    state->modelConstructor = Napi::Persistent(EmbeddingModel::Define(env));
    state->constructToken = Napi::Persistent(Napi::Object::New(env));
    env.SetInstanceData<AddonState>(state);

    Napi::Object build = Napi::Object::New(env);
#if defined(BGE_BACKEND_DL)
    build.Set("backendDl", true);
    build.Set("backendDir", g_backend_dir);
#else
    build.Set("backendDl", false);
    build.Set("backendDir", env.Null());
#endif
#if defined(BGE_CUDA)
    build.Set("cuda", true);
#else
    build.Set("cuda", false);
#endif
    build.Set("cpu", BGE_CPU_TARGET);  // the NATIVE_CPU flavour it was built as
    build.Freeze();

    exports.Set("build", build);
    exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
    exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
    exports.Set("setLogLevel", Napi::Function::New(env, SetLogLevel, "setLogLevel"));
    exports.Set("getLogLevel", Napi::Function::New(env, GetLogLevel, "getLogLevel"));
    exports.Set("systemInfo", Napi::Function::New(env, SystemInfo, "systemInfo"));
    return exports;
}

}  // namespace bge

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return bge::Init(env, exports); }

NODE_API_MODULE(bge_m3_native, InitModule)
