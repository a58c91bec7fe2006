// libFuzzer target: the safetensors reader (tessera::io::load_safetensors).
//
// The input is the whole file. load_safetensors must either throw a tessera::Error, or
// return CPU tensors whose byte sizes match their shapes and dtypes, whose bytes are the
// file's bytes at the header's data_offsets (checked with an independent JSON parse),
// which together cover the data section exactly, and which survive a
// save_safetensors/load_safetensors round trip unchanged (metadata included).
// A file that is a checkpoint's state file (io/checkpoint.hpp: JSON state in "optimizer",
// "scheduler" and "loader" metadata, tensors "optimizer.state.<i>.<name>") is also fed to
// Adam, StepLR and DataLoader load_state_dict: each must accept it or throw a tessera::Error
// (never another exception or a crash), and a state it accepts must round-trip.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "tessera/error.hpp"
#include "tessera/data/dataloader.hpp"
#include "tessera/io/safetensors.hpp"
#include "tessera/optim/lr_scheduler.hpp"
#include "tessera/optim/optimizer.hpp"

namespace {

constexpr const char* kTarget = "fuzz_safetensors";
[[noreturn]] void fail(const std::string& what) { fuzz::fail(kTarget, what); }

/// Loads the checkpoint state pieces of meta/tensors into fixed objects (see the header).
void check_training_state(const tessera::io::Metadata& meta, const tessera::io::TensorMap& tensors) {
  using namespace tessera;
  // Two parameters of shapes [2, 3] and [2] (a Linear(3, 2)), as the seed corpus's file.
  static Tensor w = zeros({2, 3}).requires_grad_(), b = zeros({2}).requires_grad_();
  static optim::Adam adam({w, b});
  static optim::StepLR sched(adam, 2, 0.5);
  static data::DataLoader loader(
      data::MnistDataset(zeros({8, 2, 2}, TensorOptions(kUInt8)), zeros({8}, TensorOptions(kInt64))), [] {
        data::MnistLoaderOptions o;
        o.batch_size(3);
        o.shuffle(true);
        return o;
      }());
  auto attempt = [&](const char* key, auto&& load, auto&& save) {
    auto it = meta.find(key);
    if (it == meta.end()) return;
    SavedState s;
    s.json = it->second;
    if (std::string(key) == "optimizer")
      for (const auto& kv : tensors)
        if (kv.first.rfind("optimizer.", 0) == 0) s.tensors[kv.first.substr(10)] = kv.second;
    try {
      load(s);
    } catch (const tessera::Error&) {
      return;
    }
    const SavedState again = save();
    try {
      load(again);
    } catch (const tessera::Error& e) {
      fail(std::string("the ") + key + " state it accepted does not load back: " + e.what());
    }
  };
  attempt("optimizer", [&](const SavedState& s) { adam.load_state_dict(s); }, [&] { return adam.state_dict(); });
  attempt("scheduler", [&](const SavedState& s) { sched.load_state_dict(s); }, [&] { return sched.state_dict(); });
  attempt("loader", [&](const SavedState& s) { loader.load_state_dict(s); }, [&] { return loader.state_dict(); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::temp_path(kTarget, ".safetensors"),
                           path2 = fuzz::temp_path(kTarget, "_rt.safetensors");
  fuzz::write_file(kTarget, path, data, size);
  tessera::io::TensorMap tensors;
  tessera::io::Metadata meta;
  try {
    tensors = tessera::io::load_safetensors(path, &meta);
  } catch (const tessera::Error&) {
    return 0;
  }

  // Accepted: check it against the file with an independent reading of the header.
  if (size < 8) fail("accepted a file of " + std::to_string(size) + " bytes");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(data[i]) << (8 * i);
  if (header_len > size - 8) fail("accepted a header length beyond the file");
  const uint8_t* body = data + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;
  nlohmann::json header = nlohmann::json::parse(data + 8, data + 8 + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) fail("accepted a header that is not a JSON object");
  size_t entries = 0;
  uint64_t total = 0;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    ++entries;
    auto found = tensors.find(it.key());
    if (found == tensors.end()) fail("tensor '" + it.key() + "' of the header is missing from the result");
    const tessera::Tensor& t = found->second;
    if (!t.defined() || !t.is_cpu() || !t.is_contiguous()) fail("tensor '" + it.key() + "' is not a contiguous CPU tensor");
    if (it.value()["dtype"] != tessera::io::safetensors_dtype_name(t.dtype())) fail("dtype of '" + it.key() + "' differs");
    std::vector<int64_t> shape;
    for (const auto& d : it.value()["shape"]) shape.push_back(d.get<int64_t>());
    if (shape != t.shape()) fail("shape of '" + it.key() + "' differs: " + tessera::shape_str(t.shape()));
    const uint64_t b = it.value()["data_offsets"][0].get<uint64_t>(), e = it.value()["data_offsets"][1].get<uint64_t>();
    if (b > e || e > body_size) fail("accepted data_offsets outside the data of '" + it.key() + "'");
    if (uint64_t(t.numel()) * t.itemsize() != e - b || t.nbytes() != e - b || t.storage()->nbytes() < t.nbytes())
      fail("byte size of '" + it.key() + "' does not match its shape and dtype");
    if (e > b && std::memcmp(t.raw_data(), body + b, e - b) != 0) fail("bytes of '" + it.key() + "' differ from the file");
    total += e - b;
  }
  if (entries != tensors.size()) fail("result has tensors the header does not name");
  if (total != body_size) fail("accepted a data section with holes, overlaps or trailing bytes");

  // Round trip.
  tessera::io::save_safetensors(path2, tensors, meta);
  tessera::io::Metadata meta2;
  tessera::io::TensorMap again = tessera::io::load_safetensors(path2, &meta2);
  if (meta2 != meta || again.size() != tensors.size()) fail("round trip changed the metadata or the tensor count");
  for (const auto& kv : tensors) {
    const tessera::Tensor& a = kv.second;
    const tessera::Tensor& c = again.at(kv.first);
    if (a.dtype() != c.dtype() || a.shape() != c.shape() || a.nbytes() != c.nbytes() ||
        (a.nbytes() > 0 && std::memcmp(a.raw_data(), c.raw_data(), a.nbytes()) != 0))
      fail("round trip changed tensor '" + kv.first + "'");
  }
  check_training_state(meta, tensors);
  return 0;
}
