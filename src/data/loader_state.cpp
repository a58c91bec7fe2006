// The JSON state every data loader saves (ResumableLoader), and the worker-thread setup and
// option checks of StatelessDataLoader.
#include "tessera/data/loader_state.hpp"

#include <nlohmann/json.hpp>
#include <omp.h>

#include <string>

#include "tessera/data/stateless_data_loader.hpp"
#include "tessera/error.hpp"

namespace tessera::data::detail {

SavedState loader_state(uint64_t epoch, uint64_t batch, const LoaderConfig& c) {
  nlohmann::json j = {{"epoch", epoch},
                      {"batch", batch},
                      {"seed", c.seed},
                      {"shuffle", c.shuffle},
                      {"batch_size", c.batch_size},
                      {"drop_last", c.drop_last},
                      {"num_examples", c.num_examples}};
  SavedState out;
  out.json = j.dump();
  return out;
}

std::pair<uint64_t, uint64_t> parse_loader_state(const SavedState& state, const LoaderConfig& now,
                                                 uint64_t num_batches, const char* op) {
  const nlohmann::json j = nlohmann::json::parse(state.json, nullptr, false);
  TESSERA_CHECK(!j.is_discarded() && j.is_object(), ValueError, op, ": the state is not a JSON object");
  auto count = [&](const char* key) -> uint64_t {
    auto it = j.find(key);
    TESSERA_CHECK(it != j.end() && it->is_number_unsigned(), ValueError, op, ": ", key,
                  " is missing or not a count");
    return it->get<uint64_t>();
  };
  auto flag = [&](const char* key) -> bool {
    auto it = j.find(key);
    TESSERA_CHECK(it != j.end() && it->is_boolean(), ValueError, op, ": ", key, " is missing or not true/false");
    return it->get<bool>();
  };
  const uint64_t epoch = count("epoch"), batch = count("batch"), seed = count("seed");
  const uint64_t batch_size = count("batch_size"), n = count("num_examples");
  const bool shuffle = flag("shuffle"), drop_last = flag("drop_last");
  std::string diff;
  auto differs = [&](const char* what, const std::string& saved, const std::string& cur) {
    if (saved != cur) diff += tessera::detail::str_cat(diff.empty() ? "" : ", ", what, " ", saved, " (now ", cur, ")");
  };
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  differs("seed", std::to_string(seed), std::to_string(now.seed));
  differs("shuffle", b(shuffle), b(now.shuffle));
  differs("batch_size", std::to_string(batch_size), std::to_string(now.batch_size));
  differs("drop_last", b(drop_last), b(now.drop_last));
  differs("num_examples", std::to_string(n), std::to_string(now.num_examples));
  TESSERA_CHECK(diff.empty(), ValueError, op, ": the state was saved by a loader with another order: ", diff);
  TESSERA_CHECK(batch <= num_batches, ValueError, op, ": batch ", batch, " is past the end of the epoch (",
                num_batches, " batches)");
  return {epoch, batch};
}

void enter_loader_worker_thread() { omp_set_num_threads(1); }

void check_loader_options(const DataLoaderOptions& o, size_t max_jobs, const char* op) {
  TESSERA_CHECK(o.batch_size() > 0, ValueError, op, ": batch_size must be > 0, got ", o.batch_size());
  TESSERA_CHECK(o.workers() == 0 || max_jobs > 0, ValueError, op, ": max_jobs must be > 0 with ", o.workers(),
                " workers, got ", max_jobs);
}

}  // namespace tessera::data::detail
