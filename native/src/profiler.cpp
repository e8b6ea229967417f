// Per-op compute time of a context's graph nodes (load option `profile`).
#include "profiler.h"

#include <cstring>

namespace bge {

// The op, with the matrix products told apart: attention's two and the weights' (by their type).
static std::string profileKey(const ggml_tensor * t) {
    std::string op = ggml_op_desc(t);
    if (t->op == GGML_OP_MUL_MAT) {
        const char * name = ggml_get_name(t);
        if (std::strncmp(name, "kqv", 3) == 0) return op + " (attn P.V)";
        if (std::strncmp(name, "kq", 2) == 0) return op + " (attn Q.K^T)";
        return op + " (weights " + ggml_type_name(t->src[0]->type) + ")";
    }
    if (t->op == GGML_OP_SOFT_MAX) return op + " (attn)";
    return op;
}

bool Profile::node(const ggml_tensor * t, bool ask) {
    const auto now = std::chrono::steady_clock::now();
    if (ask) {
        start = now;
        return true;
    }
    std::lock_guard<std::mutex> guard(lock);
    auto & e = ops[profileKey(t)];
    e.first += std::chrono::duration<double, std::milli>(now - start).count();
    e.second += 1;
    return true;
}

Profile::Ops Profile::take() {
    Ops taken;
    std::lock_guard<std::mutex> guard(lock);
    taken.swap(ops);
    return taken;
}

}  // namespace bge
