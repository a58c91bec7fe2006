// Internal to src/env: the small file-system queries the machine scans share (stat, realpath,
// path pieces, folder listings), without <filesystem> exceptions.
#pragma once
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

namespace tessera::env::fs_util {

inline bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// A regular file (after following links).
inline bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

/// The canonical path, or "" when p does not resolve.
inline std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

inline std::string strip_slash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

/// The folder part ("." without a slash, "/" for a top-level entry).
inline std::string dir_of(const std::string& p) {
  const auto s = p.rfind('/');
  return s == std::string::npos ? "." : (s == 0 ? "/" : p.substr(0, s));
}

/// The last component (trailing slashes ignored).
inline std::string base_name(const std::string& path) {
  const std::string p = strip_slash(path);
  const auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

/// Entries of a folder (names only, no "." and ".."), sorted; empty when it cannot be read.
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace tessera::env::fs_util
