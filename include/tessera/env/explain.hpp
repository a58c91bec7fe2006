// `tessera-env --explain "<error text>"`: which check explains a pasted error message on
// this machine, with the fix. The messages, their meaning and the checks that explain them
// are one table (src/env/explain_table.cpp), each entry with the public report it came from.
#pragma once
#include <string>
#include <vector>

namespace tessera::env {

struct Check;

/// One known error message.
struct ExplainEntry {
  std::string id;       ///< stable: "insufficient-driver", "unsupported-ptx", ...
  /// fnmatch(3) patterns (`*`, `?`, `[...]`), matched case-insensitively anywhere in the
  /// text; any one matching recognises the message.
  std::vector<std::string> patterns;
  std::string example;  ///< the message as users paste it (the tests match it)
  std::string meaning;  ///< what it means, in one or two sentences
  /// Checks that explain it when they are not OK: exact names or fnmatch(3) patterns
  /// ("python.*.driver", "nvml.*.memory").
  std::vector<std::string> checks;
  std::string fix;      ///< the usual fix, for when no check on this machine fires
  std::string source;   ///< the public report it came from (an issue thread, a maintainer's answer)
};

/// The table, in the order entries are tried.
const std::vector<ExplainEntry>& explain_table();

/// One recognised message and the checks that explain it here.
struct Explanation {
  const ExplainEntry* entry = nullptr;
  std::vector<Check> firing;  ///< the entry's checks whose status is WARN or FAIL, in check order
};

/// Every table entry whose pattern occurs in `text`, with the checks of `checks` that
/// explain it. Empty when the message is not in the table.
std::vector<Explanation> explain(const std::string& text, const std::vector<Check>& checks);

/// The explanations for a person: what each message means, the firing checks with their
/// fixes, or the usual cause and fix when none fires; for an unknown message, a line that
/// says so.
std::string format_explanations(const std::string& text, const std::vector<Explanation>& found);

/// The same as JSON: {"schema", "message", "recognised", "explanations": [{"id", "meaning",
/// "source", "fix", "checks", "firing": [{"name", "status", "reason", "fix"}]}]}.
std::string format_explanations_json(const std::string& text, const std::vector<Explanation>& found, int indent = 2);

}  // namespace tessera::env
