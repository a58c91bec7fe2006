// safetensors: round trips, the exact byte layout of a written file, a hand-built file,
// and every kind of corrupt file the reader must reject.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tessera/io/safetensors.hpp"
#include "tessera/ops.hpp"
#include "tessera/random.hpp"

using namespace tessera;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A folder per process and test case, so test binaries and CTest jobs running at the same
// time do not see each other's files.
fs::path temp_dir(const std::string& test = "files") {
  fs::path d = fs::temp_directory_path() / ("tessera_test_safetensors_" + std::to_string(::getpid())) / test;
  fs::create_directories(d);
  return d;
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[std::size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string write_file(const std::string& name, const std::string& contents) {
  std::string path = (temp_dir() / name).string();
  std::ofstream(path, std::ios::binary).write(contents.data(), std::streamsize(contents.size()));
  return path;
}

// A file whose length prefix is the header's true length.
std::string write_st(const std::string& name, const std::string& header, const std::string& data) {
  return write_file(name, le64(header.size()) + header + data);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <typename T>
std::vector<T> values(const Tensor& t) {
  Tensor c = t.contiguous();
  const T* p = c.data_ptr<T>();
  return std::vector<T>(p, p + c.numel());
}

}  // namespace

TEST_CASE("safetensors round-trips every dtype, 0-dim, empty and strided tensors", "[io]") {
  manual_seed(5);
  Tensor f32 = randn({3, 4});
  Tensor f32_t = f32.t();  // strided: saved as its contiguous values
  Tensor f64 = randn({2, 3, 2}, kFloat64);
  Tensor i64 = from_vector<int64_t>({-5, 0, 7, int64_t(1) << 40}, {2, 2});
  Tensor i32 = from_vector<int32_t>({-1, 2, -3}, {3});
  Tensor u8 = from_vector<uint8_t>({0, 128, 255, 7}, {4});
  Tensor b = from_vector<uint8_t>({1, 0, 1}, {3}).to(kBool);
  Tensor scalar = scalar_tensor(2.5);
  Tensor empty_t = zeros({0, 3});
  io::TensorMap in = {{"f32", f32},  {"f32_t", f32_t}, {"f64", f64},    {"i64", i64},      {"i32", i32},
                      {"u8", u8},    {"bool", b},      {"scalar", scalar}, {"empty", empty_t}};
  fs::remove_all(temp_dir("roundtrip"));
  std::string path = (temp_dir("roundtrip") / "roundtrip.safetensors").string();
  io::save_safetensors(path, in, {{"format", "pt"}, {"note", "round trip"}});

  io::Metadata meta;
  io::TensorMap out = io::load_safetensors(path, &meta);
  CHECK(meta == io::Metadata{{"format", "pt"}, {"note", "round trip"}});
  REQUIRE(out.size() == in.size());
  for (auto& kv : in) {
    CAPTURE(kv.first);
    const Tensor& t = out.at(kv.first);
    CHECK(t.dtype() == kv.second.dtype());
    CHECK(t.shape() == kv.second.shape());
    CHECK(t.is_cpu());
  }
  CHECK(values<float>(out["f32"]) == values<float>(f32));
  CHECK(values<float>(out["f32_t"]) == values<float>(f32_t));
  CHECK(values<double>(out["f64"]) == values<double>(f64));
  CHECK(values<int64_t>(out["i64"]) == values<int64_t>(i64));
  CHECK(values<int32_t>(out["i32"]) == values<int32_t>(i32));
  CHECK(values<uint8_t>(out["u8"]) == values<uint8_t>(u8));
  CHECK(values<bool>(out["bool"]) == values<bool>(b));
  CHECK(out["scalar"].item<double>() == 2.5);
  CHECK(out["empty"].numel() == 0);

  // Written via a temporary file that is renamed: nothing else is left in the folder.
  std::vector<std::string> left;
  for (auto& entry : fs::directory_iterator(temp_dir("roundtrip"))) left.push_back(entry.path().filename().string());
  CHECK(left == std::vector<std::string>{"roundtrip.safetensors"});
  fs::remove_all(temp_dir().parent_path());
}

TEST_CASE("safetensors writes the documented byte layout", "[io]") {
  io::TensorMap in = {{"b", from_vector<int64_t>({1, -2}, {2})}, {"a", scalar_tensor(1.5)}};
  std::string path = (temp_dir("layout") / "layout.safetensors").string();
  io::save_safetensors(path, in, {{"k", "v"}});
  std::string file = read_file(path);

  std::string json =
      R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,4],"dtype":"F32","shape":[]},)"
      R"("b":{"data_offsets":[4,20],"dtype":"I64","shape":[2]}})";
  std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  std::string data = bytes_of(std::vector<float>{1.5f}) + bytes_of(std::vector<int64_t>{1, -2});
  // Explicit little-endian bytes, independent of the host: 1.5f = 0x3FC00000.
  CHECK(data.substr(0, 4) == std::string("\x00\x00\xc0\x3f", 4));
  CHECK(data.substr(12, 8) == std::string("\xfe\xff\xff\xff\xff\xff\xff\xff", 8));
  CHECK(file == le64(padded.size()) + padded + data);
  CHECK((8 + padded.size()) % 8 == 0);
  fs::remove_all(temp_dir().parent_path());
}

TEST_CASE("safetensors reads a hand-built file", "[io]") {
  // Header with whitespace and keys in offset order different from name order.
  std::string header = R"( {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]},
                             "n": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]},
                             "__metadata__": {"source": "hand"}} )";
  std::string data = bytes_of(std::vector<int32_t>{42, -7}) + bytes_of(std::vector<float>{0.5f, -1.f, 2.f, 3.25f});
  std::string path = write_st("hand.safetensors", header, data);
  io::Metadata meta;
  auto m = io::load_safetensors(path, &meta);
  CHECK(meta.at("source") == "hand");
  REQUIRE(m.size() == 2);
  CHECK(m.at("w").shape() == Shape{2, 2});
  CHECK(values<float>(m.at("w")) == std::vector<float>{0.5f, -1.f, 2.f, 3.25f});
  CHECK(values<int32_t>(m.at("n")) == std::vector<int32_t>{42, -7});
  // An empty header object is a valid file with no tensors.
  CHECK(io::load_safetensors(write_st("none.safetensors", "{}", "")).empty());
  fs::remove_all(temp_dir().parent_path());
}

TEST_CASE("safetensors rejects corrupt files with the file name and the fault", "[io]") {
  const std::string f8 = bytes_of(std::vector<float>{1.f, 2.f});  // 8 bytes of data
  auto expect = [](const std::string& path, const std::string& fault) {
    CAPTURE(path, fault);
    CHECK_THROWS_AS(io::load_safetensors(path), IOError);
    CHECK_THROWS_WITH(io::load_safetensors(path), Contains(path) && Contains(fault));
  };
  expect((temp_dir() / "does-not-exist.safetensors").string(), "cannot open");
  expect(write_file("short.safetensors", "abc"), "too short");
  expect(write_file("len.safetensors", le64(1000) + "{}"), "header length 1000 goes beyond the end of the file");
  expect(write_file("hugelen.safetensors", le64(~uint64_t(0)) + "{}"), "goes beyond the end of the file");
  expect(write_st("json.safetensors", "{\"a\": {", ""), "not valid JSON");
  expect(write_st("array.safetensors", "[1, 2]", ""), "not a JSON object");
  expect(write_st("entry.safetensors", R"({"a": 3})", ""), "tensor 'a' is not a JSON object");
  expect(write_st("nodtype.safetensors", R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", f8), "no \"dtype\"");
  expect(write_st("noshape.safetensors", R"({"a": {"dtype": "F32", "data_offsets": [0, 8]}})", f8), "no \"shape\"");
  expect(write_st("nooffsets.safetensors", R"({"a": {"dtype": "F32", "shape": [2]}})", f8), "data_offsets");
  expect(write_st("badoffsets.safetensors", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, -8]}})", f8),
         "data_offsets");
  expect(write_st("i16.safetensors", R"({"a": {"dtype": "I16", "shape": [4], "data_offsets": [0, 8]}})", f8),
         "dtype \"I16\", which Tessera does not support");
  expect(write_st("dtype.safetensors", R"({"a": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}})", f8),
         "\"Q7\"");
  expect(write_st("negshape.safetensors", R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", f8),
         "shape entry");
  expect(write_st("hugeshape.safetensors",
                  R"({"a": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", f8),
         "too large");
  expect(write_st("order.safetensors", R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", f8),
         "out of order");
  expect(write_st("size.safetensors", R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", f8),
         "needs 12 bytes but its data_offsets [0, 8] span 8");
  expect(write_st("overlap.safetensors",
                  R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                  f8 + f8.substr(0, 4)),
         "overlap");
  expect(write_st("hole.safetensors",
                  R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}})",
                  f8 + f8),
         "data bytes [8, 12) belong to no tensor");
  expect(write_st("trailing.safetensors", R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", f8),
         "the last 4 of the 8 data bytes belong to no tensor");
  expect(write_st("truncated.safetensors", R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", f8),
         "truncated");
  expect(write_st("bool.safetensors", R"({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})",
                  std::string("\x01\x02", 2)),
         "byte value 2");
  expect(write_st("meta.safetensors", R"({"__metadata__": {"n": 3}})", ""), "__metadata__");
  fs::remove_all(temp_dir().parent_path());
}

TEST_CASE("save_safetensors reports unwritable paths and reserved names", "[io]") {
  std::string bad = (temp_dir("unwritable") / "no-such-dir" / "x.safetensors").string();
  CHECK_THROWS_AS(io::save_safetensors(bad, {{"a", ones({2})}}), IOError);
  CHECK_THROWS_WITH(io::save_safetensors(bad, {{"a", ones({2})}}), Contains(bad));
  std::string ok = (temp_dir("unwritable") / "reserved.safetensors").string();
  CHECK_THROWS_AS(io::save_safetensors(ok, {{"__metadata__", ones({2})}}), ValueError);
  CHECK(io::safetensors_dtype_name(kBool) == std::string("BOOL"));
  fs::remove_all(temp_dir().parent_path());
}
