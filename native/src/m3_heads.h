// BGE-M3's sparse and ColBERT heads (FlagEmbedding's sparse_linear and colbert_linear), run over the
// encoder's last hidden states that the dense vector's own forward pass produced: which rows a decode
// captures, the heads' weights and products, and each sequence's outputs of embedWithHeads().
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

// What one sequence of embedWithHeads() asks for besides its pooled vector (bit flags of `outputs`):
// kHidden returns the encoder's last hidden states themselves (TEI's embed_all).
enum HeadOutput : uint8_t { kSparse = 1, kColbert = 2, kHidden = 4 };

// One sequence's head outputs.
struct SequenceHeads {
    std::vector<uint32_t> sparseIds;  // ascending token ids, one each
    std::vector<float> sparseWeights;
    // its ColBERT vectors, one per position after <s>: `colbertRows` rows of `colbertVectors` from `colbertRow`
    size_t colbertRow = 0;
    size_t colbertRows = 0;
    // its last hidden states, one per position after <s>: `hiddenRows` rows of `hiddenStates` from `hiddenRow`
    size_t hiddenRow = 0;
    size_t hiddenRows = 0;
};

// A batch's head outputs: one SequenceHeads per sequence, and the rows they point into.
struct BatchHeads {
    std::vector<SequenceHeads> sequences;
    std::vector<float> colbertVectors;  // every asking sequence's ColBERT vectors, packed in batch order
    std::vector<float> hiddenStates;    // the captured last hidden states, kept when a sequence asks for them
};

// The batch rows the heads read (`width` floats each): every position after <s> of each sequence that asks
// for an output (`outputs[s]` != 0; `lengths[s]` tokens, packed in batch order).
HiddenCapture armCapture(const std::vector<uint32_t> & lengths, const std::vector<uint8_t> & outputs, size_t width);

// Runs the heads each sequence asks for over the rows `capture` holds, whose states it takes when a sequence
// asks for them. `tokens`: the batch's ids (the sparse vector's keys; <s>, </s>, <pad> and <unk> of `vocab`
// are left out of it).
BatchHeads runHeads(M3Heads & m3, HiddenCapture & capture, const llama_vocab * vocab, const llama_token * tokens,
                    const std::vector<uint32_t> & lengths, const std::vector<uint8_t> & outputs);

}  // namespace bge
