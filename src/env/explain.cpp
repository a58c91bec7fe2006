// explain(): the table of src/env/explain_table.cpp matched against a pasted message and
// against this machine's checks.
#include "tessera/env/explain.hpp"

#include "tessera/env/report.hpp"

#include <fnmatch.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <sstream>

namespace tessera::env {

namespace {

bool name_matches(const std::string& pattern, const std::string& name) {
  return pattern == name || ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

}  // namespace

std::vector<Explanation> explain(const std::string& text, const std::vector<Check>& checks) {
  std::vector<Explanation> out;
  for (const auto& e : explain_table()) {
    const std::regex re(e.pattern, std::regex::ECMAScript | std::regex::icase);
    if (!std::regex_search(text, re)) continue;
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

std::string format_explanations_json(const std::string& text, const std::vector<Explanation>& found, int indent) {
  using json = nlohmann::ordered_json;
  json j;
  j["schema"] = kJsonSchema;
  j["message"] = text;
  j["recognised"] = !found.empty();
  json xs = json::array();
  for (const auto& x : found) {
    json f = json::array();
    for (const auto& c : x.firing)
      f.push_back({{"name", c.name}, {"status", to_string(c.status)}, {"reason", c.reason},
                   {"fix", c.fix.empty() ? json(nullptr) : json(c.fix)}});
    xs.push_back({{"id", x.entry->id}, {"meaning", x.entry->meaning}, {"source", x.entry->source},
                  {"fix", x.entry->fix}, {"checks", x.entry->checks}, {"firing", f}});
  }
  j["explanations"] = xs;
  return j.dump(indent);
}

}  // namespace tessera::env
