// llama.cpp log capture, coded errors and the promise-settling AsyncWorker every blocking call runs in.
#include "common.h"

#include "llama.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <exception>
#include <string>

namespace bge {

static std::atomic<int> g_log_level{GGML_LOG_LEVEL_NONE};

// per-thread capture of warnings/errors (each worker's llama.cpp calls run on one uv thread)
static thread_local std::deque<std::string> t_errors;
static thread_local std::string t_partial;          // line being assembled (ggml logs in pieces)
static thread_local int t_partial_level = GGML_LOG_LEVEL_NONE;
static thread_local int t_last_level = GGML_LOG_LEVEL_NONE;
static constexpr size_t kMaxCapturedLines = 8;

static void pushCaptured(std::string line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    if (line.empty()) return;
    t_errors.push_back(std::move(line));
    while (t_errors.size() > kMaxCapturedLines) t_errors.pop_front();
}

static void logCallback(ggml_log_level level, const char * text, void * /*user_data*/) {
    if (text == nullptr) return;
    int effective = level == GGML_LOG_LEVEL_CONT ? t_last_level : static_cast<int>(level);
    t_last_level = effective;

    if (effective >= GGML_LOG_LEVEL_WARN) {
        if (t_partial_level != effective && !t_partial.empty()) {
            pushCaptured(std::move(t_partial));
            t_partial.clear();
        }
        t_partial_level = effective;
        t_partial += text;
        size_t nl;
        while ((nl = t_partial.find('\n')) != std::string::npos) {
            pushCaptured(t_partial.substr(0, nl));
            t_partial.erase(0, nl + 1);
        }
    }

    const int threshold = g_log_level.load(std::memory_order_relaxed);
    if (threshold != GGML_LOG_LEVEL_NONE && effective >= threshold) {
        fputs(text, stderr);
        fflush(stderr);
    }
}

void setLogLevel(int level) { g_log_level.store(level, std::memory_order_relaxed); }
int getLogLevel() { return g_log_level.load(std::memory_order_relaxed); }
void installLogCallback() { llama_log_set(logCallback, nullptr); }

void clearCapturedErrors() {
    t_errors.clear();
    t_partial.clear();
    t_partial_level = GGML_LOG_LEVEL_NONE;
}

std::string capturedErrors() {
    if (!t_partial.empty()) {
        pushCaptured(std::move(t_partial));
        t_partial.clear();
    }
    std::string out;
    for (const auto & line : t_errors) {
        if (!out.empty()) out += "; ";
        out += line;
    }
    return out;
}

std::string withReason(const std::string & what) {
    std::string reason = capturedErrors();
    return reason.empty() ? what : what + ": " + reason;
}

void PromiseWorker::Execute() {
    try {
        clearCapturedErrors();
        Run();
    } catch (const CodedError & err) {
        errorCode = err.code;
        SetError(err.what());
    } catch (const std::exception & err) {
        SetError(err.what());
    } catch (...) {
        SetError("unknown native error");
    }
}

void PromiseWorker::OnOK() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
        deferred.Resolve(Result(env));
    } catch (const Napi::Error & err) {
        deferred.Reject(err.Value());
    } catch (const std::exception & err) {
        Napi::Error error = Napi::Error::New(env, err.what());
        error.Set("code", Napi::String::New(env, "ERR_NATIVE"));
        deferred.Reject(error.Value());
    }
}

void PromiseWorker::OnError(const Napi::Error & error) {
    Napi::HandleScope scope(Env());
    Napi::Object value = error.Value();
    value.Set("code", Napi::String::New(Env(), errorCode));
    deferred.Reject(value);
}

Napi::Promise rejected(Napi::Env env, const std::string & message, const char * code) {
    auto deferred = Napi::Promise::Deferred::New(env);
    Napi::Error error = Napi::Error::New(env, message);
    if (code != nullptr) error.Set("code", Napi::String::New(env, code));
    deferred.Reject(error.Value());
    return deferred.Promise();
}

}  // namespace bge
