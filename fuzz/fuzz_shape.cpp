// libFuzzer target: shape, broadcast and view arithmetic.
//
// The input draws a small tensor (values 0, 1, 2, ... from arange, so every element tells
// where it came from) and then a sequence of ops with arguments that may be good, bad or
// near int64 overflow: view, reshape, permute, transpose, narrow, slice (with step),
// select, squeeze, unsqueeze, expand, flatten, broadcasting add, contiguous, sum over
// dims, cat. Next to the tensor the harness keeps a reference: the logical shape and the
// row-major values, computed by plain index arithmetic. After every op:
//   - arguments the reference calls invalid must throw a tessera::Error; valid ones must
//     succeed (view may refuse a non-contiguous input, which PyTorch does too);
//   - the result's shape, numel and strides must agree with the reference, every element
//     it can address must lie inside its storage, is_contiguous() must be right, and every
//     element must read the reference value.
// Any other exception, a mismatch, or a sanitizer report is a crash.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "tessera/ops.hpp"
#include "tessera/tensor.hpp"

using tessera::DType;
using tessera::Shape;
using tessera::Tensor;

namespace {

constexpr int64_t kMaxNumel = 4096;  // larger results are checked for metadata only
constexpr int kMaxOps = 24;
constexpr int64_t I64MAX = std::numeric_limits<int64_t>::max();
constexpr int64_t I64MIN = std::numeric_limits<int64_t>::min();

[[noreturn]] void fail(const std::string& what) { fuzz::fail("fuzz_shape", what); }

std::string str(const Shape& s) { return tessera::shape_str(s); }

// Product of sizes; false when any size is negative or the product of max(size, 1)
// overflows int64 (the library's rule: such shapes are rejected with an Error).
bool checked_numel(const Shape& s, int64_t* out) {
  int64_t p = 1, n = 1;
  for (int64_t v : s) {
    if (v < 0) return false;
    if (__builtin_mul_overflow(p, std::max<int64_t>(v, 1), &p)) return false;
    n = v == 0 ? 0 : n * v;
  }
  *out = p == 0 ? 0 : n;
  for (int64_t v : s)
    if (v == 0) *out = 0;
  return true;
}

int64_t numel_of(const Shape& s) {
  int64_t n = 0;
  if (!checked_numel(s, &n)) fail("reference shape " + str(s) + " is invalid");
  return n;
}

// The reference: logical shape and row-major values.
struct Ref {
  Shape shape;
  std::vector<double> v;
  int64_t numel() const { return numel_of(shape); }
};

Shape row_major_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

// Calls f(linear, index) for every element of shape in row-major order.
template <typename F>
void for_each_index(const Shape& shape, F f) {
  int64_t n = numel_of(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t lin = 0; lin < n; ++lin) {
    f(lin, idx);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Reference value at a multi-index broadcast from `from` (right-aligned) into `to`.
double broadcast_read(const Ref& r, const std::vector<int64_t>& idx_to) {
  size_t lead = idx_to.size() - r.shape.size();
  Shape st = row_major_strides(r.shape);
  int64_t lin = 0;
  for (size_t d = 0; d < r.shape.size(); ++d) lin += (r.shape[d] == 1 ? 0 : idx_to[lead + d]) * st[d];
  return r.v[size_t(lin)];
}

double read_elem(const Tensor& t, int64_t elem) {
  const char* base = static_cast<const char*>(t.storage()->data());
  switch (t.dtype()) {
    case DType::Float32: return double(reinterpret_cast<const float*>(base)[elem]);
    case DType::Float64: return reinterpret_cast<const double*>(base)[elem];
    case DType::Int32: return double(reinterpret_cast<const int32_t*>(base)[elem]);
    case DType::Int64: return double(reinterpret_cast<const int64_t*>(base)[elem]);
    case DType::UInt8: return double(reinterpret_cast<const uint8_t*>(base)[elem]);
    case DType::Bool: return reinterpret_cast<const bool*>(base)[elem] ? 1.0 : 0.0;
  }
  fail("unknown dtype");
}

bool close(double a, double b, DType dt) {
  if (dt == DType::Float32) return std::fabs(a - b) <= 1e-5 * std::max(1.0, std::fabs(b));
  return a == b;
}

bool expected_contiguous(const Shape& shape, const Shape& strides) {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 0) return true;
    if (shape[d] != 1 && strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

// Checks t against the reference; values only when the reference holds them.
// Values compare exactly, except for float32 data (here or before a cast): relative 1e-5.
void verify(const Tensor& t, const Ref& r, DType dt, const char* op, DType value_dt) {
  auto where = [&] {
    return std::string(op) + ": result shape " + str(t.shape()) + " strides " + str(t.strides()) + " offset " +
           std::to_string(t.storage_offset()) + ", reference shape " + str(r.shape);
  };
  if (!t.defined()) fail(std::string(op) + ": undefined result");
  if (t.dtype() != dt) fail(where() + ": dtype " + tessera::dtype_name(t.dtype()) + ", expected " + tessera::dtype_name(dt));
  if (t.shape() != r.shape) fail(where() + ": shape differs");
  if (t.strides().size() != t.shape().size()) fail(where() + ": strides have the wrong rank");
  if (t.dim() != int64_t(r.shape.size())) fail(where() + ": dim() differs");
  const int64_t n = r.numel();
  if (t.numel() != n) fail(where() + ": numel " + std::to_string(t.numel()) + ", expected " + std::to_string(n));
  if (t.storage_offset() < 0) fail(where() + ": negative storage offset");
  if (t.is_contiguous() != expected_contiguous(t.shape(), t.strides()))
    fail(where() + ": is_contiguous() is wrong");
  if (n == 0) return;
  // Every addressable element lies inside the storage.
  __int128 lo = t.storage_offset(), hi = t.storage_offset();
  for (size_t d = 0; d < t.shape().size(); ++d) {
    __int128 span = __int128(t.shape()[d] - 1) * t.strides()[d];
    if (span > 0) hi += span; else lo += span;
  }
  const __int128 cap = __int128(t.storage()->nbytes() / t.itemsize());
  if (lo < 0 || hi >= cap) fail(where() + ": addresses elements outside its storage of " + std::to_string(int64_t(cap)));
  if (r.v.empty()) return;  // too large to hold values: metadata only
  for_each_index(r.shape, [&](int64_t lin, const std::vector<int64_t>& idx) {
    int64_t e = t.storage_offset();
    for (size_t d = 0; d < idx.size(); ++d) e += idx[d] * t.strides()[d];
    double got = read_elem(t, e), want = r.v[size_t(lin)];
    if (!close(got, want, value_dt))
      fail(where() + ": element " + std::to_string(lin) + " reads " + std::to_string(got) + ", expected " +
           std::to_string(want));
  });
}

void verify(const Tensor& t, const Ref& r, DType dt, const char* op) { verify(t, r, dt, op, dt); }

// Runs f; `expect` says what the reference predicts: 1 must succeed, 0 must throw an
// Error, -1 either. Returns whether it succeeded. Non-Error exceptions propagate (a crash).
enum Expect { kFails = 0, kSucceeds = 1, kEither = -1 };
template <typename F>
bool attempt(const char* op, int expect, const std::string& args, F f) {
  // FUZZ_SHAPE_TRACE=1 prints every call, to turn a crash input into a unit test.
  static const bool trace = std::getenv("FUZZ_SHAPE_TRACE") != nullptr;
  if (trace) std::fprintf(stderr, "fuzz_shape: %s%s expected to %s\n", op, args.c_str(),
                          expect == kSucceeds ? "succeed" : expect == kFails ? "throw" : "succeed or throw");
  try {
    f();
  } catch (const tessera::Error& e) {
    if (expect == kSucceeds) fail(std::string(op) + args + " threw for valid arguments: " + e.what());
    return false;
  }
  if (expect == kFails) fail(std::string(op) + args + " succeeded for invalid arguments");
  return true;
}

// Integers: mostly small, sometimes extreme.
int64_t draw(FuzzedDataProvider& in, int64_t lo, int64_t hi) {
  static const int64_t extremes[] = {I64MIN, I64MIN + 1, -(int64_t(1) << 62), -(int64_t(1) << 32), -1, 0,
                                     int64_t(1) << 31, int64_t(1) << 32, int64_t(1) << 62, I64MAX - 1, I64MAX,
                                     (int64_t(1) << 62) + 1, int64_t(3037000500)};  // ~sqrt(2^63)
  uint8_t sel = in.ConsumeIntegral<uint8_t>();
  if (sel >= 240) return extremes[sel % (sizeof extremes / sizeof extremes[0])];
  return in.ConsumeIntegralInRange<int64_t>(lo, hi);
}

std::string args_str(std::initializer_list<int64_t> a) {
  std::string s = "(";
  bool first = true;
  for (int64_t v : a) {
    s += (first ? "" : ", ") + std::to_string(v);
    first = false;
  }
  return s + ")";
}

// wrap_dim's rule: [-nd, nd-1]; a 0-dim tensor accepts -1 and 0.
bool wrap(int64_t d, int64_t nd, int64_t* out) {
  int64_t lo = nd == 0 ? -1 : -nd, hi = nd == 0 ? 0 : nd - 1;
  if (d < lo || d > hi) return false;
  *out = d < 0 ? d + std::max<int64_t>(nd, 1) : d;
  return true;
}

// Applies a view to the reference: out[idx] = in[map(idx)].
template <typename Map>
Ref remap(const Ref& r, const Shape& out_shape, Map map) {
  Ref o;
  o.shape = out_shape;
  if (r.v.empty() && r.numel() > 0) return o;
  Shape st = row_major_strides(r.shape);
  o.v.reserve(size_t(numel_of(out_shape)));
  for_each_index(out_shape, [&](int64_t, const std::vector<int64_t>& idx) {
    std::vector<int64_t> src = map(idx);
    int64_t lin = 0;
    for (size_t d = 0; d < src.size(); ++d) lin += src[d] * st[d];
    o.v.push_back(r.v[size_t(lin)]);
  });
  return o;
}

double value_limit(DType dt) { return dt == DType::Int32 ? 2147483647.0 : 9007199254740992.0; }

Tensor make_values(const Shape& shape, DType dt, int64_t first, Ref* ref) {
  int64_t n = numel_of(shape);
  ref->shape = shape;
  ref->v.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) ref->v[size_t(i)] = double(first + i);
  return tessera::arange(double(first), double(first + n), 1.0, tessera::TensorOptions(dt)).reshape(shape);
}

Shape draw_shape(FuzzedDataProvider& in, int max_dims, int64_t max_size) {
  Shape s(in.ConsumeIntegralInRange<int>(0, max_dims));
  for (auto& v : s) v = in.ConsumeIntegralInRange<int64_t>(0, max_size);
  return s;
}

// A shape argument: small sizes, maybe -1, maybe extreme values.
Shape draw_shape_arg(FuzzedDataProvider& in, const Shape& like) {
  Shape s;
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: {  // a factorisation of numel with one -1 maybe
      int64_t n = numel_of(like);
      while (n > 1 && s.size() < 5) {
        int64_t f = 2;
        int64_t pick = in.ConsumeIntegralInRange<int64_t>(1, 8);
        for (int64_t c = pick; c >= 2; --c)
          if (n % c == 0) { f = c; break; }
        if (n % f != 0) f = n;
        s.push_back(f);
        n /= f;
      }
      if (n != 1) s.push_back(n);
      if (!s.empty() && in.ConsumeBool()) s[in.ConsumeIntegralInRange<size_t>(0, s.size() - 1)] = -1;
      if (in.ConsumeBool()) s.insert(s.begin() + in.ConsumeIntegralInRange<size_t>(0, s.size()), 1);
      break;
    }
    case 1:  // a perturbation of the current shape
      s = like;
      if (!s.empty()) s[in.ConsumeIntegralInRange<size_t>(0, s.size() - 1)] = draw(in, -2, 8);
      break;
    default: {
      int nd = in.ConsumeIntegralInRange<int>(0, 5);
      for (int i = 0; i < nd; ++i) s.push_back(draw(in, -2, 8));
    }
  }
  return s;
}

// View-shape rule (PyTorch's infer_size): sizes >= 0 or one -1; product must equal numel.
bool infer_view_shape(const Shape& arg, int64_t numel, Shape* out) {
  Shape s = arg;
  int infer = -1;
  int64_t prod = 1, prod_nonzero = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) return false;
      infer = int(i);
    } else if (s[i] < 0) {
      return false;
    } else {
      if (__builtin_mul_overflow(prod_nonzero, std::max<int64_t>(s[i], 1), &prod_nonzero)) return false;
      prod = s[i] == 0 ? 0 : prod;
    }
  }
  if (prod != 0) prod = prod_nonzero;
  if (infer >= 0) {
    if (prod == 0 || numel % prod != 0) return false;
    s[size_t(infer)] = numel / prod;
  } else if (prod != numel) {
    return false;
  }
  *out = s;
  return true;
}

struct State {
  Tensor t;
  Ref r;
  DType dt;
  bool values = true;  // false once the reference is too large to hold values
};

// Adopts a result; returns false when the sequence must stop (too large to check further).
bool adopt(State& s, Tensor t, Ref r, DType dt, const char* op) {
  s.dt = dt;
  s.t = std::move(t);
  s.r = std::move(r);
  verify(s.t, s.r, s.dt, op);
  // Stop when the result, or one with its 0 dims made 1 (sum over a 0 dim, broadcasting
  // against it), would be too large to compute here: [0, 2^40] is a valid view.
  int64_t span = 1;
  for (int64_t v : s.r.shape)
    if (__builtin_mul_overflow(span, std::max<int64_t>(v, 1), &span) || span > kMaxNumel) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static const DType kDTypes[] = {DType::Int64, DType::Float64, DType::Float32, DType::Int32};
  State s;
  s.dt = kDTypes[in.ConsumeIntegralInRange<int>(0, 3)];
  Shape shape0 = draw_shape(in, 4, 6);
  s.t = make_values(shape0, s.dt, 0, &s.r);
  if (std::getenv("FUZZ_SHAPE_TRACE"))
    std::fprintf(stderr, "fuzz_shape: start arange(%lld, %s).reshape(%s)\n", (long long)s.r.numel(),
                 tessera::dtype_name(s.dt), str(shape0).c_str());
  verify(s.t, s.r, s.dt, "arange().reshape()");

  for (int step = 0; step < kMaxOps && in.remaining_bytes() > 0; ++step) {
    const Tensor& t = s.t;
    const Ref& r = s.r;
    const int64_t nd = t.dim();
    const Shape& sh = r.shape;
    Tensor out;
    bool keep_going = true;
    switch (in.ConsumeIntegralInRange<int>(0, 15)) {
      case 0:
      case 1: {  // view / reshape
        bool is_view = in.ConsumeBool();
        Shape arg = draw_shape_arg(in, sh);
        Shape target;
        bool ok = infer_view_shape(arg, r.numel(), &target);
        int expect = !ok ? kFails : (is_view && !t.is_contiguous()) ? kEither : kSucceeds;
        if (attempt(is_view ? "view" : "reshape", expect, str(arg) + " of " + str(sh),
                    [&] { out = is_view ? t.view(arg) : t.reshape(arg); })) {
          Ref o = r;
          o.shape = target;
          keep_going = adopt(s, out, o, s.dt, is_view ? "view" : "reshape");
        }
        break;
      }
      case 2: {  // permute
        std::vector<int64_t> p(static_cast<size_t>(nd));
        std::iota(p.begin(), p.end(), 0);
        for (size_t i = p.size(); i > 1; --i) std::swap(p[i - 1], p[in.ConsumeIntegralInRange<size_t>(0, i - 1)]);
        for (auto& v : p)
          if (in.ConsumeBool()) v -= nd;  // negative dims are fine
        if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {  // break it
          if (!p.empty() && in.ConsumeBool()) p[in.ConsumeIntegralInRange<size_t>(0, p.size() - 1)] = draw(in, -6, 6);
          else if (in.ConsumeBool()) p.push_back(0);
          else if (!p.empty()) p.pop_back();
        }
        std::vector<int64_t> w(p.size());
        bool ok = int64_t(p.size()) == nd;
        std::vector<bool> seen(size_t(std::max<int64_t>(nd, 1)), false);
        for (size_t i = 0; ok && i < p.size(); ++i) {
          ok = wrap(p[i], nd, &w[i]) && !seen[size_t(w[i])];
          if (ok) seen[size_t(w[i])] = true;
        }
        if (attempt("permute", ok ? kSucceeds : kFails, str(p) + " of " + str(sh), [&] { out = t.permute(p); })) {
          Shape os(w.size());
          for (size_t i = 0; i < w.size(); ++i) os[i] = sh[size_t(w[i])];
          Ref o = remap(r, os, [&](const std::vector<int64_t>& idx) {
            std::vector<int64_t> src(idx.size());
            for (size_t i = 0; i < idx.size(); ++i) src[size_t(w[i])] = idx[i];
            return src;
          });
          keep_going = adopt(s, out, o, s.dt, "permute");
        }
        break;
      }
      case 3: {  // transpose
        int64_t a = draw(in, -5, 5), b = draw(in, -5, 5), wa = 0, wb = 0;
        bool ok = wrap(a, nd, &wa) && wrap(b, nd, &wb);
        int expect = nd == 0 ? kEither : ok ? kSucceeds : kFails;
        if (attempt("transpose", expect, args_str({a, b}) + " of " + str(sh), [&] { out = t.transpose(a, b); })) {
          if (nd == 0) {
            keep_going = adopt(s, out, r, s.dt, "transpose");
            break;
          }
          Shape os = sh;
          std::swap(os[size_t(wa)], os[size_t(wb)]);
          Ref o = remap(r, os, [&](const std::vector<int64_t>& idx) {
            std::vector<int64_t> src = idx;
            std::swap(src[size_t(wa)], src[size_t(wb)]);
            return src;
          });
          keep_going = adopt(s, out, o, s.dt, "transpose");
        }
        break;
      }
      case 4: {  // narrow
        int64_t d = draw(in, -4, 4), start = draw(in, -8, 8), len = draw(in, -1, 8), wd = 0;
        bool ok = nd > 0 && wrap(d, nd, &wd);
        int64_t st = start;
        if (ok) {
          int64_t n = sh[size_t(wd)];
          if (st < 0) st += n;
          ok = st >= 0 && len >= 0 && __int128(st) + len <= n;
        }
        if (attempt("narrow", ok ? kSucceeds : kFails, args_str({d, start, len}) + " of " + str(sh),
                    [&] { out = t.narrow(d, start, len); })) {
          Shape os = sh;
          os[size_t(wd)] = len;
          Ref o = remap(r, os, [&](const std::vector<int64_t>& idx) {
            std::vector<int64_t> src = idx;
            src[size_t(wd)] += st;
            return src;
          });
          keep_going = adopt(s, out, o, s.dt, "narrow");
        }
        break;
      }
      case 5: {  // slice with step (Python semantics)
        int64_t d = draw(in, -4, 4), start = draw(in, -9, 9), end = draw(in, -9, 9), stp = draw(in, -1, 4), wd = 0;
        bool ok = nd > 0 && wrap(d, nd, &wd) && stp > 0;
        if (attempt("slice", ok ? kSucceeds : kFails, args_str({d, start, end, stp}) + " of " + str(sh),
                    [&] { out = t.slice(d, start, end, stp); })) {
          int64_t n = sh[size_t(wd)];
          auto clampi = [n](int64_t v) {
            __int128 x = v;
            if (x < 0) x += n;
            return int64_t(std::clamp<__int128>(x, 0, n));
          };
          int64_t b = clampi(start), e = clampi(end);
          int64_t len = e > b ? int64_t((__int128(e) - b - 1) / stp + 1) : 0;
          Shape os = sh;
          os[size_t(wd)] = len;
          Ref o = remap(r, os, [&](const std::vector<int64_t>& idx) {
            std::vector<int64_t> src = idx;
            src[size_t(wd)] = b + idx[size_t(wd)] * stp;
            return src;
          });
          keep_going = adopt(s, out, o, s.dt, "slice");
        }
        break;
      }
      case 6: {  // select
        int64_t d = draw(in, -4, 4), index = draw(in, -8, 8), wd = 0;
        bool ok = nd > 0 && wrap(d, nd, &wd) && index >= -sh[size_t(wd)] && index < sh[size_t(wd)];
        if (attempt("select", ok ? kSucceeds : kFails, args_str({d, index}) + " of " + str(sh),
                    [&] { out = t.select(d, index); })) {
          int64_t ix = index < 0 ? index + sh[size_t(wd)] : index;
          Shape os = sh;
          os.erase(os.begin() + wd);
          Ref o = remap(r, os, [&](const std::vector<int64_t>& idx) {
            std::vector<int64_t> src = idx;
            src.insert(src.begin() + wd, ix);
            return src;
          });
          keep_going = adopt(s, out, o, s.dt, "select");
        }
        break;
      }
      case 7: {  // squeeze / unsqueeze
        int kind = in.ConsumeIntegralInRange<int>(0, 2);
        int64_t d = draw(in, -5, 5), wd = 0;
        if (kind == 0) {
          attempt("squeeze", kSucceeds, "() of " + str(sh), [&] { out = t.squeeze(); });
          Ref o = r;
          o.shape.clear();
          for (int64_t v : sh)
            if (v != 1) o.shape.push_back(v);
          keep_going = adopt(s, out, o, s.dt, "squeeze()");
        } else if (kind == 1) {
          bool ok = wrap(d, nd, &wd);
          if (attempt("squeeze", nd == 0 ? kEither : ok ? kSucceeds : kFails, args_str({d}) + " of " + str(sh),
                      [&] { out = t.squeeze(d); })) {
            Ref o = r;
            if (nd > 0 && sh[size_t(wd)] == 1) o.shape.erase(o.shape.begin() + wd);
            keep_going = adopt(s, out, o, s.dt, "squeeze(dim)");
          }
        } else {
          bool ok = wrap(d, nd + 1, &wd);
          if (attempt("unsqueeze", ok ? kSucceeds : kFails, args_str({d}) + " of " + str(sh),
                      [&] { out = t.unsqueeze(d); })) {
            Ref o = r;
            o.shape.insert(o.shape.begin() + wd, 1);
            keep_going = adopt(s, out, o, s.dt, "unsqueeze");
          }
        }
        break;
      }
      case 8: {  // expand
        Shape arg;
        int lead = in.ConsumeIntegralInRange<int>(0, 2);
        for (int i = 0; i < lead; ++i) arg.push_back(draw(in, -1, 4));
        for (int64_t v : sh) {
          uint8_t k = in.ConsumeIntegral<uint8_t>() % 4;
          arg.push_back(k == 0 ? -1 : (k == 1 && v == 1) ? draw(in, 0, 5) : k == 2 ? draw(in, -2, 6) : v);
        }
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0 && !arg.empty()) arg.erase(arg.begin());
        bool ok = arg.size() >= sh.size();
        Shape os(arg.size());
        size_t ld = ok ? arg.size() - sh.size() : 0;
        for (size_t i = 0; ok && i < arg.size(); ++i) {
          if (i < ld) {
            ok = arg[i] >= 0;
            os[i] = arg[i];
          } else {
            int64_t cur = sh[i - ld];
            int64_t want = arg[i] == -1 ? cur : arg[i];
            ok = arg[i] >= -1 && (want == cur || cur == 1);
            os[i] = want;
          }
        }
        int64_t on = 0;
        if (ok) ok = checked_numel(os, &on);
        if (attempt("expand", ok ? kSucceeds : kFails, str(arg) + " of " + str(sh), [&] { out = t.expand(arg); })) {
          Ref o;
          o.shape = os;
          if (on <= kMaxNumel) {
            o = remap(r, os, [&](const std::vector<int64_t>& idx) {
              std::vector<int64_t> src(sh.size());
              for (size_t i = 0; i < sh.size(); ++i) src[i] = sh[i] == 1 ? 0 : idx[ld + i];
              return src;
            });
          }
          keep_going = adopt(s, out, o, s.dt, "expand");
        }
        break;
      }
      case 9: {  // flatten
        int64_t a = draw(in, -5, 5), b = draw(in, -5, 5), wa = 0, wb = 0;
        bool ok = nd == 0 || (wrap(a, nd, &wa) && wrap(b, nd, &wb) && wa <= wb);
        if (attempt("flatten", nd == 0 ? kEither : ok ? kSucceeds : kFails, args_str({a, b}) + " of " + str(sh),
                    [&] { out = t.flatten(a, b); })) {
          Ref o = r;
          if (nd == 0) {
            o.shape = {1};
          } else {
            o.shape.clear();
            int64_t p = 1;
            for (int64_t i = 0; i < nd; ++i) {
              if (i < wa || i > wb) o.shape.push_back(sh[size_t(i)]);
              else {
                p *= sh[size_t(i)];
                if (i == wb) o.shape.push_back(p);
              }
            }
          }
          keep_going = adopt(s, out, o, s.dt, "flatten");
        }
        break;
      }
      case 10:
      case 11: {  // broadcasting add
        Shape os;
        int kind = in.ConsumeIntegralInRange<int>(0, 3);
        if (kind == 0) {
          os = draw_shape(in, 5, 5);
        } else {
          os = sh;
          size_t drop = in.ConsumeIntegralInRange<size_t>(0, os.size());
          os.erase(os.begin(), os.begin() + drop);
          for (auto& v : os)
            if (in.ConsumeIntegralInRange<int>(0, 2) == 0) v = 1;
          if (in.ConsumeBool()) os.insert(os.begin(), in.ConsumeIntegralInRange<int64_t>(1, 3));
        }
        Ref ro;
        Tensor other = kind == 3 ? t : make_values(os, s.dt, in.ConsumeIntegralInRange<int64_t>(0, 100), &ro);
        if (kind == 3) ro = r, os = sh;
        // The reference broadcast.
        size_t n = std::max(sh.size(), os.size());
        Shape bs(n);
        bool ok = true;
        for (size_t i = 0; i < n; ++i) {
          int64_t a = i < n - sh.size() ? 1 : sh[i - (n - sh.size())];
          int64_t b = i < n - os.size() ? 1 : os[i - (n - os.size())];
          ok = ok && (a == b || a == 1 || b == 1);
          bs[i] = a == 1 ? b : a;
        }
        int64_t bn = 0;
        if (ok && (!checked_numel(bs, &bn) || bn > kMaxNumel)) break;  // too big to run
        Ref o;
        o.shape = bs;
        if (ok) {
          for_each_index(bs, [&](int64_t, const std::vector<int64_t>& idx) {
            o.v.push_back(broadcast_read(r, idx) + broadcast_read(ro, idx));
          });
          double mx = 0;
          for (double v : o.v) mx = std::max(mx, std::fabs(v));
          if (mx > value_limit(s.dt)) break;  // would overflow the dtype: not what is tested here
        }
        if (attempt("add", ok ? kSucceeds : kFails, "(" + str(sh) + ", " + str(os) + ")",
                    [&] { out = tessera::add(t, other); }))
          keep_going = adopt(s, out, o, s.dt, "add");
        break;
      }
      case 12: {  // contiguous
        out = t.contiguous();
        keep_going = adopt(s, out, r, s.dt, "contiguous");
        // Strides of size-1 dims are free (PyTorch's rule too); the others are row-major.
        Shape rm = row_major_strides(sh);
        for (size_t d = 0; d < sh.size(); ++d)
          if (sh[d] > 1 && s.t.strides()[d] != rm[d] && r.numel() > 0)
            fail("contiguous(): strides " + str(s.t.strides()) + " for shape " + str(sh));
        if (!s.t.is_contiguous()) fail("contiguous(): result is not contiguous");
        break;
      }
      case 13: {  // sum over dims
        std::vector<int64_t> dims(in.ConsumeIntegralInRange<size_t>(0, size_t(nd) + 1));
        for (auto& d : dims) d = draw(in, -nd - 2, nd + 1);
        bool keepdim = in.ConsumeBool();
        std::vector<bool> red(size_t(std::max<int64_t>(nd, 1)), dims.empty());
        bool ok = true;
        for (int64_t d : dims) {
          int64_t w = 0;
          ok = ok && wrap(d, nd, &w) && !red[size_t(w)];
          if (ok) red[size_t(w)] = true;
        }
        DType odt = s.dt == DType::Int32 ? DType::Int64 : s.dt;
        if (attempt("sum", ok ? kSucceeds : kFails, str(dims) + " of " + str(sh), [&] { out = t.sum(dims, keepdim); })) {
          Shape keep, os;
          for (int64_t d = 0; d < nd; ++d) {
            keep.push_back(red[size_t(d)] ? 1 : sh[size_t(d)]);
            if (!red[size_t(d)] || keepdim) os.push_back(keep.back());
          }
          Ref o;
          o.shape = os;
          o.v.assign(size_t(numel_of(os)), 0.0);
          Shape kst = row_major_strides(keep);
          for_each_index(sh, [&](int64_t lin, const std::vector<int64_t>& idx) {
            int64_t k = 0;
            for (size_t d = 0; d < idx.size(); ++d) k += (red[d] ? 0 : idx[d]) * kst[d];
            o.v[size_t(k)] += r.v[size_t(lin)];
          });
          keep_going = adopt(s, out, o, odt, "sum");
        }
        break;
      }
      case 14: {  // cat
        int64_t d = draw(in, -4, 4), wd = 0;
        Shape os = sh;
        bool ok = nd > 0 && wrap(d, nd, &wd);
        if (ok) os[size_t(wd)] = in.ConsumeIntegralInRange<int64_t>(0, 4);
        if (in.ConsumeIntegralInRange<int>(0, 5) == 0) os = draw_shape(in, 4, 4);  // maybe incompatible
        Ref ro;
        Tensor other = make_values(os, s.dt, 1000, &ro);
        ok = ok && os.size() == sh.size();
        for (int64_t k = 0; ok && k < nd; ++k) ok = k == wd || os[size_t(k)] == sh[size_t(k)];
        Shape cs = sh;
        if (ok) cs[size_t(wd)] += os[size_t(wd)];
        if (ok && numel_of(cs) > kMaxNumel) break;
        if (attempt("cat", ok ? kSucceeds : kFails, args_str({d}) + " of " + str(sh) + ", " + str(os),
                    [&] { out = tessera::cat({t, other}, d); })) {
          Ref o;
          o.shape = cs;
          for_each_index(cs, [&](int64_t, const std::vector<int64_t>& idx) {
            std::vector<int64_t> src = idx;
            const Ref* from = &r;
            if (src[size_t(wd)] >= sh[size_t(wd)]) {
              src[size_t(wd)] -= sh[size_t(wd)];
              from = &ro;
            }
            int64_t lin = 0;
            Shape st = row_major_strides(from->shape);
            for (size_t k = 0; k < src.size(); ++k) lin += src[k] * st[k];
            o.v.push_back(from->v[size_t(lin)]);
          });
          keep_going = adopt(s, out, o, s.dt, "cat");
        }
        break;
      }
      default: {  // a copy through the backend, in another dtype and back
        Tensor c = t.to(DType::Float64);
        verify(c, r, DType::Float64, "to(float64)", s.dt);
        out = t.clone();
        keep_going = adopt(s, out, r, s.dt, "clone");
      }
    }
    if (!keep_going) break;
  }
  return 0;
}
