// Python environments beside Tessera (conda, venv, pyenv, the system's site-packages) and
// the GPU packages installed in them, read from their *.dist-info metadata without running
// Python. Part of the env report (tessera/env/report.hpp).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tessera::env {

/// A `name==version` requirement read from a distribution's `Requires-Dist:` lines.
struct Requirement {
  std::string name;     ///< normalised as Distribution::name
  std::string version;  ///< the pinned version ("9.1.0.70"), "" when not pinned with ==
};

/// One installed distribution, from `<site-packages>/<name>-<version>.dist-info/`.
struct Distribution {
  std::string name;       ///< METADATA `Name:`, normalised as PEP 503 does: lower case, runs of "-_." as "-"
  std::string version;    ///< METADATA `Version:`, e.g. "2.7.0+cu128"
  std::string dist_info;  ///< the .dist-info folder
  std::vector<Requirement> requires_nvidia;  ///< its Requires-Dist on nvidia-* packages (any marker)
  /// The CUDA libraries it installed (absolute paths of libcudart/libcublas/libcudnn*/libnccl
  /// files listed in its RECORD).
  std::vector<std::string> libraries;
};

/// One Python environment and the GPU-relevant distributions in it (torch, jax, jaxlib,
/// jax-cuda*, cupy*, tensorflow*, onnxruntime-gpu and every nvidia-* wheel).
struct PythonEnv {
  std::string kind;      ///< "conda", "venv", "pyenv", "system", "user", "given"
  std::string label;     ///< unique and stable: "conda:base", "venv:/opt/torch/.venv", "system:/usr/lib/python3/dist-packages"
  std::string prefix;    ///< the environment's prefix (the site-packages folder itself for "system"/"user")
  std::string found_by;  ///< how it was found: "CONDA_PREFIX", "~/.conda/environments.txt", "--python-env", ...
  std::vector<std::string> site_packages;
  std::vector<Distribution> distributions;  ///< GPU-relevant ones only, sorted by name
  int distributions_scanned = 0;            ///< all *.dist-info folders seen
  std::string torch_version;  ///< torch/version.py `__version__`, "" without torch
  std::string torch_cuda;     ///< torch/version.py `cuda` ("12.8"), "" for a CPU build or without torch

  /// The distribution named `name` (normalised), or nullptr.
  const Distribution* find(const std::string& name) const;
};

/// Where discovery looks; every default can be replaced (the tests point it at fixture trees).
struct DiscoveryOptions {
  /// Environment variables (HOME, CONDA_PREFIX, CONDA_EXE, MAMBA_ROOT_PREFIX, VIRTUAL_ENV,
  /// WORKON_HOME, PYENV_ROOT). Default: the process environment.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  /// Extra environments (`tessera-env --python-env PATH`): a prefix or a site-packages folder.
  std::vector<std::string> extra;
  /// System site-packages folders (glob patterns allowed). Default: /usr/lib/python3/dist-packages,
  /// /usr/local/lib/python3*/dist-packages, /usr/lib/python3*/site-packages, /usr/local/lib/python3*/site-packages.
  std::optional<std::vector<std::string>> system_site_packages;
  /// Conda installations tried besides CONDA_EXE and MAMBA_ROOT_PREFIX. Default: ~/miniconda3,
  /// ~/anaconda3, ~/miniforge3, ~/mambaforge, ~/micromamba, /opt/conda, /opt/miniconda3,
  /// /opt/anaconda3, /opt/miniforge3.
  std::optional<std::vector<std::string>> conda_roots;
};

/// Finds Python environments without running Python: conda installations and their envs/
/// folders, ~/.conda/environments.txt, CONDA_PREFIX, VIRTUAL_ENV, virtualenvwrapper's
/// WORKON_HOME (default ~/.virtualenvs), pyenv's versions (PYENV_ROOT, default ~/.pyenv),
/// `options.extra`, the system and user (~/.local/lib/python3*/site-packages) site-packages.
/// Each is listed once (by real path of its site-packages), in that order. Never throws;
/// unreadable folders are skipped.
std::vector<PythonEnv> find_python_envs(const DiscoveryOptions& options = {});

/// Reads one site-packages folder into `env`: the GPU-relevant *.dist-info (METADATA, RECORD)
/// and torch/version.py.
void read_site_packages(const std::string& site_packages, PythonEnv& env);

/// PEP 503 normalisation: "Nvidia_CUDNN.cu12" -> "nvidia-cudnn-cu12".
std::string normalize_distribution_name(const std::string& name);

/// The CUDA major version a GPU distribution is built for, or -1 when it cannot tell:
/// `-cuNN` / `-cudaNN` / `-cudaNNx` / `cuNN` suffixes of the name (nvidia-cudnn-cu12,
/// jax-cuda12-plugin, cupy-cuda12x); for the unsuffixed CUDA 13 toolkit wheels and any
/// nvidia-cuda-runtime/-cuda-nvrtc/-cuda-cupti/-cublas/-nvjitlink/-cuda-nvcc wheel, the major
/// of its version (which is the toolkit's); torch from its `+cuXYZ` local version.
int distribution_cuda_major(const Distribution& d);

}  // namespace tessera::env
