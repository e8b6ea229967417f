// The token-embedding rows a batch needs, read from the model file with pread (patch 0011's reader).
#include "token_rows.h"

#include "ggml.h"
#include "llama-ext.h"

#if !defined(_WIN32)
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace bge {

#if defined(_WIN32)

std::unique_ptr<TokenRowReader> TokenRowReader::open(const std::string &) { return nullptr; }
bool TokenRowReader::attach(const llama_model *, const std::string &) { return false; }
bool TokenRowReader::readRows(const ggml_tensor *, const int32_t *, int64_t, uint8_t *) const { return false; }
TokenRowReader::~TokenRowReader() = default;

#else

std::unique_ptr<TokenRowReader> TokenRowReader::open(const std::string & path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
#ifdef POSIX_FADV_RANDOM
    // a page-cache miss reads the rows' pages, not a readahead window around them
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
#endif
    return std::unique_ptr<TokenRowReader>(new TokenRowReader(fd));
}

bool TokenRowReader::attach(const llama_model * model, const std::string & path) {
    size_t at = 0;
    const ggml_tensor * t = llama_model_token_embd_in_file(model, &at);
    if (t == nullptr || !ggml_is_contiguous(t)) return false;
    struct stat opened, now;
    if (fstat(fd, &opened) != 0 || stat(path.c_str(), &now) != 0) return false;
    if (opened.st_dev != now.st_dev || opened.st_ino != now.st_ino) return false;  // replaced while loading
    if (at + ggml_nbytes(t) > static_cast<uint64_t>(opened.st_size)) return false;
    table = t;
    offset = at;
    rowBytes = t->nb[1];
    rows = t->ne[1];
    return true;
}

bool TokenRowReader::readRows(const ggml_tensor * t, const int32_t * ids, int64_t n, uint8_t * dst) const {
    if (t != table) return false;
    // consecutive ids are consecutive rows in the file and in dst: one pread each run
    for (int64_t k = 0; k < n;) {
        int64_t end = k + 1;
        while (end < n && ids[end] == ids[end - 1] + 1) end++;
        if (ids[k] < 0 || ids[end - 1] >= rows) return false;
        uint8_t * to = dst + static_cast<size_t>(k) * rowBytes;
        size_t left = static_cast<size_t>(end - k) * rowBytes;
        uint64_t from = offset + static_cast<uint64_t>(ids[k]) * rowBytes;
        while (left > 0) {
            const ssize_t got = pread(fd, to, left, static_cast<off_t>(from));
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) return false;
            to += got;
            from += static_cast<uint64_t>(got);
            left -= static_cast<size_t>(got);
        }
        k = end;
    }
    return true;
}

TokenRowReader::~TokenRowReader() {
    if (fd >= 0) ::close(fd);
}

#endif

bool TokenRowReader::read(void * self, const ggml_tensor * table, const int32_t * ids, int64_t n, void * dst) {
    return static_cast<const TokenRowReader *>(self)->readRows(table, ids, n, static_cast<uint8_t *>(dst));
}

}  // namespace bge
