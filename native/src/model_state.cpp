// One loaded model and its pooled-embedding context: buffer sizes, call counting and freeing.
#include "model_state.h"

#include "llama-ext.h"

namespace bge {

const char * poolingName(enum llama_pooling_type pooling) {
    switch (pooling) {
        case LLAMA_POOLING_TYPE_NONE: return "none";
        case LLAMA_POOLING_TYPE_MEAN: return "mean";
        case LLAMA_POOLING_TYPE_CLS: return "cls";
        case LLAMA_POOLING_TYPE_LAST: return "last";
        case LLAMA_POOLING_TYPE_RANK: return "rank";
        default: return "unspecified";
    }
}

void ModelState::callSettled() {
    if (--pendingCalls > 0) return;
    auto waiting = std::move(whenIdle);
    whenIdle.clear();
    for (auto & run : waiting) run();
}

void ModelState::measureBuffers() {
    double compute = 0;
    for (const auto & [buft, mb] : llama_get_memory_breakdown(ctx)) compute += static_cast<double>(mb.compute);
    outputBufferBytes.store(static_cast<double>(llama_get_output_buffer_size(ctx)));
    computeBufferBytes.store(compute);
}

void ModelState::release() {
    if (ctx != nullptr) {
        llama_free(ctx);
        ctx = nullptr;
    }
    if (model != nullptr) {
        llama_model_free(model);
        model = nullptr;
    }
    tokenRows.reset();
    heads.reset();
    vocab = nullptr;
}

ModelState::~ModelState() { release(); }

}  // namespace bge
