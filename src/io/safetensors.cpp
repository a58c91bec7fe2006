// safetensors reader and writer (format: https://github.com/huggingface/safetensors,
// "Format" section of its README). The header is JSON, parsed with nlohmann/json.
#include "tessera/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/io/atomic_file.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp copies raw little-endian bytes; port it before building on a big-endian host"
#endif

namespace tessera::io {

namespace {

using json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";

std::optional<DType> dtype_from_name(const std::string& s) {
  if (s == "F64") return DType::Float64;
  if (s == "F32") return DType::Float32;
  if (s == "F16") return DType::Float16;
  if (s == "BF16") return DType::BFloat16;
  if (s == "I64") return DType::Int64;
  if (s == "I32") return DType::Int32;
  if (s == "U8") return DType::UInt8;
  if (s == "BOOL") return DType::Bool;
  return std::nullopt;
}

[[noreturn]] void corrupt(const std::string& path, const std::string& what) {
  throw IOError("load_safetensors: " + path + ": " + what);
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float64: return "F64";
    case DType::Float32: return "F32";
    case DType::Float16: return "F16";
    case DType::BFloat16: return "BF16";
    case DType::Int64: return "I64";
    case DType::Int32: return "I32";
    case DType::UInt8: return "U8";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  // Contiguous CPU copies, in name order (the order of the map and of the data).
  std::vector<std::pair<std::string, Tensor>> items;
  json header = json::object();
  uint64_t offset = 0;
  {
    NoGradGuard no_grad;
    for (const auto& kv : tensors) {
      TESSERA_CHECK(kv.first != kMetadataKey, ValueError, "save_safetensors: ", path,
                    ": the tensor name \"__metadata__\" is reserved for the metadata");
      TESSERA_CHECK(kv.second.defined(), ValueError, "save_safetensors: ", path, ": tensor '", kv.first,
                    "' is undefined");
      Tensor c = kv.second.detach().to(Device::cpu()).contiguous();
      uint64_t n = c.nbytes();
      header[kv.first] = {{"dtype", safetensors_dtype_name(c.dtype())},
                          {"shape", c.shape()},
                          {"data_offsets", {offset, offset + n}}};
      offset += n;
      items.emplace_back(kv.first, std::move(c));
    }
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes

  unsigned char len[8];
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  // Temporary file + fsync + rename + fsync of the folder (io/atomic_file.hpp): a crash at
  // any point leaves the old file or the new one under path, never a partial one.
  AtomicFile out(path);
  out.write(len, 8);
  out.write(text);
  for (const auto& kv : items) out.write(kv.second.raw_data(), kv.second.nbytes());
  out.commit();
}

TensorMap load_safetensors(const std::string& path, Metadata* metadata) {
  // A directory opens as a stream on Linux and reports a nonsense size: refuse it first.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) corrupt(path, "is a directory, not a safetensors file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError(detail::str_cat("load_safetensors: ", path, ": cannot open: ", std::strerror(errno)));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (!in || end < 0) corrupt(path, "cannot determine the file size");
  const uint64_t file_size = uint64_t(end);
  in.seekg(0, std::ios::beg);
  if (file_size < 8)
    corrupt(path, detail::str_cat("file has ", file_size, " bytes, too short for the 8-byte header length"));

  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  if (!in) corrupt(path, "could not read the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(len[i]) << (8 * i);
  if (header_len > file_size - 8)
    corrupt(path, detail::str_cat("header length ", header_len, " goes beyond the end of the file (",
                                  file_size, " bytes)"));
  std::string text(header_len, '\0');
  in.read(text.data(), std::streamsize(header_len));
  if (!in) corrupt(path, "could not read the header");
  const uint64_t data_size = file_size - 8 - header_len;
  const uint64_t data_start = 8 + header_len;

  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    corrupt(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) corrupt(path, "header is not a JSON object");

  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == kMetadataKey) {
      if (!v.is_object()) corrupt(path, "\"__metadata__\" is not an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          corrupt(path, "\"__metadata__\" value of '" + m.key() + "' is not a string");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) corrupt(path, where + " is not a JSON object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) corrupt(path, where + " has no \"dtype\" string");
    if (!v.contains("shape") || !v["shape"].is_array()) corrupt(path, where + " has no \"shape\" array");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
        !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned())
      corrupt(path, where + " has no \"data_offsets\" pair of non-negative integers");
    Entry e;
    e.name = name;
    const std::string dname = v["dtype"].get<std::string>();
    auto dt = dtype_from_name(dname);
    if (!dt)
      corrupt(path, where + " has dtype \"" + dname +
                        "\", which Tessera does not support (F64, F32, I64, I32, U8, BOOL)");
    e.dtype = *dt;
    // The product of the sizes, counting 0 as 1, must fit int64 (Tessera's shape rule, so
    // the strides fit): [0, 2^62, 2^62] is rejected here, not deep inside empty().
    bool overflow = false;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned()) corrupt(path, where + " has a shape entry that is not a non-negative integer");
      const uint64_t s = d.get<uint64_t>();
      if (s > uint64_t(INT64_MAX)) overflow = true;
      e.shape.push_back(overflow ? 0 : int64_t(s));
    }
    const auto checked_numel = overflow ? std::nullopt : try_shape_numel(e.shape);
    const uint64_t numel = checked_numel ? uint64_t(*checked_numel) : 0;
    overflow = !checked_numel;
    uint64_t nbytes = 0;
    if (overflow || __builtin_mul_overflow(numel, uint64_t(itemsize(e.dtype)), &nbytes) || nbytes > uint64_t(INT64_MAX))
      corrupt(path, where + " has a shape " + v["shape"].dump() + " too large to address");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    if (e.begin > e.end)
      corrupt(path, detail::str_cat(where, " has data_offsets [", e.begin, ", ", e.end, "] out of order"));
    if (e.end - e.begin != nbytes)
      corrupt(path, detail::str_cat(where, " of shape ", shape_str(e.shape), " and dtype ", dname, " needs ",
                                    nbytes, " bytes but its data_offsets [", e.begin, ", ", e.end, "] span ",
                                    e.end - e.begin));
    entries.push_back(std::move(e));
  }

  // The offsets must tile [0, data_size) exactly.
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::stable_sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : by_offset) {
    if (e->begin < covered)
      corrupt(path, detail::str_cat("tensor '", e->name, "' data_offsets [", e->begin, ", ", e->end,
                                    "] overlap those of '", prev->name, "' [", prev->begin, ", ", prev->end, "]"));
    if (e->begin > covered)
      corrupt(path, detail::str_cat("data bytes [", covered, ", ", e->begin,
                                    ") belong to no tensor (hole before tensor '", e->name, "')"));
    covered = e->end;
    prev = e;
  }
  if (covered > data_size)
    corrupt(path, detail::str_cat("file is truncated: the header describes ", covered,
                                  " bytes of tensor data but only ", data_size, " follow it"));
  if (covered < data_size)
    corrupt(path, detail::str_cat("the last ", data_size - covered, " of the ", data_size,
                                  " data bytes belong to no tensor"));

  TensorMap out;
  for (const Entry* e : by_offset) {
    Tensor t = empty(e->shape, TensorOptions(e->dtype));
    if (e->end > e->begin) {
      in.seekg(std::streamoff(data_start + e->begin));
      in.read(static_cast<char*>(t.raw_data()), std::streamsize(e->end - e->begin));
      if (!in) corrupt(path, "read failed for tensor '" + e->name + "' (file changed while reading?)");
    }
    if (e->dtype == DType::Bool) {
      const unsigned char* b = static_cast<const unsigned char*>(t.raw_data());
      for (uint64_t i = 0; i < e->end - e->begin; ++i)
        if (b[i] > 1)
          corrupt(path, detail::str_cat("BOOL tensor '", e->name, "' holds byte value ", int(b[i]),
                                        " at element ", i, " (only 0 and 1 are valid)"));
    }
    out.emplace(e->name, std::move(t));
  }
  return out;
}

}  // namespace tessera::io
