// embed() and embedWithHeads()'s arguments, checked on the JS thread before a decode is queued: every
// sequence's token ids, the head outputs each asks for, the cancel flag.
#pragma once

#include <napi.h>

#include "model_state.h"

#include <cstdint>
#include <string>
#include <vector>

namespace bge {

struct EmbedArguments {
    std::vector<llama_token> tokens;  // every sequence's ids, packed in batch order
    std::vector<uint32_t> lengths;    // tokens per sequence
    std::vector<uint8_t> outputs;     // embedWithHeads(): one HeadOutput mask per sequence; embed(): empty
    Napi::Int32Array cancelFlag;      // empty when not given
};

struct ArgumentError {
    const char * code = nullptr;  // nullptr: the arguments are fine
    std::string message;
};

// embed(sequences, cancel?) (withHeads false) or embedWithHeads(sequences, outputs, cancel?) on a loaded
// model `s`: fills `out`, or says what is wrong (ERR_INVALID_ARG, ERR_INVALID_TOKENS, ERR_BATCH_LIMIT, ERR_NO_HEADS).
ArgumentError readEmbedArguments(const Napi::CallbackInfo & info, const ModelState & s, bool withHeads, EmbedArguments & out);

}  // namespace bge
