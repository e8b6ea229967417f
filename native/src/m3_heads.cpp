// BGE-M3's sparse and ColBERT heads: the captured rows, the heads' products, and each sequence's outputs.
#include "m3_heads.h"

#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace bge {

// Hidden states per ColBERT graph: bounds the compute buffer (input, product and output, 4 KB a row
// each at width 1024: ~6 MB) whatever the input's length, and is large enough for a full-speed GEMM.
static constexpr size_t kColbertChunkRows = 512;

bool isLastHiddenState(const ggml_tensor * t) { return std::strcmp(ggml_get_name(t), "result_embd") == 0; }

void copyCapturedRows(const ggml_tensor * t, HiddenCapture & capture) {
    const size_t rowBytes = capture.width * sizeof(float);
    if (t->type != GGML_TYPE_F32 || static_cast<size_t>(t->ne[0]) != capture.width || t->nb[1] != rowBytes) {
        throw CodedError("ERR_NATIVE", std::string("the last hidden states are not contiguous F32 rows of width ") +
                                           std::to_string(capture.width));
    }
    size_t rows = 0;
    for (const auto & [first, count] : capture.ranges) rows += count;
    capture.states.resize(rows * capture.width);
    float * out = capture.states.data();
    for (const auto & [first, count] : capture.ranges) {
        if (static_cast<int64_t>(first) + count > t->ne[1]) throw CodedError("ERR_NATIVE", "captured rows outside the last hidden states");
        ggml_backend_tensor_get(t, out, first * rowBytes, count * rowBytes);
        out += count * capture.width;
    }
    capture.captured = true;
}

M3Heads::M3Heads(HeadWeights w, int threads) : weights(std::move(w)) {
    const size_t hidden = weights.hiddenSize;
    const size_t outputs = weights.colbertSize;
    if (hidden == 0 || outputs == 0 || weights.sparseWeight.size() != hidden || weights.colbertWeight.size() != hidden * outputs ||
        weights.colbertBias.size() != outputs) {
        throw CodedError("ERR_INVALID_ARG", "heads: weight sizes do not match hiddenSize and colbertSize");
    }
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (cpu == nullptr || (backend = ggml_backend_dev_init(cpu, nullptr)) == nullptr) {
        throw CodedError("ERR_LOAD", "heads: no CPU backend");
    }
    // the CPU backend may be a dynamically loaded variant: its thread setter is found through the registry
    auto setThreads = reinterpret_cast<ggml_backend_set_n_threads_t>(
        ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_set_n_threads"));
    if (setThreads != nullptr) setThreads(backend, std::max(1, threads));

    ggml_init_params params = {2 * ggml_tensor_overhead(), nullptr, /*no_alloc*/ true};
    weightsContext = ggml_init(params);
    colbertMatrix = ggml_new_tensor_2d(weightsContext, GGML_TYPE_F32, static_cast<int64_t>(hidden), static_cast<int64_t>(outputs));
    colbertBias = ggml_new_tensor_1d(weightsContext, GGML_TYPE_F32, static_cast<int64_t>(outputs));
    weightsBuffer = ggml_backend_alloc_ctx_tensors(weightsContext, backend);
    if (weightsBuffer == nullptr) throw CodedError("ERR_LOAD", "heads: cannot allocate the ColBERT weights");
    ggml_backend_tensor_set(colbertMatrix, weights.colbertWeight.data(), 0, ggml_nbytes(colbertMatrix));
    ggml_backend_tensor_set(colbertBias, weights.colbertBias.data(), 0, ggml_nbytes(colbertBias));
    // the backend holds the matrix now: no second host copy of its 4 MB
    std::vector<float>().swap(weights.colbertWeight);
    std::vector<float>().swap(weights.colbertBias);
    allocator = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend));
}

M3Heads::~M3Heads() {
    if (allocator != nullptr) ggml_gallocr_free(allocator);
    if (weightsBuffer != nullptr) ggml_backend_buffer_free(weightsBuffer);
    if (weightsContext != nullptr) ggml_free(weightsContext);
    if (backend != nullptr) ggml_backend_free(backend);
}

void M3Heads::sparse(const float * states, size_t rows, float * out) const {
    const size_t hidden = weights.hiddenSize;
    const float * w = weights.sparseWeight.data();
    for (size_t r = 0; r < rows; r++) {
        const float * h = states + r * hidden;
        double dot = weights.sparseBias;
        for (size_t i = 0; i < hidden; i++) dot += static_cast<double>(w[i]) * h[i];
        out[r] = dot > 0 ? static_cast<float>(dot) : 0.0f;
    }
}

void M3Heads::colbert(const float * states, size_t rows, float * out) {
    const size_t hidden = weights.hiddenSize;
    const size_t outputs = weights.colbertSize;
    for (size_t at = 0; at < rows; at += kColbertChunkRows) {
        const size_t n = std::min(kColbertChunkRows, rows - at);
        ggml_init_params params = {4 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, /*no_alloc*/ true};
        ggml_context * ctx = ggml_init(params);
        struct ContextGuard {
            ggml_context * c;
            ~ContextGuard() { ggml_free(c); }
        } guard{ctx};
        ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, static_cast<int64_t>(hidden), static_cast<int64_t>(n));
        ggml_set_input(x);
        ggml_tensor * y = ggml_add(ctx, ggml_mul_mat(ctx, colbertMatrix, x), colbertBias);
        ggml_set_output(y);
        ggml_cgraph * graph = ggml_new_graph(ctx);
        ggml_build_forward_expand(graph, y);
        if (!ggml_gallocr_alloc_graph(allocator, graph)) throw CodedError("ERR_NATIVE", "heads: cannot allocate the ColBERT compute buffer");
        ggml_backend_tensor_set(x, states + at * hidden, 0, ggml_nbytes(x));
        if (ggml_backend_graph_compute(backend, graph) != GGML_STATUS_SUCCESS) throw CodedError("ERR_NATIVE", "heads: the ColBERT product failed");
        float * dst = out + at * outputs;
        ggml_backend_tensor_get(y, dst, 0, ggml_nbytes(y));
        // FlagEmbedding's F.normalize: v / max(|v|, 1e-12)
        for (size_t r = 0; r < n; r++) {
            float * v = dst + r * outputs;
            double sum = 0;
            for (size_t i = 0; i < outputs; i++) sum += static_cast<double>(v[i]) * v[i];
            const float scale = static_cast<float>(1.0 / std::max(std::sqrt(sum), 1e-12));
            for (size_t i = 0; i < outputs; i++) v[i] *= scale;
        }
    }
}

HiddenCapture armCapture(const std::vector<uint32_t> & lengths, const std::vector<uint8_t> & outputs, size_t width) {
    HiddenCapture capture;
    capture.width = width;
    uint32_t start = 0;
    for (size_t s = 0; s < outputs.size(); s++) {
        if (outputs[s] != 0 && lengths[s] > 1) capture.ranges.emplace_back(start + 1, lengths[s] - 1);
        start += lengths[s];
    }
    return capture;
}

// FlagEmbedding's sparse vector: per token id the largest weight over its positions, without <s>, </s>,
// <pad> and <unk>, and only weights > 0.
static void aggregateSparse(const llama_vocab * vocab, const llama_token * ids, const float * weights, size_t n, SequenceHeads & out) {
    const llama_token bos = llama_vocab_bos(vocab), eos = llama_vocab_eos(vocab), pad = llama_vocab_pad(vocab);
    std::vector<std::pair<uint32_t, float>> kept;
    for (size_t i = 0; i < n; i++) {
        const llama_token id = ids[i];
        if (!(weights[i] > 0) || id == bos || id == eos || id == pad) continue;
        if (llama_vocab_get_attr(vocab, id) & LLAMA_TOKEN_ATTR_UNKNOWN) continue;
        kept.emplace_back(static_cast<uint32_t>(id), weights[i]);
    }
    std::sort(kept.begin(), kept.end());
    for (const auto & [id, weight] : kept) {
        if (!out.sparseIds.empty() && out.sparseIds.back() == id) {
            out.sparseWeights.back() = std::max(out.sparseWeights.back(), weight);
        } else {
            out.sparseIds.push_back(id);
            out.sparseWeights.push_back(weight);
        }
    }
}

BatchHeads runHeads(M3Heads & m3, HiddenCapture & capture, const llama_vocab * vocab, const llama_token * tokens,
                    const std::vector<uint32_t> & lengths, const std::vector<uint8_t> & outputs) {
    BatchHeads result;
    const size_t width = capture.width;
    const size_t colbertSize = m3.colbertSize();
    result.sequences.resize(lengths.size());
    // ColBERT as one product over every asking sequence's rows (each product starts ggml's thread pool
    // once: per sequence, that cost more than the arithmetic on short batches); its rows packed here
    // unless every captured sequence asks for it
    std::vector<float> colbertRows;
    std::vector<float> weights;
    size_t row = 0;    // into capture.states
    size_t start = 0;  // into tokens
    size_t colbertTotal = 0;
    bool everyCapturedWantsColbert = true;
    bool keepHidden = false;
    for (size_t s = 0; s < lengths.size(); s++) {
        if (outputs[s] != 0 && lengths[s] > 1 && !(outputs[s] & kColbert)) everyCapturedWantsColbert = false;
    }
    for (size_t s = 0; s < lengths.size(); s++) {
        const size_t n = lengths[s] - 1;
        if (outputs[s] != 0 && n > 0) {
            const float * states = capture.states.data() + row * width;
            if (outputs[s] & kSparse) {
                weights.resize(n);
                m3.sparse(states, n, weights.data());
                aggregateSparse(vocab, tokens + start + 1, weights.data(), n, result.sequences[s]);
            }
            if (outputs[s] & kColbert) {
                if (!everyCapturedWantsColbert) colbertRows.insert(colbertRows.end(), states, states + n * width);
                colbertTotal += n;
            }
            if (outputs[s] & kHidden) {
                result.sequences[s].hiddenRow = row;
                result.sequences[s].hiddenRows = n;
                keepHidden = true;
            }
            row += n;
        }
        start += lengths[s];
    }
    if (colbertTotal > 0) {
        const float * rows = everyCapturedWantsColbert ? capture.states.data() : colbertRows.data();
        result.colbertVectors.resize(colbertTotal * colbertSize);
        m3.colbert(rows, colbertTotal, result.colbertVectors.data());
        size_t at = 0;  // into colbertVectors, in rows
        for (size_t s = 0; s < lengths.size(); s++) {
            const size_t n = lengths[s] - 1;
            if (!(outputs[s] & kColbert) || n == 0) continue;
            result.sequences[s].colbertRow = at;
            result.sequences[s].colbertRows = n;
            at += n;
        }
    }
    // the capture is this call's: its rows go back as they are to the sequences that ask for them
    if (keepHidden) result.hiddenStates = std::move(capture.states);
    return result;
}

}  // namespace bge
