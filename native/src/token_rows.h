// The token-embedding rows a batch needs, read from the model file with pread (patch 0011's reader).
//
// llama.cpp reads the token-embedding table in place from its mapping of the model file, and patch 0007 drops
// its resident pages after load. get_rows on it faults rows back in, and the kernel maps whole pages plus a
// fault-around window (~64 KB) around each: an 8k-token input of scattered ids brings nearly all of the table
// back into RSS (205 MB for BGE-M3 Q4_K_M, 272 MB for Q8_0). Read with pread, the rows are copied out of the
// page cache into the graph's small input of the table's own type (~1 KB a token) and map nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct ggml_tensor;
struct llama_model;

namespace bge {

class TokenRowReader {
  public:
    // Opens the model file before llama.cpp loads it (attach() then checks it is still the file at that path,
    // so the rows read are those llama.cpp mapped). nullptr where this platform has no pread.
    static std::unique_ptr<TokenRowReader> open(const std::string & path);

    // Finds the model's token-embedding table in the file: false when llama.cpp does not read it in place
    // from the mapping (then nothing is gained: the context keeps llama.cpp's own path).
    bool attach(const llama_model * model, const std::string & path);

    // llama_token_embd_reader: `ids` distinct and ascending; false (the rows are then copied from the
    // mapping) for another table or a failed read
    static bool read(void * self, const ggml_tensor * table, const int32_t * ids, int64_t n, void * dst);

    ~TokenRowReader();
    TokenRowReader(const TokenRowReader &) = delete;
    TokenRowReader & operator=(const TokenRowReader &) = delete;

  private:
    explicit TokenRowReader(int fd) : fd(fd) {}
    bool readRows(const ggml_tensor * table, const int32_t * ids, int64_t n, uint8_t * dst) const;

    int fd = -1;
    const ggml_tensor * table = nullptr;
    uint64_t offset = 0;   // of the table's first row in the file, bytes
    size_t rowBytes = 0;   // one row in the table's type
    int64_t rows = 0;
};

}  // namespace bge
