// The shadow.* checks: which copy of each CUDA library a process loads, and whether a copy
// earlier on its search hides a newer one or the Python environment's own wheel.
#include "check_stack.hpp"

#include <algorithm>

namespace tessera::env::detail {

namespace {

std::string describe(const LibraryCopy& c) {
  std::string s = c.paths.empty() ? c.resolved_path : c.paths.front();
  if (!c.resolved_path.empty() && c.resolved_path != s) s += " -> " + c.resolved_path;
  s += " (" + (c.version.empty() ? std::string("version unknown") : c.version) + ")";
  return s;
}

/// Both versions known to at least major.minor, and a older than b.
bool older(const LibraryCopy& a, const LibraryCopy& b) {
  if (a.version.empty() || b.version.empty()) return false;
  const Version va = Version::parse(a.version), vb = Version::parse(b.version);
  return va.known() && vb.known() && va < vb;
}

std::string folder(const std::string& p) { return p.substr(0, p.rfind('/')); }

}  // namespace

void check_loader(const Report& r, const AddCheck& add) {
  const LoaderReport& L = r.loader;
  for (const auto& proc : L.processes) {
    const bool python = proc.process.rfind("python:", 0) == 0;
    std::vector<std::string> files;
    for (const auto& c : L.copies) {
      if (python && std::find(proc.own.begin(), proc.own.end(), c.resolved_path) == proc.own.end()) continue;
      if (std::find(files.begin(), files.end(), c.file) == files.end()) files.push_back(c.file);
    }
    for (const auto& file : files) {
      std::vector<int> same;
      for (size_t i = 0; i < L.copies.size(); ++i)
        if (L.copies[i].file == file) same.push_back(static_cast<int>(i));
      if (same.size() < 2) continue;
      const auto [w, via] = resolve(L, proc, file);
      if (w < 0) continue;
      const LibraryCopy& win = L.copies[static_cast<size_t>(w)];
      std::vector<std::string> others;
      const LibraryCopy* newer = nullptr;
      for (int i : same) {
        if (i == w) continue;
        const LibraryCopy& c = L.copies[static_cast<size_t>(i)];
        others.push_back(describe(c));
        if (older(win, c) && (!newer || older(*newer, c))) newer = &c;
      }
      std::string list;
      for (const auto& o : others) list += (list.empty() ? "" : ", ") + o;
      if (python) {
        const std::string env = proc.process.substr(7);
        const std::string name = "python." + env + ".shadow." + file;
        const bool own = std::find(proc.own.begin(), proc.own.end(), win.resolved_path) != proc.own.end();
        if (own) {
          add(name, Status::OK, env + ": loads its own wheel's " + describe(win) + "; other copies: " + list, "", false);
        } else {
          const LibraryCopy* mine = nullptr;
          for (int i : same)
            if (std::find(proc.own.begin(), proc.own.end(), L.copies[static_cast<size_t>(i)].resolved_path) != proc.own.end())
              mine = &L.copies[static_cast<size_t>(i)];
          add(name, Status::WARN,
              env + ": " + via + "'s " + describe(win) + " shadows the environment's own " +
                  (mine ? describe(*mine) + " from " + mine->version_source : std::string("wheel copy")) +
                  (mine && older(win, *mine) ? ", which is newer" : std::string()) +
                  ": its Python loads a library its framework was not installed with",
              "take " + folder(win.paths.empty() ? win.resolved_path : win.paths.front()) +
                  " out of LD_LIBRARY_PATH when running this environment's Python (e.g. env -u LD_LIBRARY_PATH python ...)",
              false);
        }
        continue;
      }
      const std::string name = "shadow." + file;
      if (newer) {
        add(name, Status::WARN,
            file + ": Tessera loads " + describe(win) + " from " + via + ", which shadows the newer " + describe(*newer) +
                " (" + (newer->found_via.empty() ? std::string("elsewhere") : newer->found_via.front()) + ")",
            via == "LD_LIBRARY_PATH"
                ? "put " + folder(newer->paths.empty() ? newer->resolved_path : newer->paths.front()) +
                      " before " + folder(win.paths.empty() ? win.resolved_path : win.paths.front()) +
                      " in LD_LIBRARY_PATH, or remove the older copy's folder from it"
                : "remove or update the older copy, or put " +
                      folder(newer->paths.empty() ? newer->resolved_path : newer->paths.front()) +
                      " first in LD_LIBRARY_PATH",
            false);
      } else {
        add(name, Status::OK, file + ": Tessera loads " + describe(win) + " from " + via + "; other copies: " + list, "",
            false);
      }
    }
  }
}

}  // namespace tessera::env::detail
