// BGE-M3's sparse and ColBERT heads (FlagEmbedding's sparse_linear and colbert_linear), run over the
// encoder's last hidden states that the dense vector's own forward pass produced.
#pragma once

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "llama.h"

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace bge {

// Host copies of the heads' weights, F32, as given to loadModel().
struct HeadWeights {
    uint32_t hiddenSize = 0;
    std::vector<float> sparseWeight;  // hiddenSize
    float sparseBias = 0;
    uint32_t colbertSize = 0;
    std::vector<float> colbertWeight;  // colbertSize rows of hiddenSize, row-major (torch's Linear layout)
    std::vector<float> colbertBias;    // colbertSize
};

// Rows of the encoder's last hidden states (llama.cpp's "result_embd") that one decode copies out, in
// batch order. Filled by the context's eval callback while the decode runs.
struct HiddenCapture {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // (first batch row, rows)
    size_t width = 0;                                   // floats per row
    std::vector<float> states;                          // the ranges' rows, packed
    bool captured = false;
};

// The context's eval callback copies result_embd's rows when a capture is armed: true when `t` is it.
bool isLastHiddenState(const ggml_tensor * t);
// Copies the capture's rows out of `t` (any backend's memory). Throws CodedError on a shape it cannot read.
void copyCapturedRows(const ggml_tensor * t, HiddenCapture & capture);

class M3Heads {
  public:
    // Copies the weights into a CPU backend buffer; `threads` run the ColBERT product.
    M3Heads(HeadWeights weights, int threads);
    ~M3Heads();
    M3Heads(const M3Heads &) = delete;
    M3Heads & operator=(const M3Heads &) = delete;

    uint32_t hiddenSize() const { return weights.hiddenSize; }
    uint32_t colbertSize() const { return weights.colbertSize; }

    // relu(w . h + b) of each of `rows` hidden states
    void sparse(const float * states, size_t rows, float * out) const;
    // W h + b of each of `rows` hidden states, scaled to unit L2 norm: rows x colbertSize floats
    void colbert(const float * states, size_t rows, float * out);

  private:
    HeadWeights weights;  // the sparse head is read from here; the ColBERT matrix lives in the backend
    ggml_backend_t backend = nullptr;
    ggml_context * weightsContext = nullptr;
    ggml_backend_buffer_t weightsBuffer = nullptr;
    ggml_tensor * colbertMatrix = nullptr;
    ggml_tensor * colbertBias = nullptr;
    ggml_gallocr_t allocator = nullptr;  // keeps one chunk's compute buffer between calls
};

}  // namespace bge
