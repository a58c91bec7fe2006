#include "tessera/dtype.hpp"

#include "tessera/error.hpp"

namespace tessera {

std::string dtype_set_names(DTypeSet set) {
  std::string s;
  for (int i = 0; i < kNumDTypes; ++i) {
    if (!(set & (DTypeSet(1) << i))) continue;
    if (!s.empty()) s += ", ";
    s += dtype_name(DType(i));
  }
  return s;
}

void throw_dtype_not_in_set(const char* op, DType got, DTypeSet set) {
  throw DTypeError(std::string(op) + ": expected " + (set == kStandardFloatingTypes ? "float32 or float64" : "one of " + dtype_set_names(set)) +
                   ", got " + dtype_name(got));
}

}  // namespace tessera
