// tessera-env: prints whether this machine's GPU stack (NVIDIA driver, CUDA runtime,
// cuBLAS, cuDNN, GPUs) is consistent with this build of Tessera, and why not.
//
//   tessera-env                  readable report ending with a summary line
//   tessera-env --json           the same as JSON
//   tessera-env --require-cuda   "no usable GPU" becomes a FAIL
//   tessera-env --python-env P   also judge the Python environment at P
//   tessera-env --explain "TEXT" which check explains a pasted error message here, with the fix
//   tessera-env --explain-list   the messages --explain knows
//   --no-python-envs, --no-loader-scan, --no-nvml   skip a machine-wide part
//
// Exit status: 0 usable as configured (CPU only counts, unless --require-cuda),
// 1 when a FAIL check stands, 2 on tessera-env's own errors (bad arguments, ...).
// With --explain: 0 the message is in the table (explained), 3 it is not.
#include "tessera/env/report.hpp"

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app{"tessera-env: is this machine's GPU stack (driver, CUDA runtime, cuBLAS, cuDNN, GPUs) consistent "
               "with this build of Tessera, and if not, why not.\n"
               "Exit status: 0 usable as configured, 1 a FAIL check stands, 2 tessera-env's own error; with --explain, "
               "0 a known message, 3 an unknown one.",
               "tessera-env"};
  bool as_json = false;
  bool require_cuda = false;
  std::vector<std::string> python_envs;
  std::string explain_text;
  bool explain_list = false;
  bool no_python_envs = false, no_loader = false, no_nvml = false;
  app.add_flag("--json", as_json, "print the report as JSON");
  app.add_flag("--require-cuda", require_cuda, "treat 'no usable GPU' (CPU only) as a failure");
  app.add_option("--python-env", python_envs,
                 "also check this Python environment (a prefix such as /opt/torch/.venv, or a site-packages folder); "
                 "repeatable")
      ->check(CLI::ExistingDirectory);
  app.add_option("--explain", explain_text,
                 "an error message from Tessera, PyTorch, TensorFlow or a CUDA program: which check explains it on "
                 "this machine, and the fix (exit 0 known, 3 unknown)");
  app.add_flag("--explain-list", explain_list, "list the error messages --explain knows, with their public sources");
  app.add_flag("--no-python-envs", no_python_envs, "do not look for Python environments (--python-env still adds one)");
  app.add_flag("--no-loader-scan", no_loader, "do not list the copies of the CUDA libraries on the loader's path");
  app.add_flag("--no-nvml", no_nvml, "do not ask NVML about the GPUs' health");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help (rc 0) or the error
    return rc == 0 ? 0 : 2;
  }
  try {
    if (explain_list) {
      for (const auto& e : tessera::env::explain_table())
        std::cout << e.id << "\n  e.g. " << e.example << "\n  source: " << e.source << "\n";
      return 0;
    }
    tessera::env::CollectOptions collect_options;
    collect_options.discovery.extra = python_envs;
    collect_options.loader = !no_loader;
    collect_options.nvml = !no_nvml;
    if (no_python_envs) {
      // Only the environments given with --python-env.
      collect_options.python_envs = !python_envs.empty();
      collect_options.discovery.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
      collect_options.discovery.system_site_packages = std::vector<std::string>{};
      collect_options.discovery.conda_roots = std::vector<std::string>{};
    }
    const tessera::env::Report report = tessera::env::collect(collect_options);
    tessera::env::CheckOptions options;
    options.require_cuda = require_cuda;
    const auto checks = tessera::env::check(report, options);
    if (app.count("--explain")) {
      const auto found = tessera::env::explain(explain_text, checks);
      std::cout << (as_json ? tessera::env::format_explanations_json(explain_text, found) + "\n"
                            : tessera::env::format_explanations(explain_text, found));
      return found.empty() ? 3 : 0;
    }
    if (as_json)
      std::cout << tessera::env::format_json(report, checks) << "\n";
    else
      std::cout << tessera::env::format_text(report, checks);
    return tessera::env::worst(checks) == tessera::env::Status::FAIL ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "tessera-env: error: " << e.what() << "\n";
    return 2;
  }
}
