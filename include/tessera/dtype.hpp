// Element types of tensors, their sizes and names, and PyTorch's type promotion.
#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace tessera {

/// Element type of a tensor. The order of the enumerators is the promotion order
/// (bool < uint8 < int32 < int64 < float32 < float64), as PyTorch's
/// torch.promote_types defines it for these types. Float16/BFloat16 may be added
/// later after Float64 with their own promotion rules.
enum class DType : int8_t { Bool = 0, UInt8, Int32, Int64, Float32, Float64 };

constexpr DType kBool = DType::Bool;
constexpr DType kUInt8 = DType::UInt8;
constexpr DType kInt32 = DType::Int32;
constexpr DType kInt64 = DType::Int64;
constexpr DType kFloat32 = DType::Float32;
constexpr DType kFloat64 = DType::Float64;

/// Bytes per element.
constexpr std::size_t itemsize(DType t) {
  switch (t) {
    case DType::Bool: return 1;
    case DType::UInt8: return 1;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
    case DType::Float32: return 4;
    case DType::Float64: return 8;
  }
  return 0;
}

/// PyTorch's name: "float32", "int64", "bool", ...
constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::UInt8: return "uint8";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "?";
}

constexpr bool is_floating_point(DType t) { return t == DType::Float32 || t == DType::Float64; }
constexpr bool is_integral(DType t, bool include_bool = false) {
  return t == DType::UInt8 || t == DType::Int32 || t == DType::Int64 || (include_bool && t == DType::Bool);
}

/// Whether v is a finite whole number that an integer dtype (uint8, int32, int64) holds
/// exactly, so casting it is defined. Always true for float and bool dtypes.
constexpr bool fits_integer_dtype(double v, DType t) {
  if (!is_integral(t)) return true;
  const double lo = t == DType::UInt8 ? 0.0 : t == DType::Int32 ? -2147483648.0 : -9223372036854775808.0;
  const double hi = t == DType::UInt8 ? 256.0 : t == DType::Int32 ? 2147483648.0 : 9223372036854775808.0;
  return v >= lo && v < hi && v == static_cast<double>(static_cast<long long>(v));
}

/// Result dtype of a binary op between tensors of dtypes a and b (torch.promote_types):
/// int + float -> float, float32 + float64 -> float64, bool + uint8 -> uint8.
constexpr DType promote_types(DType a, DType b) { return a > b ? a : b; }

inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

/// The C++ type of each dtype and back.
template <typename T> struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::UInt8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <typename T> constexpr DType dtype_of_v = dtype_of<T>::value;

}  // namespace tessera
