// Shared helpers of the addon: llama.cpp log capture and promise-returning async workers.
#pragma once

#include <napi.h>

#include <string>

namespace bge {

// ---- logging ---------------------------------------------------------------------------------------
// llama.cpp/ggml log lines at or above this level go to stderr (GGML_LOG_LEVEL_*; NONE (0) = quiet).
void setLogLevel(int level);
int getLogLevel();
void installLogCallback();

// Warn/error lines llama.cpp logged on THIS thread since the last clearCapturedErrors(): what a
// failing llama.cpp call said about why. Each worker clears before it calls llama.cpp.
void clearCapturedErrors();
std::string capturedErrors();

// "what: <llama.cpp's reason>" or just "what" when llama.cpp logged nothing.
std::string withReason(const std::string & what);

// ---- async work -------------------------------------------------------------------------------------
// An AsyncWorker that settles a Promise. Execute() must report failure via SetError (or by throwing a
// std::exception, which Run() turns into a rejection); nothing may escape to the uv thread.
class PromiseWorker : public Napi::AsyncWorker {
  public:
    explicit PromiseWorker(Napi::Env env, const char * name)
        : Napi::AsyncWorker(env, name), deferred(Napi::Promise::Deferred::New(env)) {}

    Napi::Promise Promise() { return deferred.Promise(); }

  protected:
    // the work itself; throw std::runtime_error with a message to reject
    virtual void Run() = 0;
    // builds the resolution value on the JS thread
    virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

    void Execute() override;
    void OnOK() override;
    void OnError(const Napi::Error & error) override;

    Napi::Promise::Deferred deferred;
};

// A rejected promise (for argument errors found before any work is queued).
Napi::Promise rejected(Napi::Env env, const std::string & message, const char * code = nullptr);

}  // namespace bge
