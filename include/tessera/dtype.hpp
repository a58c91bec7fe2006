// Element types of tensors: one table (TESSERA_FORALL_DTYPES) is the only source of dtype
// facts; the enum, sizes, names, C++ types, compute types, predicates and the dispatch sets
// are generated from it. Type promotion is PyTorch's table (torch.promote_types).
#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <type_traits>

#include "tessera/half.hpp"

namespace tessera {

/// The dtype table. One row per dtype:
///   X(Enum, C++ type, name, compute type, kind)
/// - name: PyTorch's ("float32", "bfloat16", ...);
/// - compute type: the type one element is computed in (PyTorch's opmath_type): float for
///   float16 and bfloat16, the type itself otherwise;
/// - kind: Bool, Integral or Floating.
/// Enumerator values are part of no file format (files store names), but are kept stable.
#define TESSERA_FORALL_DTYPES(X)                             \
  X(Bool, bool, "bool", bool, Bool)                          \
  X(UInt8, uint8_t, "uint8", uint8_t, Integral)              \
  X(Int32, int32_t, "int32", int32_t, Integral)              \
  X(Int64, int64_t, "int64", int64_t, Integral)              \
  X(Float32, float, "float32", float, Floating)              \
  X(Float64, double, "float64", double, Floating)            \
  X(Float16, ::tessera::Half, "float16", float, Floating)    \
  X(BFloat16, ::tessera::BFloat16, "bfloat16", float, Floating)

/// Element type of a tensor.
enum class DType : int8_t {
#define TESSERA_DTYPE_ENUM(E, T, N, C, K) E,
  TESSERA_FORALL_DTYPES(TESSERA_DTYPE_ENUM)
#undef TESSERA_DTYPE_ENUM
};
constexpr int kNumDTypes = 0
#define TESSERA_DTYPE_COUNT(E, T, N, C, K) +1
    TESSERA_FORALL_DTYPES(TESSERA_DTYPE_COUNT)
#undef TESSERA_DTYPE_COUNT
    ;

constexpr DType kBool = DType::Bool;
constexpr DType kUInt8 = DType::UInt8;
constexpr DType kInt32 = DType::Int32;
constexpr DType kInt64 = DType::Int64;
constexpr DType kFloat32 = DType::Float32;
constexpr DType kFloat64 = DType::Float64;
constexpr DType kFloat16 = DType::Float16;
constexpr DType kHalf = DType::Float16;
constexpr DType kBFloat16 = DType::BFloat16;
/// libtorch's short spellings (torch::kFloat, torch::kLong, ...).
constexpr DType kFloat = DType::Float32;
constexpr DType kDouble = DType::Float64;
constexpr DType kLong = DType::Int64;
constexpr DType kInt = DType::Int32;
constexpr DType kByte = DType::UInt8;

/// Bytes per element.
constexpr std::size_t itemsize(DType t) {
  switch (t) {
#define TESSERA_DTYPE_SIZE(E, T, N, C, K) \
  case DType::E: return sizeof(T);
    TESSERA_FORALL_DTYPES(TESSERA_DTYPE_SIZE)
#undef TESSERA_DTYPE_SIZE
  }
  return 0;
}

/// PyTorch's name: "float32", "bfloat16", "int64", "bool", ...
constexpr const char* dtype_name(DType t) {
  switch (t) {
#define TESSERA_DTYPE_NAME(E, T, N, C, K) \
  case DType::E: return N;
    TESSERA_FORALL_DTYPES(TESSERA_DTYPE_NAME)
#undef TESSERA_DTYPE_NAME
  }
  return "?";
}

enum class DTypeKind : int8_t { Bool, Integral, Floating };
constexpr DTypeKind dtype_kind(DType t) {
  switch (t) {
#define TESSERA_DTYPE_KIND(E, T, N, C, K) \
  case DType::E: return DTypeKind::K;
    TESSERA_FORALL_DTYPES(TESSERA_DTYPE_KIND)
#undef TESSERA_DTYPE_KIND
  }
  return DTypeKind::Bool;
}

/// float16, bfloat16, float32, float64.
constexpr bool is_floating_point(DType t) { return dtype_kind(t) == DTypeKind::Floating; }
/// float16 and bfloat16: two-byte floats computed in float32 (see TESSERA_FORALL_DTYPES).
constexpr bool is_reduced_floating_point(DType t) { return t == DType::Float16 || t == DType::BFloat16; }
constexpr bool is_integral(DType t, bool include_bool = false) {
  return dtype_kind(t) == DTypeKind::Integral || (include_bool && t == DType::Bool);
}

/// Whether v is a finite whole number that an integer dtype (uint8, int32, int64) holds
/// exactly, so casting it is defined. Always true for float and bool dtypes.
constexpr bool fits_integer_dtype(double v, DType t) {
  if (!is_integral(t)) return true;
  const double lo = t == DType::UInt8 ? 0.0 : t == DType::Int32 ? -2147483648.0 : -9223372036854775808.0;
  const double hi = t == DType::UInt8 ? 256.0 : t == DType::Int32 ? 2147483648.0 : 9223372036854775808.0;
  return v >= lo && v < hi && v == static_cast<double>(static_cast<long long>(v));
}

/// Result dtype of a binary op between tensors of dtypes a and b: PyTorch's table
/// (c10/core/ScalarType.cpp, promoteTypes) restricted to Tessera's dtypes. bool < integers
/// (uint8 < int32 < int64) < floats; any integer with a float gives the float; float16 with
/// bfloat16 gives float32 (neither holds the other); a two-byte float with float32 gives
/// float32; anything with float64 gives float64. Unit-tested against PyTorch's table.
constexpr DType promote_types(DType a, DType b) {
  if (a == b) return a;
  const bool fa = is_floating_point(a), fb = is_floating_point(b);
  if (fa != fb) return fa ? a : b;  // one float: it wins over bool and integers
  if (!fa) return int(a) > int(b) ? a : b;  // bool < uint8 < int32 < int64 (enum order)
  if (a == DType::Float64 || b == DType::Float64) return DType::Float64;
  return DType::Float32;  // float16 + bfloat16, or a two-byte float with float32
}

/// Sets of dtypes for dispatch (bit i = DType i): dispatch<kFloatingTypes>(...).
using DTypeSet = uint32_t;
constexpr DTypeSet dtype_bit(DType t) { return DTypeSet(1) << int(t); }
constexpr DTypeSet kBoolType = dtype_bit(DType::Bool);
constexpr DTypeSet kIntegralTypes = dtype_bit(DType::UInt8) | dtype_bit(DType::Int32) | dtype_bit(DType::Int64);
constexpr DTypeSet kStandardFloatingTypes = dtype_bit(DType::Float32) | dtype_bit(DType::Float64);
constexpr DTypeSet kReducedFloatingTypes = dtype_bit(DType::Float16) | dtype_bit(DType::BFloat16);
constexpr DTypeSet kFloatingTypes = kStandardFloatingTypes | kReducedFloatingTypes;
constexpr DTypeSet kAllTypes = kBoolType | kIntegralTypes | kFloatingTypes;
constexpr bool in_set(DType t, DTypeSet s) { return (s & dtype_bit(t)) != 0; }

inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

/// The C++ type of each dtype (dtype_of<T>) and back (dtype_type_t<DType>), and the type
/// one element is computed in (compute_type_t<T>: float for Half and BFloat16).
template <typename T> struct dtype_of;
template <DType D> struct dtype_type;
template <typename T> struct compute_type { using type = T; };
#define TESSERA_DTYPE_TRAITS(E, T, N, C, K)                                        \
  template <> struct dtype_of<T> { static constexpr DType value = DType::E; };     \
  template <> struct dtype_type<DType::E> { using type = T; };
TESSERA_FORALL_DTYPES(TESSERA_DTYPE_TRAITS)
#undef TESSERA_DTYPE_TRAITS
template <> struct compute_type<Half> { using type = float; };
template <> struct compute_type<BFloat16> { using type = float; };
template <typename T> constexpr DType dtype_of_v = dtype_of<T>::value;
template <DType D> using dtype_type_t = typename dtype_type<D>::type;
template <typename T> using compute_type_t = typename compute_type<T>::type;

/// Whether T is float, double, Half or BFloat16 (std::is_floating_point_v is false for the
/// two-byte types).
template <typename T>
constexpr bool is_floating_type_v = std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <typename T>
constexpr bool is_reduced_type_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

/// Passed to dispatch's function: TypeTag<T>::type is the C++ type of the dtype.
template <typename T>
struct TypeTag {
  using type = T;
};

/// Names of a dtype set for error messages: "float32, float64".
std::string dtype_set_names(DTypeSet set);
/// Throws DTypeError "<op>: expected one of <set>, got <dtype>" (defined in src/).
[[noreturn]] void throw_dtype_not_in_set(const char* op, DType got, DTypeSet set);

/// Calls fn(TypeTag<T>{}) with T the C++ type of dtype, for dtypes in Set; only those are
/// instantiated. Any other dtype throws DTypeError naming op, the dtype and the set. Both
/// backends use this one helper (host code and CUDA host code).
template <DTypeSet Set, typename Fn>
decltype(auto) dispatch(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
#define TESSERA_DTYPE_CASE(E, T, N, C, K)                                              \
  case DType::E:                                                                        \
    if constexpr ((Set & dtype_bit(DType::E)) != 0) return fn(TypeTag<T>{});            \
    break;
    TESSERA_FORALL_DTYPES(TESSERA_DTYPE_CASE)
#undef TESSERA_DTYPE_CASE
  }
  throw_dtype_not_in_set(op, dtype, Set);
}

}  // namespace tessera
