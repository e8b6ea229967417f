// The base of every worker that calls into a loaded model: counted, so that dispose() frees it only after them.
#pragma once

#include "common.h"
#include "model_state.h"

#include <memory>

namespace bge {

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

}  // namespace bge
