// MetricsWriter (see metrics.hpp).
#include "tessera/io/metrics.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "tessera/error.hpp"

namespace tessera::io {

MetricsWriter::MetricsWriter(const std::string& path, bool append)
    : path_(path), file_(std::fopen(path.c_str(), append ? "a" : "w"), &std::fclose) {
  if (!file_) throw IOError("metrics: cannot open '" + path + "' for writing: " + std::strerror(errno));
}

void MetricsWriter::write(const std::string& kind, std::initializer_list<std::pair<const char*, double>> fields) {
  nlohmann::ordered_json j;
  j["kind"] = kind;
  for (const auto& f : fields) {
    if (std::isfinite(f.second))
      j[f.first] = f.second;
    else
      j[f.first] = nullptr;
  }
  const std::string line = j.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_.get()) != line.size() || std::fflush(file_.get()) != 0)
    throw IOError("metrics: writing '" + path_ + "' failed: " + std::strerror(errno));
}

}  // namespace tessera::io
