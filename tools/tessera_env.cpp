// tessera-env: prints whether this machine's GPU stack (NVIDIA driver, CUDA runtime,
// cuBLAS, cuDNN, GPUs) is consistent with this build of Tessera, and why not.
//
//   tessera-env                  readable report ending with a summary line
//   tessera-env --json           the same as JSON
//   tessera-env --require-cuda   "no usable GPU" becomes a FAIL
//   tessera-env --python-env P   also judge the Python environment at P
//
// Exit status: 0 usable as configured (CPU only counts, unless --require-cuda),
// 1 when a FAIL check stands, 2 on tessera-env's own errors (bad arguments, ...).
#include "tessera/env/report.hpp"

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app{"tessera-env: is this machine's GPU stack (driver, CUDA runtime, cuBLAS, cuDNN, GPUs) consistent "
               "with this build of Tessera, and if not, why not.\n"
               "Exit status: 0 usable as configured, 1 a FAIL check stands, 2 tessera-env's own error.",
               "tessera-env"};
  bool as_json = false;
  bool require_cuda = false;
  std::vector<std::string> python_envs;
  app.add_flag("--json", as_json, "print the report as JSON");
  app.add_flag("--require-cuda", require_cuda, "treat 'no usable GPU' (CPU only) as a failure");
  app.add_option("--python-env", python_envs,
                 "also check this Python environment (a prefix such as /opt/torch/.venv, or a site-packages folder); "
                 "repeatable")
      ->check(CLI::ExistingDirectory);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help (rc 0) or the error
    return rc == 0 ? 0 : 2;
  }
  try {
    tessera::env::CollectOptions collect_options;
    collect_options.discovery.extra = python_envs;
    const tessera::env::Report report = tessera::env::collect(collect_options);
    tessera::env::CheckOptions options;
    options.require_cuda = require_cuda;
    const auto checks = tessera::env::check(report, options);
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
