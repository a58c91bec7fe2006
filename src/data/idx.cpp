// IDX reading and writing, raw or gzip (zlib).
#include "tessera/data/idx.hpp"

#include <zlib.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "tessera/error.hpp"
#include "tessera/shape.hpp"

namespace tessera::data {
namespace {

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string magic_desc(uint32_t magic) {
  if (magic == kIdxImagesMagic) return "2051 (images: uint8, 3 dims)";
  if (magic == kIdxLabelsMagic) return "2049 (labels: uint8, 1 dim)";
  return std::to_string(magic) + " (type 0x" + [&] {
           char b[8];
           std::snprintf(b, sizeof b, "%02X", unsigned((magic >> 8) & 0xFF));
           return std::string(b);
         }() + ", " + std::to_string(magic & 0xFF) + " dims)";
}

const char* type_name(unsigned code) {
  switch (code) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
  }
}

/// A byte source: a raw FILE* or a zlib gzFile, read sequentially.
class Source {
 public:
  explicit Source(const std::string& path) : path_(path) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail("is a directory, not an IDX file");
    errno = 0;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail(std::string("cannot open file: ") + (errno ? std::strerror(errno) : "unknown error"));
    unsigned char m[2] = {0, 0};
    size_t got = std::fread(m, 1, 2, f);
    gzip_ = got == 2 && m[0] == 0x1f && m[1] == 0x8b;
    if (!gzip_) {
      std::fseek(f, 0, SEEK_END);
      long end = std::ftell(f);
      std::fseek(f, 0, SEEK_SET);
      raw_size_ = end < 0 ? -1 : int64_t(end);
      file_ = f;
      return;
    }
    std::fclose(f);
    gz_ = gzopen(path.c_str(), "rb");
    if (!gz_) fail(std::string("cannot open gzip file: ") + (errno ? std::strerror(errno) : "zlib out of memory"));
    gzbuffer(gz_, 1 << 17);
  }
  ~Source() {
    if (file_) std::fclose(file_);
    if (gz_) gzclose(gz_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  bool gzip() const { return gzip_; }
  /// Size of a raw file in bytes; -1 for gzip (unknown until inflated).
  int64_t raw_size() const { return gzip_ ? -1 : raw_size_; }

  /// Reads up to n bytes; returns how many were read (< n only at the end of the data).
  /// Throws IOError on a read error or a corrupt/truncated gzip stream.
  int64_t read(void* dst, int64_t n) {
    char* p = static_cast<char*>(dst);
    int64_t total = 0;
    while (total < n) {
      int64_t want = std::min<int64_t>(n - total, 1 << 30);
      int64_t got;
      if (gzip_) {
        int r = gzread(gz_, p + total, unsigned(want));
        if (r < 0) gz_fail();
        got = r;
      } else {
        got = int64_t(std::fread(p + total, 1, size_t(want), file_));
        if (got < want && std::ferror(file_)) fail(std::string("read error: ") + std::strerror(errno));
      }
      total += got;
      if (got < want) {
        if (gzip_) {
          int errnum = Z_OK;
          gzerror(gz_, &errnum);
          if (errnum != Z_OK) gz_fail();
        }
        break;
      }
    }
    return total;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw IOError("read_idx: '" + path_ + "': " + what);
  }

 private:
  [[noreturn]] void gz_fail() const {
    int errnum = Z_OK;
    const char* msg = gzerror(gz_, &errnum);
    std::string zmsg = msg ? msg : "unknown zlib error";
    if (errnum == Z_BUF_ERROR)
      fail("truncated gzip stream (zlib: " + zmsg + ")");
    fail("corrupt gzip stream (zlib: " + zmsg + ")");
  }

  std::string path_;
  FILE* file_ = nullptr;
  gzFile gz_ = nullptr;
  bool gzip_ = false;
  int64_t raw_size_ = -1;
};

uint32_t load_be32(const unsigned char* b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

void store_be32(unsigned char* b, uint32_t v) {
  b[0] = uint8_t(v >> 24); b[1] = uint8_t(v >> 16); b[2] = uint8_t(v >> 8); b[3] = uint8_t(v);
}

}  // namespace

IdxArray read_idx(const std::string& path, uint32_t expected_magic) {
  Source src(path);
  const char* kind = src.gzip() ? " (gzip)" : "";

  unsigned char head[4];
  int64_t got = src.read(head, 4);
  if (got < 4)
    src.fail("truncated header: " + std::to_string(got) + " bytes" + kind +
             ", an IDX file starts with a 4-byte magic number");
  uint32_t magic = load_be32(head);
  if (head[0] != 0 || head[1] != 0)
    src.fail("not an IDX file: wrong magic number " + std::to_string(magic) +
             " (the first two bytes of an IDX file are zero)" +
             (expected_magic ? ", expected " + magic_desc(expected_magic) : std::string()));
  if (expected_magic != 0 && magic != expected_magic)
    src.fail("wrong magic number " + magic_desc(magic) + ", expected " + magic_desc(expected_magic));
  unsigned type = head[2], ndims = head[3];
  if (type != 0x08)
    src.fail("element type 0x" + [&] {
               char b[8];
               std::snprintf(b, sizeof b, "%02X", type);
               return std::string(b);
             }() + " (" + type_name(type) + ") is not supported, only 0x08 (uint8)");
  if (ndims == 0) src.fail("IDX header has 0 dims (magic " + std::to_string(magic) + ")");

  const int64_t header_bytes = 4 + 4 * int64_t(ndims);
  std::vector<unsigned char> dim_bytes(4 * size_t(ndims));
  got = src.read(dim_bytes.data(), int64_t(dim_bytes.size()));
  if (got < int64_t(dim_bytes.size()))
    src.fail("truncated header: " + std::to_string(4 + got) + " bytes" + kind + ", the header of a " +
             std::to_string(ndims) + "-dim IDX file has " + std::to_string(header_bytes));

  IdxArray out;
  out.dims.resize(ndims);
  for (unsigned i = 0; i < ndims; ++i) out.dims[i] = int64_t(load_be32(&dim_bytes[4 * i]));
  // Tessera's shape rule (try_shape_numel): the product of the dims, counting 0 as 1, must
  // fit int64, whatever the position of a 0 dim.
  const auto checked_numel = try_shape_numel(out.dims);
  if (!checked_numel) src.fail("dims " + dims_str(out.dims) + " overflow a 64-bit element count");
  const int64_t numel = *checked_numel;

  const std::string need = "dims " + dims_str(out.dims) + " need " + std::to_string(numel) +
                           " data bytes after the " + std::to_string(header_bytes) + "-byte header";
  if (!src.gzip()) {
    // Raw: the file size tells everything before anything is allocated.
    const int64_t have = src.raw_size() - header_bytes;
    if (have < numel) src.fail("truncated data: " + need + ", the file has " + std::to_string(have));
    if (have > numel)
      src.fail("file size does not match the dims: " + need + ", the file has " + std::to_string(have) +
               " (" + std::to_string(have - numel) + " trailing bytes)");
    out.data.resize(size_t(numel));
    if (src.read(out.data.data(), numel) != numel) src.fail("file shrank while being read");
    return out;
  }

  // gzip: the inflated size is known only by inflating; grow the buffer as data arrives
  // (doubling from 64 KiB up to 16 MiB steps) so that a corrupt header cannot make us
  // allocate much more than the stream holds: a 50-byte file claiming 4 GB costs 64 KiB.
  constexpr int64_t kFirstChunk = int64_t(1) << 16, kMaxChunk = int64_t(1) << 24;
  int64_t have = 0;
  while (have < numel) {
    int64_t step = std::min({std::max(kFirstChunk, have), kMaxChunk, numel - have});
    out.data.resize(size_t(have + step));
    int64_t r = src.read(out.data.data() + have, step);
    have += r;
    if (r < step) {
      src.fail("truncated data: " + need + ", the gzip stream holds " + std::to_string(have));
    }
  }
  unsigned char extra[4096];
  int64_t trailing = 0;
  for (int64_t r; (r = src.read(extra, int64_t(sizeof extra))) > 0;) trailing += r;
  if (trailing > 0)
    src.fail("inflated size does not match the dims: " + need + ", the gzip stream holds " +
             std::to_string(numel + trailing) + " (" + std::to_string(trailing) + " trailing bytes)");
  return out;
}

void write_idx(const std::string& path, const IdxArray& array, bool gzip) {
  const auto& dims = array.dims;
  TESSERA_CHECK(!dims.empty() && dims.size() <= 255, ValueError, "write_idx: '", path,
                "': an IDX file has 1 to 255 dims, got ", dims.size());
  int64_t numel = 1;
  for (int64_t d : dims) {
    TESSERA_CHECK(d >= 0 && d <= int64_t(0xFFFFFFFFu), ValueError, "write_idx: '", path, "': dims ",
                  dims_str(dims), " must each be in [0, 2^32-1]");
    numel *= d;
  }
  TESSERA_CHECK(numel == int64_t(array.data.size()), ValueError, "write_idx: '", path, "': dims ",
                dims_str(dims), " hold ", numel, " elements but data has ", array.data.size(), " bytes");

  std::vector<unsigned char> header(4 + 4 * dims.size());
  header[0] = 0; header[1] = 0; header[2] = 0x08; header[3] = uint8_t(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) store_be32(&header[4 + 4 * i], uint32_t(dims[i]));

  auto fail = [&](const std::string& what) { throw IOError("write_idx: '" + path + "': " + what); };
  if (gzip) {
    errno = 0;
    gzFile gz = gzopen(path.c_str(), "wb");
    if (!gz) fail(std::string("cannot open for writing: ") + (errno ? std::strerror(errno) : "zlib error"));
    auto write = [&](const void* p, size_t n) {
      const char* c = static_cast<const char*>(p);
      while (n > 0) {
        unsigned step = unsigned(std::min<size_t>(n, 1u << 30));
        if (gzwrite(gz, c, step) != int(step)) {
          int errnum = Z_OK;
          std::string msg = gzerror(gz, &errnum);
          gzclose(gz);
          fail("gzip write failed: " + msg);
        }
        c += step;
        n -= step;
      }
    };
    write(header.data(), header.size());
    write(array.data.data(), array.data.size());
    if (gzclose(gz) != Z_OK) fail("gzip close failed (disk full?)");
    return;
  }
  errno = 0;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail(std::string("cannot open for writing: ") + (errno ? std::strerror(errno) : "unknown error"));
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(array.data.data(), 1, array.data.size(), f) == array.data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) fail(std::string("write failed: ") + std::strerror(errno));
}

}  // namespace tessera::data
