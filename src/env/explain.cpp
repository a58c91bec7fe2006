// explain(): the table of src/env/explain_table.cpp matched against a pasted message and
// against this machine's checks. (format_explanations_json lives in format.cpp, with the
// other JSON.)
#include "tessera/env/explain.hpp"

#include "tessera/env/report.hpp"

#include <fnmatch.h>
#include <sstream>

namespace tessera::env {

namespace {

bool name_matches(const std::string& pattern, const std::string& name) {
  return pattern == name || ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

/// Any of the entry's patterns occurs in `text` (case-insensitive; FNM_CASEFOLD is glibc's).
bool message_matches(const ExplainEntry& e, const std::string& text) {
  for (const auto& p : e.patterns)
    if (::fnmatch(("*" + p + "*").c_str(), text.c_str(), FNM_CASEFOLD) == 0) return true;
  return false;
}

}  // namespace

std::vector<Explanation> explain(const std::string& text, const std::vector<Check>& checks) {
  std::vector<Explanation> out;
  for (const auto& e : explain_table()) {
    if (!message_matches(e, text)) continue;
    Explanation x;
    x.entry = &e;
    for (const auto& c : checks) {
      if (c.status == Status::OK) continue;
      for (const auto& p : e.checks)
        if (name_matches(p, c.name)) {
          x.firing.push_back(c);
          break;
        }
    }
    out.push_back(std::move(x));
  }
  return out;
}

std::string format_explanations(const std::string& text, const std::vector<Explanation>& found) {
  std::ostringstream os;
  if (found.empty()) {
    os << "tessera-env does not know this message: \"" << text << "\"\n"
       << "(tessera-env --explain-list shows the messages it knows; tessera-env alone checks the whole stack)\n";
    return os.str();
  }
  for (const auto& x : found) {
    const ExplainEntry& e = *x.entry;
    os << "Recognised: " << e.id << "\n  " << e.meaning << "\n  (public report: " << e.source << ")\n";
    if (x.firing.empty()) {
      os << "  On this machine no check explains it now (checked:";
      for (const auto& c : e.checks) os << " " << c;
      os << ").\n  Usual fix: " << e.fix << "\n";
    } else {
      os << "  On this machine:\n";
      for (const auto& c : x.firing) {
        os << "    " << to_string(c.status) << " " << c.name << ": " << c.reason << "\n";
        if (!c.fix.empty()) os << "      fix: " << c.fix << "\n";
      }
    }
  }
  return os.str();
}

}  // namespace tessera::env
