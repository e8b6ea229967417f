// dispose()'s work: freeing a model and its context on a uv thread once the calls made before it have settled.
#include "free_worker.h"

#include "common.h"

namespace bge {

class FreeWorker : public PromiseWorker {
  public:
    FreeWorker(Napi::Env env, std::shared_ptr<ModelState> state) : PromiseWorker(env, "bge_m3_native.dispose"), state(std::move(state)) {}

  protected:
    void Run() override {
        std::unique_lock<std::shared_mutex> life(state->lifetime);  // waits for calls in flight
        std::lock_guard<std::mutex> busy(state->compute);
        state->release();
        state->outputBufferBytes.store(0);
        state->computeBufferBytes.store(0);
    }

  private:
    std::shared_ptr<ModelState> state;
};

Napi::Promise queueFree(Napi::Env env, std::shared_ptr<ModelState> state) {
    auto * worker = new FreeWorker(env, state);
    Napi::Promise promise = worker->Promise();
    if (state->pendingCalls == 0) worker->Queue();
    else state->whenIdle.push_back([worker] { worker->Queue(); });
    return promise;
}

}  // namespace bge
