// float16 / bfloat16: the value types' conversions at their edges (values worked out by hand
// and, for float16, checked against the compiler's _Float16), PyTorch's promotion table, and
// every op family accepting the two-byte types with results that match float32 computed and
// rounded once (elementwise: bit-exact) or a float64 reference (within stated ulps).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "tensor_testing.hpp"
#include "tessera/io/safetensors.hpp"
#include "tessera/ops.hpp"
#include "tessera/optim/optimizer.hpp"

using namespace tessera;
using namespace tessera::testing;

namespace {

float f_of_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
uint16_t h(float f) { return Half(f).x; }
uint16_t bf(float f) { return BFloat16(f).x; }

/// Round-to-nearest-even bfloat16 by value, independently of the bit trick in half.hpp: the
/// two neighbours (truncation and the next value up) compared in double, ties to even.
uint16_t bf16_reference(float f) {
  if (std::isnan(f)) return 0x7fc0;
  const uint32_t u = bits_of(f);
  const uint16_t lo = uint16_t(u >> 16);
  if ((u & 0xffffu) == 0) return lo;
  const uint16_t hi = uint16_t(lo + 1);  // next value away from zero (may become inf)
  const double dlo = std::fabs(double(f) - double(f_of_bits(uint32_t(lo) << 16)));
  // Past the largest finite value the next "value" is 2^128 (IEEE 754's overflow rule).
  const bool hi_inf = (hi & 0x7fffu) == 0x7f80u;
  const double vhi = hi_inf ? std::copysign(std::ldexp(1.0, 128), double(f)) : double(f_of_bits(uint32_t(hi) << 16));
  const double dhi = std::fabs(vhi - double(f));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

std::vector<uint16_t> bits16(const Tensor& t) {
  Tensor c = t.to(Device::cpu()).contiguous();
  std::vector<uint16_t> out(size_t(c.numel()));
  std::memcpy(out.data(), c.raw_data(), out.size() * 2);
  return out;
}

/// Random floats covering normal, subnormal, tie and overflow cases of both formats.
std::vector<float> edge_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    switch (i % 4) {
      case 0: v.push_back(f_of_bits(rng())); break;                                        // any bits
      case 1: v.push_back(std::ldexp(float(rng() % 4096) / 4096.f, -int(rng() % 30)));  break;  // near subnormals
      case 2: v.push_back(f_of_bits((rng() & 0xffff0000u) | 0x8000u)); break;             // bf16 ties
      default: v.push_back(f_of_bits((rng() & 0xffffe000u) | 0x1000u)); break;            // half ties
    }
  }
  return v;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = values(a), y = values(b);
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}
double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : values(a)) m = std::max(m, std::fabs(v));
  return m;
}

}  // namespace

TEST_CASE("half: float16 conversions at the edges, worked out by hand", "[dtype][half]") {
  CHECK(h(1.0f) == 0x3c00);
  CHECK(h(-2.0f) == 0xc000);
  CHECK(h(65504.f) == 0x7bff);                  // the largest finite float16 stays
  CHECK(h(65519.99f) == 0x7bff);                // below the half-way point: rounds down
  CHECK(h(65520.f) == 0x7c00);                  // half-way to 2^16, ties to even: inf
  CHECK(h(-65520.f) == 0xfc00);
  CHECK(h(1e6f) == 0x7c00);
  CHECK(h(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(h(-std::numeric_limits<float>::infinity()) == 0xfc00);
  CHECK(h(1.0f + std::ldexp(1.f, -11)) == 0x3c00);       // tie between 1 and 1+2^-10: even (1)
  CHECK(h(1.0f + 3 * std::ldexp(1.f, -11)) == 0x3c02);   // tie between 0x3c01 and 0x3c02: even
  CHECK(h(1.0f + std::ldexp(1.f, -11) + std::ldexp(1.f, -20)) == 0x3c01);  // just past the tie
  CHECK(h(std::ldexp(1.f, -14)) == 0x0400);     // smallest normal
  CHECK(h(std::ldexp(1.f, -24)) == 0x0001);     // smallest subnormal is kept
  CHECK(h(std::ldexp(1.f, -25)) == 0x0000);     // half of it: tie to even, zero
  CHECK(h(std::ldexp(1.f, -25) * 1.0001f) == 0x0001);
  CHECK(h(3 * std::ldexp(1.f, -25)) == 0x0002);  // 1.5 x smallest: tie to even (2)
  CHECK(h(std::ldexp(1.f, -14) - std::ldexp(1.f, -25)) == 0x0400);  // largest subnormal + half: rounds up
  CHECK(h(1e-30f) == 0x0000);
  CHECK(h(-1e-30f) == 0x8000);                  // the sign of zero is kept
  CHECK(h(-0.0f) == 0x8000);
  CHECK(std::signbit(float(Half(uint16_t(0x8000), FromBitsTag{}))));
  // NaN in: a quiet NaN, sign kept; NaN out: float NaN.
  CHECK(h(std::nanf("")) == 0x7e00);
  CHECK(h(-std::nanf("")) == 0xfe00);
  CHECK(tessera::isnan(Half(std::nanf(""))));
  CHECK(std::isnan(float(Half(uint16_t(0x7c01), FromBitsTag{}))));  // a signalling payload stays NaN
  CHECK(float(Half(uint16_t(0x0001), FromBitsTag{})) == std::ldexp(1.f, -24));
  CHECK(float(Half(uint16_t(0x03ff), FromBitsTag{})) == 1023 * std::ldexp(1.f, -24));
  CHECK(float(std::numeric_limits<Half>::max()) == 65504.f);
  CHECK(float(std::numeric_limits<Half>::epsilon()) == std::ldexp(1.f, -10));
  // Every float16 survives float16 -> float32 -> float16 unchanged (NaNs stay NaN).
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const Half x(uint16_t(b), FromBitsTag{});
    const Half y{float(x)};
    if (tessera::isnan(x)) REQUIRE(tessera::isnan(y));
    else REQUIRE(y.x == x.x);
  }
}

TEST_CASE("half: bfloat16 conversions at the edges, worked out by hand", "[dtype][half]") {
  CHECK(bf(1.0f) == 0x3f80);
  CHECK(bf(1e-39f) == 0x000b);                  // a float32 subnormal is kept (VCVTNEPS2BF16 gives 0)
  CHECK(bf(1.0f + std::ldexp(1.f, -8)) == 0x3f80);      // tie: even
  CHECK(bf(1.0f + 3 * std::ldexp(1.f, -8)) == 0x3f82);  // tie: even
  CHECK(bf(std::numeric_limits<float>::max()) == 0x7f80);  // past bfloat16's max: inf
  CHECK(bf(f_of_bits(0x7f7f7fffu)) == 0x7f7f);          // just below the tie: the max
  CHECK(bf(-0.0f) == 0x8000);
  CHECK(bf(std::nanf("")) == 0x7fc0);
  CHECK(bf(-std::nanf("")) == 0xffc0);
  CHECK(bf(f_of_bits(0x7f800001u)) == 0x7fc0);  // a NaN with only low payload bits stays NaN (not inf)
  CHECK(float(std::numeric_limits<BFloat16>::denorm_min()) == f_of_bits(0x00010000u));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const BFloat16 x(uint16_t(b), FromBitsTag{});
    const BFloat16 y{float(x)};
    if (tessera::isnan(x)) REQUIRE(tessera::isnan(y));
    else REQUIRE(y.x == x.x);
  }
}

TEST_CASE("half: conversions agree with independent references on random and tie inputs", "[dtype][half]") {
  const std::vector<float> v = edge_floats(200000, 7);
  for (float f : v) {
    INFO(f << " bits " << bits_of(f));
    if (std::isnan(f)) REQUIRE(tessera::isnan(BFloat16(f)));  // payload kept, quiet bit set
    else REQUIRE(bf(f) == bf16_reference(f));
#if defined(__FLT16_MAX__)
    _Float16 r = static_cast<_Float16>(f);  // the compiler's float -> binary16 (libgcc, RNE)
    uint16_t rb;
    std::memcpy(&rb, &r, 2);
    if (std::isnan(f)) REQUIRE(tessera::isnan(Half(f)));
    else REQUIRE(h(f) == rb);
#endif
  }
}

TEST_CASE("half: the tensor conversion loop gives the scalar conversion's bits", "[dtype][half]") {
  // to(dtype) runs the backend's (vectorisable) copy loop; it must equal Half(f) / BFloat16(f)
  // element by element, subnormals included (no flush to zero anywhere).
  const std::vector<float> v = edge_floats(50000, 11);
  Tensor t = from_vector(v);
  const std::vector<uint16_t> hb = bits16(t.to(kFloat16)), bb = bits16(t.to(kBFloat16));
  for (size_t i = 0; i < v.size(); ++i) {
    INFO(i << ": " << v[i]);
    if (std::isnan(v[i])) {
      REQUIRE(tessera::isnan(Half(uint16_t(hb[i]), FromBitsTag{})));
      REQUIRE(tessera::isnan(BFloat16(uint16_t(bb[i]), FromBitsTag{})));
    } else {
      REQUIRE(hb[i] == h(v[i]));
      REQUIRE(bb[i] == bf(v[i]));
    }
  }
  // A strided source takes the strided loop: same bits.
  Tensor s = t.reshape({250, 200}).transpose(0, 1).to(kBFloat16).contiguous();
  Tensor ref = t.reshape({250, 200}).transpose(0, 1).contiguous().to(kBFloat16);
  CHECK(bits16(s) == bits16(ref));
  // And back: float16 -> float32 is exact.
  Tensor back = t.to(kFloat16).to(kFloat32);
  const float* bp = back.data_ptr<float>();
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isnan(v[i])) REQUIRE(bits_of(bp[i]) == bits_of(float(Half(uint16_t(hb[i]), FromBitsTag{}))));
}

TEST_CASE("dtype: the table's facts for the two-byte types", "[dtype]") {
  CHECK(itemsize(kFloat16) == 2);
  CHECK(itemsize(kBFloat16) == 2);
  CHECK(kHalf == kFloat16);
  CHECK(std::string(dtype_name(kFloat16)) == "float16");
  CHECK(std::string(dtype_name(kBFloat16)) == "bfloat16");
  CHECK(is_floating_point(kFloat16));
  CHECK(is_floating_point(kBFloat16));
  CHECK(is_reduced_floating_point(kBFloat16));
  CHECK(!is_reduced_floating_point(kFloat32));
  CHECK(!is_integral(kFloat16));
  STATIC_REQUIRE(dtype_of_v<Half> == kFloat16);
  STATIC_REQUIRE(dtype_of_v<BFloat16> == kBFloat16);
  STATIC_REQUIRE(std::is_same_v<compute_type_t<BFloat16>, float>);
  STATIC_REQUIRE(std::is_same_v<dtype_type_t<kFloat16>, Half>);
  CHECK(dtype_set_names(kFloatingTypes) == "float32, float64, float16, bfloat16");
}

TEST_CASE("dtype: promote_types is PyTorch's table for every pair", "[dtype]") {
  // torch.promote_types restricted to Tessera's dtypes: rows and columns in the order below,
  // copied from PyTorch's c10/core/ScalarType.cpp (_promoteTypesLookup).
  const DType order[] = {kUInt8, kInt32, kInt64, kFloat16, kFloat32, kFloat64, kBool, kBFloat16};
  constexpr DType u1 = kUInt8, i4 = kInt32, i8 = kInt64, f2 = kFloat16, f4 = kFloat32, f8 = kFloat64, b1 = kBool,
                  bf = kBFloat16;
  const DType torch_table[8][8] = {
      /*        u1  i4  i8  f2  f4  f8  b1  bf */
      /* u1 */ {u1, i4, i8, f2, f4, f8, u1, bf},
      /* i4 */ {i4, i4, i8, f2, f4, f8, i4, bf},
      /* i8 */ {i8, i8, i8, f2, f4, f8, i8, bf},
      /* f2 */ {f2, f2, f2, f2, f4, f8, f2, f4},
      /* f4 */ {f4, f4, f4, f4, f4, f8, f4, f4},
      /* f8 */ {f8, f8, f8, f8, f8, f8, f8, f8},
      /* b1 */ {u1, i4, i8, f2, f4, f8, b1, bf},
      /* bf */ {bf, bf, bf, f4, f4, f8, bf, bf},
  };
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      INFO(dtype_name(order[i]) << " + " << dtype_name(order[j]));
      CHECK(promote_types(order[i], order[j]) == torch_table[i][j]);
    }
  // Through the ops: tensors promote, Python-style scalars do not.
  Tensor a = randn({3}).to(kFloat16), b = randn({3}).to(kBFloat16), n = randint(0, 5, {3}).to(kInt32);
  CHECK((a + b).dtype() == kFloat32);
  CHECK((a + n).dtype() == kFloat16);
  CHECK((n * b).dtype() == kBFloat16);
  CHECK((a * 2.5).dtype() == kFloat16);
  CHECK((a + randn({3})).dtype() == kFloat32);
}

TEST_CASE("dtype: elementwise ops in float16/bfloat16 give float32 computed and rounded once", "[dtype]") {
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    Tensor x = (randn({257}) * 3).to(dt), y = (randn({257}) + 0.1).to(dt);
    Tensor xf = x.to(kFloat32), yf = y.to(kFloat32);
    auto same = [&](const Tensor& got, const Tensor& f32) {
      REQUIRE(got.dtype() == dt);
      CHECK(bits16(got) == bits16(f32.to(dt)));
    };
    same(x + y, xf + yf);
    same(x * y, xf * yf);
    same(x / y, xf / yf);
    same(exp(x), exp(xf));
    same(tanh(x), tanh(xf));
    same(relu(x), relu(xf));
    same(sigmoid(x), sigmoid(xf));
    same(maximum(x, y), maximum(xf, yf));
    // Strided (transposed) operands go through the same path.
    Tensor m = (randn({16, 9})).to(dt);
    same(m.transpose(0, 1) * 2.0, m.to(kFloat32).transpose(0, 1) * 2.0);
    CHECK(values(x < y) == values(xf < yf));
  }
}

TEST_CASE("dtype: reductions accumulate in float32 or wider (a long sum of ones)", "[dtype]") {
  // 10000 ones: naive bfloat16 accumulation stalls at 256 (256 + 1 rounds to 256); float32
  // accumulation gives 10000, which rounds once to 9984 in bfloat16 (8 significant bits).
  Tensor ones_bf = ones({10000}).to(kBFloat16);
  CHECK(sum(ones_bf).item<float>() == 9984.f);
  CHECK(float(sum(ones_bf).item<BFloat16>()) == 9984.f);
  CHECK(sum(ones({10000}).to(kFloat16)).item<float>() == 10000.f);
  // mean of float16 values past 65504 in total stays finite.
  CHECK(mean(full({100}, 60000.0).to(kFloat16)).item<float>() == 60000.f);
  Tensor r = (randn({37, 53}) * 2).to(kBFloat16);
  Tensor ref = sum(r.to(kFloat64), {1});
  Tensor got = sum(r, {1});
  REQUIRE(got.dtype() == kBFloat16);
  CHECK(bits16(got) == bits16(ref.to(kBFloat16)));  // one rounding of an (almost) exact sum
  CHECK(values(argmax(r, 1)) == values(argmax(r.to(kFloat32), 1)));
}

TEST_CASE("dtype: matmul, conv, pool, softmax and losses accept float16/bfloat16", "[dtype]") {
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dtype_name(dt));
    // Relative tolerance: one rounding of the result (2^-11 / 2^-8), inputs exact in both.
    const double eps = dt == kFloat16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    Tensor a = randn({17, 33}).to(dt), b = randn({33, 9}).to(dt);
    Tensor c = matmul(a, b);
    REQUIRE(c.dtype() == dt);
    Tensor ref = matmul(a.to(kFloat64), b.to(kFloat64));
    CHECK(max_abs_diff(c.to(kFloat64), ref) <= eps * (max_abs(ref) + 1));
    Tensor x = randn({2, 3, 8, 8}).to(dt), w = randn({4, 3, 3, 3}).to(dt), bias = randn({4}).to(dt);
    Tensor y = conv2d(x, w, bias, {1, 1}, {1, 1});
    REQUIRE(y.dtype() == dt);
    Tensor yref = conv2d(x.to(kFloat64), w.to(kFloat64), bias.to(kFloat64), {1, 1}, {1, 1});
    CHECK(max_abs_diff(y.to(kFloat64), yref) <= eps * (max_abs(yref) + 1));
    Tensor p = max_pool2d(y, {2, 2});
    CHECK(bits16(p) == bits16(max_pool2d(y.to(kFloat32), {2, 2}).to(dt)));  // max is exact
    Tensor logits = randn({6, 10}).to(dt);
    Tensor ls = log_softmax(logits, 1);
    REQUIRE(ls.dtype() == dt);
    CHECK(bits16(ls) == bits16(log_softmax(logits.to(kFloat32), 1).to(dt)));
    Tensor target = randint(0, 10, {6});
    Tensor loss = cross_entropy(logits, target);
    REQUIRE(loss.dtype() == dt);
    CHECK(std::fabs(loss.item<double>() - cross_entropy(logits.to(kFloat64), target).item<double>()) <=
          4 * eps * 3);
  }
}

TEST_CASE("dtype: autograd and an optimizer step on bfloat16 parameters", "[dtype]") {
  Tensor w = (randn({5, 4}) * 0.5).to(kBFloat16).requires_grad_(true);
  Tensor x = randn({3, 5}).to(kBFloat16);
  Tensor loss = sum(matmul(x, w) * matmul(x, w));
  loss.backward();
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == kBFloat16);
  // d/dw sum((x w)^2) = 2 x^T (x w), in float64 from the same bfloat16 values.
  Tensor xd = x.to(kFloat64), wd = w.detach().to(kFloat64);
  Tensor gref = matmul(xd.transpose(0, 1), matmul(xd, wd)) * 2.0;
  CHECK(max_abs_diff(w.grad().to(kFloat64), gref) <= 0.02 * (max_abs(gref) + 1));  // a few bf16 roundings
  Tensor before = w.detach().clone();
  optim::Adam opt({w}, optim::AdamOptions(0.01));
  opt.step();
  CHECK(w.dtype() == kBFloat16);
  CHECK(max_abs_diff(w.detach().to(kFloat64), before.to(kFloat64)) > 0);  // it moved
  CHECK(max_abs_diff(w.detach().to(kFloat64), before.to(kFloat64)) < 0.02);  // by about lr
}

TEST_CASE("dtype: factories, item, from_vector, data_ptr and printing", "[dtype]") {
  Tensor t = from_vector(std::vector<Half>{Half(1.5f), Half(-0.0f), Half(65504.f)});
  CHECK(t.dtype() == kFloat16);
  CHECK(t.data_ptr<Half>()[2].x == 0x7bff);
  CHECK(float(t.data_ptr<Half>()[0]) == 1.5f);
  CHECK(t.str().find("dtype=float16") != std::string::npos);
  CHECK(t.str().find("65504") != std::string::npos);
  Tensor b = full({2, 2}, 0.1, TensorOptions(kBFloat16));
  CHECK(b[0][0].item<float>() != 0.1f);  // 0.1 rounds in bfloat16
  CHECK(b[0][0].item<BFloat16>().x == bf(0.1f));
  CHECK(b.dtype() == kBFloat16);
  CHECK_THROWS_AS(t.data_ptr<float>(), DTypeError);
  // uniform stays in [a, b) after rounding to the two-byte type.
  Tensor u = rand({20000}, TensorOptions(kBFloat16));
  CHECK(max(u).item<float>() < 1.0f);
  CHECK(min(u).item<float>() >= 0.0f);
  Tensor u2 = uniform({20000}, -1.0, 1.0, TensorOptions(kFloat16));
  CHECK(max(u2).item<float>() < 1.0f);
  CHECK(min(u2).item<float>() >= -1.0f);
}

TEST_CASE("dtype: safetensors keeps float16 and bfloat16 bit-exact, named F16 and BF16", "[dtype][io]") {
  TempDir dir("dtype");
  const std::string path = dir.file("half.safetensors");
  std::vector<float> v = edge_floats(999, 3);
  for (float& f : v)
    if (std::isnan(f)) f = 1.0f;
  Tensor hf = from_vector(v).to(kFloat16), bf16 = from_vector(v).to(kBFloat16).reshape({27, 37});
  io::save_safetensors(path, {{"h", hf}, {"b", bf16}});
  const std::string head = read_bytes(path).substr(0, 300);
  CHECK(head.find("\"F16\"") != std::string::npos);
  CHECK(head.find("\"BF16\"") != std::string::npos);
  io::TensorMap back = io::load_safetensors(path);
  CHECK(back.at("h").dtype() == kFloat16);
  CHECK(back.at("b").dtype() == kBFloat16);
  CHECK(back.at("b").shape() == Shape{27, 37});
  CHECK(bits16(back.at("h")) == bits16(hf));
  CHECK(bits16(back.at("b")) == bits16(bf16));
}
