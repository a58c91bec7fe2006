// Internal to src/env: the few string scans the env report needs (file names, metadata
// lines, ldconfig output), written out instead of <regex>, which costs seconds of compile
// time per file and is not needed for fixed formats.
#pragma once
#include <cctype>
#include <string>
#include <string_view>

namespace tessera::env::detail {

inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

inline bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

/// "12", "9.1.0", "13.0.96": digit groups joined by single dots; at least `min_groups`.
inline bool dotted_digits(std::string_view s, int min_groups = 1) {
  int groups = 0;
  while (true) {
    const size_t dot = s.find('.');
    if (!all_digits(s.substr(0, dot))) return false;
    ++groups;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return groups >= min_groups;
}

/// Splits "lib<stem>.so<rest>" into stem and rest (rest starts after ".so"); false otherwise.
inline bool split_shared_object(std::string_view file, std::string_view& stem, std::string_view& rest) {
  if (!starts_with(file, "lib")) return false;
  const size_t so = file.find(".so");
  if (so == std::string_view::npos || so <= 3) return false;
  stem = file.substr(3, so - 3);
  rest = file.substr(so + 3);
  return true;
}

/// The value of `key = 'value'` or `key: Type = "value"` at the start of a Python line, or
/// false when the line does not assign `key` a string literal.
inline bool python_string_assignment(std::string_view line, std::string_view key, std::string& value) {
  if (!starts_with(line, key)) return false;
  std::string_view rest = line.substr(key.size());
  if (rest.empty() || !(rest[0] == ' ' || rest[0] == ':' || rest[0] == '=')) return false;
  const size_t eq = rest.find('=');
  if (eq == std::string_view::npos) return false;
  rest = trim(rest.substr(eq + 1));
  if (rest.size() < 2 || (rest[0] != '\'' && rest[0] != '"')) return false;
  const size_t close = rest.find(rest[0], 1);
  if (close == std::string_view::npos) return false;
  value = std::string(rest.substr(1, close - 1));
  return true;
}

/// The driver release in the first line of /proc/driver/nvidia/version: the first dotted
/// number (major.minor[.patch]) after "Module", as in "NVRM version: NVIDIA UNIX x86_64
/// Kernel Module  570.124.06  Wed Feb 26 ..." or "... Open Kernel Module for x86_64
/// 570.124.06  Release Build ..."; "" when there is none.
inline std::string kernel_module_release_from(std::string_view line) {
  const size_t module = line.find("Module");
  if (module == std::string_view::npos) return "";
  std::string_view rest = line.substr(module + 6);
  while (true) {
    rest = trim(rest);
    if (rest.empty()) return "";
    const size_t end = rest.find_first_of(" \t");
    const std::string_view word = rest.substr(0, end);
    size_t dots = 0;
    for (char c : word) dots += c == '.';
    if (dots <= 2 && dotted_digits(word, 2)) return std::string(word);
    if (end == std::string_view::npos) return "";
    rest.remove_prefix(end);
  }
}

}  // namespace tessera::env::detail
