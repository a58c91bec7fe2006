// Regression tests for the inputs the fuzz targets (fuzz/) found. Each test replays one
// finding: the file bytes inline for the readers, the op calls written out for fuzz_shape
// (FUZZ_SHAPE_TRACE=1 prints them), and asserts the exception type and a message fragment,
// or the correct result. Run: tessera_tests "[fuzz]".
#include <catch2/catch.hpp>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "tensor_testing.hpp"
#include "tessera/data/idx.hpp"
#include "tessera/io/safetensors.hpp"
#include "tessera/ops.hpp"
#include "tessera/tensor.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

constexpr int64_t k2p62 = int64_t(1) << 62;
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

// The folder for this process's files, removed when the test binary exits.
const fs::path& temp_folder() {
  struct Folder {
    fs::path path = fs::temp_directory_path() / ("tessera_test_fuzz_" + std::to_string(::getpid()));
    ~Folder() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static const Folder folder;
  return folder.path;
}

std::string write_temp(const std::string& name, const std::string& bytes) {
  const fs::path& d = temp_folder();
  fs::create_directories(d);
  std::string path = (d / name).string();
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  return path;
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}

std::string gzip_bytes(const std::string& in) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, uLong(in.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = uInt(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// Every element of t, read through its strides (no kernels).
std::vector<double> read_all(const Tensor& t) {
  std::vector<double> v;
  testing::for_each_index(t.shape(), [&](const std::vector<int64_t>& idx) { v.push_back(testing::elem(t, idx)); });
  return v;
}

}  // namespace

// fuzz_shape: view/reshape sizes whose product overflows int64 were multiplied unchecked
// (UBSan: signed overflow 2^62 * 2^62 in infer_shape).
TEST_CASE("fuzz: view/reshape reject sizes whose product overflows int64", "[fuzz][shape]") {
  // The fuzz input: a 0-dim int32 tensor viewed as [2^62, 2^62, 2^62].
  Tensor z = arange(0, 1, 1, TensorOptions(kInt32)).reshape({});
  CHECK_THROWS_WITH(z.view({k2p62, k2p62, k2p62}), Contains("view") && Contains("more than 2^63 elements"));
  Tensor t = arange(0, 6, 1);
  CHECK_THROWS_AS(t.view({k2p62, k2p62}), ShapeError);
  CHECK_THROWS_WITH(t.reshape({k2p62, k2p62}), Contains("reshape") && Contains("more than 2^63 elements"));
  CHECK_THROWS_AS(t.view({k2p62, -1, k2p62}), ShapeError);
  // A 0 size does not make an overflowing shape valid, wherever it stands.
  Tensor e = zeros({0});
  CHECK_THROWS_AS(e.reshape({k2p62, k2p62, 0}), ShapeError);
  CHECK_THROWS_AS(e.reshape({0, k2p62, k2p62}), ShapeError);
  // Large but representable shapes still view an empty tensor.
  CHECK(e.reshape({0, k2p62}).shape() == Shape{0, k2p62});
  CHECK(e.view({-1, k2p62}).shape() == Shape{0, k2p62});
}

// fuzz_shape: narrow checked start + length <= n, which overflowed for start = length = 2^62.
TEST_CASE("fuzz: narrow rejects start + length beyond int64", "[fuzz][shape]") {
  // The fuzz input: a [1] view of a 0-dim tensor, narrow(-1, 2^62, 2^62).
  Tensor one = arange(0, 1, 1, TensorOptions(kInt32)).reshape({}).view({1});
  CHECK_THROWS_AS(one.narrow(-1, k2p62, k2p62), IndexError);
  Tensor t = arange(0, 5, 1);
  CHECK_THROWS_WITH(t.narrow(0, k2p62, k2p62), Contains("narrow") && Contains("out of range"));
  CHECK_THROWS_AS(t.narrow(0, 2, kI64Max), IndexError);
  CHECK_THROWS_AS(t.narrow(0, kI64Max, 1), IndexError);
  Tensor n = t.narrow(0, 3, 2);
  CHECK(read_all(n) == std::vector<double>{3, 4});
}

// fuzz_shape: slice computed (end - start + step - 1) / step and stride * step, both of which
// overflowed for a huge step (UBSan: 3 * 2^62 in Tensor::slice).
TEST_CASE("fuzz: slice with a huge step gives one element, no overflow", "[fuzz][shape]") {
  // The fuzz input: arange(18).reshape([6, 3]).transpose(-1, 0).slice(-1, 2^62, 2^62, 2^62).
  Tensor tr = arange(0, 18, 1, TensorOptions(kInt32)).reshape({6, 3}).transpose(-1, 0);
  Tensor e = tr.slice(-1, k2p62, k2p62, k2p62);
  CHECK(e.shape() == Shape{3, 0});
  CHECK(e.numel() == 0);
  Tensor t = arange(0, 12, 1).view({4, 3});
  for (int64_t step : {k2p62, kI64Max, kI64Max - 1}) {
    Tensor s = t.slice(0, 1, 4, step);
    CHECK(s.shape() == Shape{1, 3});
    CHECK(read_all(s) == std::vector<double>{3, 4, 5});
    Tensor c = t.slice(1, -2, kI64Max, step);  // columns 1.. with a huge step: column 1 only
    CHECK(c.shape() == Shape{4, 1});
    CHECK(read_all(c) == std::vector<double>{1, 4, 7, 10});
  }
  // Empty slices at the extremes of start/end.
  CHECK(t.slice(0, kI64Max, std::numeric_limits<int64_t>::min(), 2).shape() == Shape{0, 3});
  CHECK(t.slice(0, 0, 4, 3).shape() == Shape{2, 3});
  CHECK(read_all(t.slice(0, 0, 4, 3)) == std::vector<double>{0, 1, 2, 9, 10, 11});
}

// fuzz_shape: expand accepted target sizes whose product overflows int64, making a tensor
// whose numel() then threw (or overflowed in callers).
TEST_CASE("fuzz: expand rejects shapes with more than 2^63 elements", "[fuzz][shape]") {
  // The fuzz input: a 0-dim float64 tensor expanded to [2^62, 2^62].
  Tensor s = arange(0, 1, 1, TensorOptions(kFloat64)).reshape({});
  CHECK_THROWS_WITH(s.expand({k2p62, k2p62}), Contains("expand") && Contains("more than 2^63 elements"));
  CHECK_THROWS_AS(ones({1, 1}).expand({4, k2p62, k2p62}), ShapeError);
  CHECK_THROWS_AS(zeros({1, 1}).expand({0, k2p62, k2p62}), ShapeError);
  // A large but representable broadcast view is fine (stride 0).
  Tensor big = s.expand({k2p62});
  CHECK(big.numel() == k2p62);
  CHECK(big.strides() == Strides{0});
}

// shape_numel returned 0 for [0, 2^62, 2^62] but threw for [2^62, 2^62, 0]; the first then
// overflowed in contiguous_strides (empty(), arange().reshape(), safetensors shapes).
TEST_CASE("fuzz: shape_numel and empty() treat an overflowing shape the same in any order", "[fuzz][shape]") {
  CHECK_THROWS_AS(shape_numel({k2p62, k2p62, 0}), ValueError);
  CHECK_THROWS_AS(shape_numel({0, k2p62, k2p62}), ValueError);
  CHECK_THROWS_AS(shape_numel({k2p62, 0, k2p62}), ValueError);
  CHECK_THROWS_WITH(empty({0, k2p62, k2p62}), Contains("more than 2^63 elements"));
  CHECK_THROWS_AS(contiguous_strides({0, k2p62, k2p62}), ValueError);
  CHECK_THROWS_AS(shape_numel({0, -1}), ValueError);
  CHECK(shape_numel({0, k2p62}) == 0);
  CHECK(shape_numel({k2p62, 1}) == k2p62);
  CHECK(contiguous_strides({0, 3, int64_t(1) << 60}) == Strides{3 * (int64_t(1) << 60), int64_t(1) << 60, 1});
}

// fuzz_safetensors: a shape [0, 2^62, 2^62] passed the byte-size check (0 bytes) and then
// overflowed building the tensor's strides; now it is the reader's IOError.
TEST_CASE("fuzz: safetensors rejects an empty tensor whose shape overflows int64", "[fuzz][safetensors]") {
  const std::string header =
      R"({"e":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})";
  const std::string path = write_temp("overflow-empty.safetensors", le64(header.size()) + header);
  CHECK_THROWS_AS(io::load_safetensors(path), IOError);
  CHECK_THROWS_WITH(io::load_safetensors(path), Contains("tensor 'e'") && Contains("too large to address"));
  // The same tensor with representable sizes loads.
  const std::string ok_header = R"({"e":{"dtype":"F32","shape":[0,4611686018427387904],"data_offsets":[0,0]}})";
  io::TensorMap m = io::load_safetensors(write_temp("big-empty.safetensors", le64(ok_header.size()) + ok_header));
  CHECK(m.at("e").shape() == Shape{0, k2p62});
  CHECK(m.at("e").numel() == 0);
}

// fuzz_idx: dims [0, 2^32-1, 2^32-1, 2^32-1] were accepted (0 elements) while the same dims in
// another order were rejected as overflowing; now both are, like shape_numel.
TEST_CASE("fuzz: IDX dims overflowing int64 are rejected whatever the position of a 0 dim", "[fuzz][idx]") {
  const std::string zero_first("\x00\x00\x08\x04" "\x00\x00\x00\x00" "\xff\xff\xff\xff" "\xff\xff\xff\xff"
                               "\xff\xff\xff\xff", 20);
  const std::string zero_last("\x00\x00\x08\x04" "\xff\xff\xff\xff" "\xff\xff\xff\xff" "\xff\xff\xff\xff"
                              "\x00\x00\x00\x00", 20);
  for (const std::string& bytes : {zero_first, zero_last}) {
    for (bool gz : {false, true}) {
      const std::string path = write_temp(gz ? "overflow.idx.gz" : "overflow.idx", gz ? gzip_bytes(bytes) : bytes);
      CHECK_THROWS_AS(data::read_idx(path), IOError);
      CHECK_THROWS_WITH(data::read_idx(path), Contains("overflow a 64-bit element count"));
    }
  }
}

// fuzz_idx (found by its speed, 370 executions/s): a gzip file whose header claims 2^32-1
// bytes made read_idx zero-fill a 16 MiB buffer before noticing the stream was short. The
// buffer now grows from 64 KiB. This test pins the outcome (a truncation error naming what
// the stream holds); the speed itself is what fuzz.sh's executions per second show.
TEST_CASE("fuzz: a short gzip IDX stream claiming 4 GB is reported as truncated", "[fuzz][idx]") {
  const std::string bytes("\x00\x00\x08\x01" "\xff\xff\xff\xff" "\x01\x02\x03", 11);
  const std::string path = write_temp("short.idx.gz", gzip_bytes(bytes));
  CHECK_THROWS_WITH(data::read_idx(path), Contains("truncated data") && Contains("the gzip stream holds 3"));
}

// Not a fuzz input but the same reader (found by the bad-input catalogue, test_bad_inputs.cpp):
// a directory opened as a stream reported a nonsense size, and the unread 8-byte length
// was used uninitialised, so load_safetensors threw std::bad_alloc instead of an IOError.
TEST_CASE("fuzz: load_safetensors of a directory is an IOError naming it", "[fuzz][safetensors]") {
  fs::path d = fs::temp_directory_path() / ("tessera_test_fuzz_dir_" + std::to_string(::getpid()));
  fs::create_directories(d);
  CHECK_THROWS_AS(io::load_safetensors(d.string()), IOError);
  CHECK_THROWS_WITH(io::load_safetensors(d.string()), Contains(d.string()) && Contains("is a directory"));
  fs::remove_all(d);
}
