// find_python_envs(): Python environments and their GPU wheels, from the file system only
// (dist-info METADATA and RECORD as the Python packaging specifications define them:
// "Recording installed projects", "Core metadata specifications").
#include "tessera/env/python_envs.hpp"

#include "fs_util.hpp"
#include "text_scan.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <glob.h>
#include <set>
#include <sstream>
#include <sys/stat.h>

namespace tessera::env {

namespace {

using fs_util::base_name;
using fs_util::is_dir;
using fs_util::is_file;
using fs_util::list_dir;
using fs_util::real_path;
using fs_util::strip_slash;

std::vector<std::string> glob_paths(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  ::globfree(&g);
  return out;
}

std::string trim(const std::string& s) { return std::string(detail::trim(s)); }

using detail::starts_with;

bool gpu_relevant(const std::string& n) {
  return n == "torch" || n == "jax" || n == "jaxlib" || starts_with(n, "jax-cuda") || starts_with(n, "cupy") ||
         starts_with(n, "tensorflow") || n == "tf-nightly" || n == "onnxruntime-gpu" || starts_with(n, "nvidia-");
}

/// A CUDA library file name a wheel can install: libcudart.so.12, libcudnn_ops_infer.so.8, ...
bool cuda_library_file(const std::string& file) {
  std::string_view stem, rest;
  if (!detail::split_shared_object(file, stem, rest)) return false;
  bool known = stem == "cudart" || stem == "cublas" || stem == "cublasLt" || stem == "nccl";
  if (starts_with(stem, "cudnn")) {
    known = true;
    for (char c : stem.substr(5)) known = known && (std::islower(static_cast<unsigned char>(c)) || c == '_');
  }
  return known && (rest.empty() || (rest[0] == '.' && detail::dotted_digits(rest.substr(1))));
}

/// Parses `Requires-Dist: nvidia-cudnn-cu12==9.1.0.70; platform_system == "Linux"`.
std::optional<Requirement> parse_requirement(const std::string& spec) {
  size_t i = 0;
  while (i < spec.size() && (std::isalnum(static_cast<unsigned char>(spec[i])) || spec[i] == '-' || spec[i] == '_' ||
                             spec[i] == '.'))
    ++i;
  Requirement r;
  r.name = normalize_distribution_name(spec.substr(0, i));
  if (r.name.empty()) return std::nullopt;
  std::string rest = spec.substr(i);
  const auto semi = rest.find(';');
  if (semi != std::string::npos) rest = rest.substr(0, semi);
  // [extras] (==version) or ==version, as Requires-Dist writes a pin (PEP 508).
  std::string_view v = detail::trim(rest);
  if (!v.empty() && v[0] == '[') {
    const size_t close = v.find(']');
    v = close == std::string_view::npos ? std::string_view() : detail::trim(v.substr(close + 1));
  }
  if (!v.empty() && v[0] == '(') v = detail::trim(v.substr(1));
  if (starts_with(v, "==")) {
    v = detail::trim(v.substr(v.size() > 2 && v[2] == '=' ? 3 : 2));
    size_t end = 0;
    while (end < v.size() && !std::isspace(static_cast<unsigned char>(v[end])) && v[end] != ',' && v[end] != ';' &&
           v[end] != ')')
      ++end;
    r.version = std::string(v.substr(0, end));
  }
  return r;
}

void read_metadata(const std::string& path, Distribution& d) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;  // the body (description) follows the headers
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon), value = trim(line.substr(colon + 1));
    if (key == "Name") d.name = normalize_distribution_name(value);
    else if (key == "Version") d.version = value;
    else if (key == "Requires-Dist")
      if (auto r = parse_requirement(value); r && starts_with(r->name, "nvidia-")) d.requires_nvidia.push_back(*r);
  }
}

void read_record(const std::string& path, const std::string& site, Distribution& d) {
  std::ifstream f(path);
  std::string line;
  std::set<std::string> seen;
  while (std::getline(f, line)) {
    std::string file = line.substr(0, line.find(','));
    if (file.size() >= 2 && file.front() == '"') file = file.substr(1, file.size() - 2);
    if (file.empty() || !cuda_library_file(base_name(file))) continue;
    const std::string abs = file.front() == '/' ? file : site + "/" + file;
    if (seen.insert(abs).second) d.libraries.push_back(abs);
  }
}

void read_torch_version(const std::string& site, PythonEnv& env) {
  std::ifstream f(site + "/torch/version.py");
  if (!f) return;
  std::string line, value;
  while (std::getline(f, line)) {
    if (detail::python_string_assignment(line, "__version__", value)) env.torch_version = value;
    else if (detail::python_string_assignment(line, "cuda", value)) env.torch_cuda = value;
  }
}

/// Site-packages folders of a prefix: lib/python3*/site-packages (conda, venv, pyenv).
std::vector<std::string> prefix_site_packages(const std::string& prefix) {
  std::vector<std::string> out;
  for (const char* pat : {"/lib/python3*/site-packages", "/lib64/python3*/site-packages"})
    for (const auto& p : glob_paths(prefix + pat))
      if (is_dir(p)) out.push_back(p);
  return out;
}

class Finder {
 public:
  explicit Finder(const DiscoveryOptions& o) : o_(o) {}

  std::optional<std::string> var(const std::string& name) const {
    if (o_.getenv) return o_.getenv(name);
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  }

  std::string home() const {
    auto h = var("HOME");
    return h ? strip_slash(*h) : std::string();
  }

  /// Adds the environment at `prefix` (its site-packages found under lib/python3*).
  void add_prefix(const std::string& kind, const std::string& label, const std::string& prefix,
                  const std::string& found_by) {
    if (prefix.empty() || !is_dir(prefix)) return;
    add(kind, label, strip_slash(prefix), prefix_site_packages(prefix), found_by);
  }

  void add(const std::string& kind, std::string label, const std::string& prefix, const std::vector<std::string>& sites,
           const std::string& found_by) {
    std::vector<std::string> fresh;
    for (const auto& s : sites)
      if (const std::string r = real_path(s); seen_.insert(r.empty() ? s : r).second) fresh.push_back(s);
    if (fresh.empty()) return;
    if (!labels_.insert(label).second) label += "#" + std::to_string(out_.size());
    PythonEnv env;
    env.kind = kind;
    env.label = label;
    env.prefix = prefix;
    env.found_by = found_by;
    for (const auto& s : fresh) read_site_packages(s, env);
    out_.push_back(std::move(env));
  }

  /// A conda installation: the base env and envs/*.
  void add_conda_root(const std::string& root, const std::string& found_by) {
    if (!is_dir(root + "/conda-meta")) return;
    add_prefix("conda", "conda:base", root, found_by);
    for (const auto& n : list_dir(root + "/envs"))
      if (is_dir(root + "/envs/" + n + "/conda-meta")) add_prefix("conda", "conda:" + n, root + "/envs/" + n, found_by);
  }

  std::string conda_label(const std::string& prefix) const {
    if (is_dir(prefix + "/envs") && is_dir(prefix + "/conda-meta")) return "conda:base";
    return "conda:" + base_name(prefix);
  }

  std::vector<PythonEnv> run() {
    const std::string h = home();
    // conda: the active env first, then installations and the registry of envs.
    if (auto p = var("CONDA_PREFIX"); p && !p->empty()) add_prefix("conda", conda_label(*p), *p, "CONDA_PREFIX");
    if (auto exe = var("CONDA_EXE"); exe && !exe->empty()) {
      std::string root = *exe;
      for (int i = 0; i < 2; ++i) root = root.substr(0, root.rfind('/'));  // <root>/bin/conda
      add_conda_root(root, "CONDA_EXE");
    }
    if (auto m = var("MAMBA_ROOT_PREFIX"); m && !m->empty()) add_conda_root(*m, "MAMBA_ROOT_PREFIX");
    std::vector<std::string> roots;
    if (o_.conda_roots) {
      roots = *o_.conda_roots;
    } else {
      if (!h.empty())
        for (const char* n : {"miniconda3", "anaconda3", "miniforge3", "mambaforge", "micromamba"}) roots.push_back(h + "/" + n);
      for (const char* r : {"/opt/conda", "/opt/miniconda3", "/opt/anaconda3", "/opt/miniforge3"}) roots.push_back(r);
    }
    for (const auto& r : roots) add_conda_root(r, "conda installation " + r);
    if (!h.empty()) {
      std::ifstream f(h + "/.conda/environments.txt");
      std::string line;
      while (std::getline(f, line)) {
        line = trim(line);
        if (!line.empty() && line[0] != '#') add_prefix("conda", conda_label(line), line, "~/.conda/environments.txt");
      }
    }
    // venv / virtualenv
    if (auto v = var("VIRTUAL_ENV"); v && !v->empty()) add_prefix("venv", "venv:" + strip_slash(*v), *v, "VIRTUAL_ENV");
    std::string workon;
    if (auto w = var("WORKON_HOME"); w && !w->empty()) workon = strip_slash(*w);
    else if (!h.empty()) workon = h + "/.virtualenvs";
    for (const auto& n : list_dir(workon))
      if (is_file(workon + "/" + n + "/pyvenv.cfg") || is_dir(workon + "/" + n + "/bin"))
        add_prefix("venv", "venv:" + workon + "/" + n, workon + "/" + n, "WORKON_HOME");
    // pyenv (its virtualenvs live in versions/<v>/envs/<name>)
    std::string pyenv;
    if (auto p = var("PYENV_ROOT"); p && !p->empty()) pyenv = strip_slash(*p);
    else if (!h.empty()) pyenv = h + "/.pyenv";
    for (const auto& n : list_dir(pyenv + "/versions")) {
      const std::string v = pyenv + "/versions/" + n;
      add_prefix("pyenv", "pyenv:" + n, v, "pyenv");
      for (const auto& e : list_dir(v + "/envs")) add_prefix("pyenv", "pyenv:" + n + "/" + e, v + "/envs/" + e, "pyenv");
    }
    // given on the command line: a prefix or a site-packages folder
    for (const auto& g : o_.extra) {
      const std::string resolved = real_path(g);
      const std::string p = strip_slash(resolved.empty() ? g : resolved);
      if (!prefix_site_packages(p).empty())
        add_prefix("given", "given:" + p, p, "--python-env");
      else if (is_dir(p))
        add("given", "given:" + p, p, {p}, "--python-env");
    }
    // system and user site-packages
    std::vector<std::string> system = o_.system_site_packages
                                          ? *o_.system_site_packages
                                          : std::vector<std::string>{"/usr/lib/python3/dist-packages",
                                                                     "/usr/local/lib/python3*/dist-packages",
                                                                     "/usr/lib/python3*/site-packages",
                                                                     "/usr/local/lib/python3*/site-packages"};
    for (const auto& pat : system)
      for (const auto& s : glob_paths(pat))
        if (is_dir(s)) add("system", "system:" + s, s, {s}, "system site-packages");
    if (!h.empty())
      for (const auto& s : glob_paths(h + "/.local/lib/python3*/site-packages"))
        if (is_dir(s)) add("user", "user:" + s, s, {s}, "user site-packages (~/.local)");
    return std::move(out_);
  }

 private:
  const DiscoveryOptions& o_;
  std::set<std::string> seen_;
  std::set<std::string> labels_;
  std::vector<PythonEnv> out_;
};

}  // namespace

const Distribution* PythonEnv::find(const std::string& name) const {
  for (const auto& d : distributions)
    if (d.name == name) return &d;
  return nullptr;
}

std::string normalize_distribution_name(const std::string& name) {
  std::string out;
  bool sep = false;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      sep = true;
      continue;
    }
    if (sep && !out.empty()) out += '-';
    sep = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

void read_site_packages(const std::string& site, PythonEnv& env) {
  env.site_packages.push_back(site);
  for (const auto& n : list_dir(site)) {
    if (n.size() <= 10 || n.compare(n.size() - 10, 10, ".dist-info") != 0) continue;
    ++env.distributions_scanned;
    Distribution d;
    d.dist_info = site + "/" + n;
    read_metadata(d.dist_info + "/METADATA", d);
    if (d.name.empty() || d.version.empty()) {  // fall back on the folder name: <name>-<version>.dist-info
      const std::string stem = n.substr(0, n.size() - 10);
      const auto dash = stem.find('-');
      if (d.name.empty()) d.name = normalize_distribution_name(stem.substr(0, dash));
      if (d.version.empty() && dash != std::string::npos) d.version = stem.substr(dash + 1);
    }
    if (!gpu_relevant(d.name)) continue;
    read_record(d.dist_info + "/RECORD", site, d);
    env.distributions.push_back(std::move(d));
  }
  std::stable_sort(env.distributions.begin(), env.distributions.end(),
                   [](const Distribution& a, const Distribution& b) { return a.name < b.name; });
  if (env.torch_version.empty()) read_torch_version(site, env);
}

int distribution_cuda_major(const Distribution& d) {
  if (d.name == "torch") {  // local version +cuXYZ: cu124 -> 12, cu118 -> 11, cu92 -> 9
    const size_t at = d.version.find("+cu");
    if (at == std::string::npos) return -1;
    size_t end = at + 3;
    while (end < d.version.size() && std::isdigit(static_cast<unsigned char>(d.version[end]))) ++end;
    const std::string digits = d.version.substr(at + 3, end - at - 3);
    if (digits.size() < 2 || digits.size() > 3) return -1;
    return std::stoi(digits.substr(0, digits.size() - 1));
  }
  // A name token cuNN, cudaNN or cudaNNx: nvidia-cudnn-cu12, jax-cuda12-plugin, cupy-cuda12x.
  size_t start = 0;
  while (start <= d.name.size()) {
    size_t end = d.name.find('-', start);
    if (end == std::string::npos) end = d.name.size();
    std::string_view token(d.name.data() + start, end - start);
    if (starts_with(token, "cu")) {
      token.remove_prefix(starts_with(token, "cuda") ? 4 : 2);
      if (!token.empty() && token.back() == 'x') token.remove_suffix(1);
      if (token.size() == 2 && detail::all_digits(token)) return std::stoi(std::string(token));
    }
    start = end + 1;
  }
  static const std::set<std::string> toolkit_versioned = {"nvidia-cuda-runtime", "nvidia-cuda-nvrtc", "nvidia-cuda-cupti",
                                                          "nvidia-cublas", "nvidia-nvjitlink", "nvidia-cuda-nvcc"};
  if (toolkit_versioned.count(d.name)) {
    const auto dot = d.version.find('.');
    if (dot != std::string::npos && detail::all_digits(std::string_view(d.version).substr(0, dot)))
      return std::stoi(d.version.substr(0, dot));
  }
  return -1;
}

std::vector<PythonEnv> find_python_envs(const DiscoveryOptions& options) { return Finder(options).run(); }

}  // namespace tessera::env
