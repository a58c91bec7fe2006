// libFuzzer target: the IDX reader (tessera::data::read_idx), raw and gzip.
//
// Input layout: byte 0 picks the mode and the expected magic, the rest is the payload.
//   mode 0: the payload is written as is (a raw IDX file, or anything else);
//   mode 1: the payload is gzip-compressed by zlib first, so the fuzzer explores the IDX
//           header and data behind a valid gzip stream;
//   mode 2: the payload is written as is after a gzip magic 1f 8b, so the fuzzer explores
//           corrupt and truncated gzip streams.
// expected magic: 0 (any), 2049 (labels) or 2051 (images).
// read_idx must either throw a tessera::Error, or return dims (1 to 255 of them, each
// below 2^32) whose product is data.size(), with the data equal to the bytes after the
// header of the (inflated) file. Then write_idx/read_idx must round-trip the array.
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "tessera/data/idx.hpp"
#include "tessera/error.hpp"

namespace {

constexpr const char* kTarget = "fuzz_idx";
[[noreturn]] void fail(const std::string& what) { fuzz::fail(kTarget, what); }

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  fuzz::write_file(kTarget, path, bytes.data(), bytes.size());
}

std::vector<uint8_t> gzip(const std::vector<uint8_t>& in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    fail("deflateInit2");
  std::vector<uint8_t> out(deflateBound(&zs, uLong(in.size())) + 32);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = uInt(in.size());
  zs.next_out = out.data();
  zs.avail_out = uInt(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) fail("deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 3;
  static const uint32_t kMagics[] = {0, tessera::data::kIdxLabelsMagic, tessera::data::kIdxImagesMagic, 0};
  const uint32_t magic = kMagics[(data[0] >> 2) & 3];
  std::vector<uint8_t> payload(data + 1, data + size);
  std::vector<uint8_t> file = payload;
  if (mode == 1) file = gzip(payload);
  if (mode == 2) file.insert(file.begin(), {0x1f, 0x8b});

  static const std::string path = fuzz::temp_path(kTarget, ".idx"), path2 = fuzz::temp_path(kTarget, "_rt.idx");
  write_file(path, file);
  tessera::data::IdxArray a;
  try {
    a = tessera::data::read_idx(path, magic);
  } catch (const tessera::Error&) {
    return 0;
  }

  // Accepted: the array must be exactly what the file holds.
  if (a.dims.empty() || a.dims.size() > 255) fail("read_idx returned " + std::to_string(a.dims.size()) + " dims");
  uint64_t n = 1;
  for (int64_t d : a.dims) {
    if (d < 0 || d > int64_t(0xFFFFFFFFu)) fail("read_idx returned a dim " + std::to_string(d));
    n *= uint64_t(d);
  }
  if (n != a.data.size()) fail("dims multiply to " + std::to_string(n) + ", data has " + std::to_string(a.data.size()));
  // The plain bytes are known unless the file is a gzip stream the fuzzer wrote (mode 2, or
  // mode 0 with a payload that starts with the gzip magic, which the reader detects).
  const bool fuzzer_gzip = mode == 2 || (mode == 0 && payload.size() >= 2 && payload[0] == 0x1f && payload[1] == 0x8b);
  if (!fuzzer_gzip) {  // compare the header and the data
    const size_t header = 4 + 4 * a.dims.size();
    if (payload.size() != header + a.data.size())
      fail("accepted a file of " + std::to_string(payload.size()) + " bytes for " + std::to_string(a.dims.size()) +
           " dims and " + std::to_string(a.data.size()) + " data bytes");
    if (payload[0] != 0 || payload[1] != 0 || payload[2] != 0x08 || payload[3] != a.dims.size())
      fail("accepted a bad magic number");
    const uint32_t got_magic = (uint32_t(payload[2]) << 8) | payload[3];
    if (magic != 0 && got_magic != magic) fail("accepted magic " + std::to_string(got_magic) + " for expected " + std::to_string(magic));
    for (size_t i = 0; i < a.dims.size(); ++i) {
      const uint8_t* b = &payload[4 + 4 * i];
      uint32_t d = (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
      if (int64_t(d) != a.dims[i]) fail("dim " + std::to_string(i) + " differs from the header");
    }
    if (!a.data.empty() && std::memcmp(a.data.data(), payload.data() + header, a.data.size()) != 0)
      fail("data differs from the file's bytes");
  }

  // Round trip through write_idx, alternating raw and gzip.
  const bool gz = (size & 1) != 0;
  tessera::data::write_idx(path2, a, gz);
  tessera::data::IdxArray b = tessera::data::read_idx(path2, magic);
  if (b.dims != a.dims || b.data != a.data) fail("write_idx/read_idx round trip differs");
  return 0;
}
