// The IDX file format of the MNIST family (MNIST, Fashion-MNIST, EMNIST, KMNIST), raw or
// gzip-compressed. Format: Y. LeCun, "THE MNIST DATABASE of handwritten digits",
// http://yann.lecun.com/exdb/mnist/ (section "FILE FORMATS FOR THE MNIST DATABASE"):
// a 4-byte magic number 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 sizes,
// then the elements in row-major order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::data {

/// IDX magic number of an image file: uint8 elements (type 0x08), 3 dims [N, rows, cols].
constexpr uint32_t kIdxImagesMagic = 2051;
/// IDX magic number of a label file: uint8 elements (type 0x08), 1 dim [N].
constexpr uint32_t kIdxLabelsMagic = 2049;

/// An IDX array: dims from the header and the raw row-major bytes (uint8 element type only,
/// type code 0x08). data.size() equals the product of dims.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

/// Reads an IDX file, raw or gzip (detected by the magic bytes 1f 8b, inflated by zlib).
/// expected_magic: kIdxImagesMagic (2051), kIdxLabelsMagic (2049), or 0 to accept any
/// uint8 IDX file. The dims in the big-endian header are checked against the data that
/// follows. Throws IOError naming the file and what is wrong: missing or unreadable file,
/// truncated header or data, corrupt gzip stream, wrong magic, an element type other than
/// uint8, or trailing bytes after the data the dims describe.
IdxArray read_idx(const std::string& path, uint32_t expected_magic = 0);

/// Writes array as an IDX file (uint8, magic 0x0000 08 <ndims>); gzip-compressed when gzip
/// is true (zlib, default level). Throws ValueError when dims are empty, negative, over
/// 2^32-1, or do not multiply to data.size(); IOError naming the file when writing fails.
void write_idx(const std::string& path, const IdxArray& array, bool gzip);

}  // namespace tessera::data
