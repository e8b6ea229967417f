// Shared helpers of the addon: llama.cpp log capture and promise-returning async workers.
#pragma once

#include <napi.h>

#include <stdexcept>
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

// ---- errors ----------------------------------------------------------------------------------------
// A failure with its code (NativeErrorCode in src/engine/native/addon-types.ts) chosen where it happens,
// so JS never has to read the message to know what went wrong.
class CodedError : public std::runtime_error {
  public:
    CodedError(const char * code, const std::string & message) : std::runtime_error(message), code(code) {}
    const char * const code;
};

// ---- async work -------------------------------------------------------------------------------------
// An AsyncWorker that settles a Promise. Run() reports failure by throwing: a CodedError rejects with its
// code, any other exception with ERR_NATIVE; nothing may escape to the uv thread.
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

  private:
    std::string errorCode = "ERR_NATIVE";  // set on the uv thread by Execute(), read on the JS thread
};

// A rejected promise (for argument errors found before any work is queued).
Napi::Promise rejected(Napi::Env env, const std::string & message, const char * code = nullptr);

}  // namespace bge
