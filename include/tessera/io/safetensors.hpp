// The safetensors file format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON header
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the tensors' raw little-endian bytes, C order; offsets are relative to the first
// byte after the header and together cover that byte buffer exactly, without holes or
// overlaps. dtypes: F64 F32 I64 I32 U8 BOOL.
#pragma once
#include <map>
#include <string>

#include "tessera/tensor.hpp"

namespace tessera::io {

using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

/// Writes tensors (any device, any strides: copied to contiguous CPU bytes) and optional
/// string metadata to path, crash-safely (io::AtomicFile: temporary file in the same folder,
/// fsync, rename, fsync of the folder), so a reader never sees a half-written file. Header is space-padded to a multiple of 8
/// bytes, as the reference implementation does. Throws IOError naming the path when it
/// cannot be written, ValueError for the reserved name "__metadata__".
void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {});

/// Reads every tensor of a safetensors file into CPU tensors (and the metadata when asked).
/// Throws IOError naming the file and what is wrong: too short, header length beyond the
/// file, header not JSON or not an object, an entry without dtype/shape/data_offsets, an
/// unsupported dtype, offsets reversed or out of range, overlapping or leaving holes or
/// trailing bytes, a shape whose byte size differs from its offsets, a truncated file, a
/// BOOL byte other than 0 or 1.
TensorMap load_safetensors(const std::string& path, Metadata* metadata = nullptr);

/// The safetensors name of a dtype ("F32", "I64", "BOOL", ...).
const char* safetensors_dtype_name(DType dtype);

}  // namespace tessera::io
