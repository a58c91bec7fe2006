// Core error reporting: mismatched shapes name the op and both shapes; dtype, device and
// index errors use their tessera::Error subclass and say what was expected; nothing aborts.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "tessera/autograd/autograd.hpp"
#include "tessera/ops.hpp"

using namespace tessera;
using Catch::Matchers::Contains;

namespace {

// The message of the tessera::Error that fn throws ("" and a failed check if none).
std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("threw a non-tessera exception: " << e.what());
    return "";
  }
  FAIL_CHECK("did not throw");
  return "";
}

}  // namespace

TEST_CASE("core errors: mismatched shapes in binary ops name the op and both shapes", "[core][errors]") {
  const Tensor a = ones({2, 3}), b = ones({4, 3});
  struct C {
    const char* op;
    std::function<Tensor()> call;
  };
  std::vector<C> cases = {
      {"add", [&] { return add(a, b); }},         {"sub", [&] { return sub(a, b); }},
      {"mul", [&] { return mul(a, b); }},         {"div", [&] { return div(a, b); }},
      {"pow", [&] { return pow(a, b); }},         {"maximum", [&] { return maximum(a, b); }},
      {"minimum", [&] { return minimum(a, b); }}, {"eq", [&] { return eq(a, b); }},
      {"ne", [&] { return ne(a, b); }},           {"lt", [&] { return lt(a, b); }},
      {"le", [&] { return le(a, b); }},           {"gt", [&] { return gt(a, b); }},
      {"ge", [&] { return ge(a, b); }},           {"logical_and", [&] { return logical_and(a, b); }},
      {"add", [&] { return a + b; }},             {"mul", [&] { return a * b; }},
  };
  for (const C& c : cases) {
    INFO(c.op);
    CHECK_THROWS_AS(c.call(), ShapeError);
    const std::string m = message_of([&] { c.call(); });
    CHECK_THAT(m, Contains(c.op));
    CHECK_THAT(m, Contains("[2, 3]"));
    CHECK_THAT(m, Contains("[4, 3]"));
  }
  // where with three shapes.
  const std::string w = message_of([&] { where(ones({2}, kBool), ones({3}), ones({3})); });
  CHECK_THAT(w, Contains("where"));
  CHECK_THAT(w, Contains("[2]"));
  CHECK_THAT(w, Contains("[3]"));
  CHECK_THROWS_AS(where(ones({2}, kBool), ones({3}), ones({3})), ShapeError);
  // In place: the destination cannot change shape.
  Tensor dst = ones({3});
  const std::string ip = message_of([&] { add_(dst, ones({2, 3})); });
  CHECK_THAT(ip, Contains("add"));
  CHECK_THAT(ip, Contains("[3]"));
  CHECK_THAT(ip, Contains("[2, 3]"));
}

TEST_CASE("core errors: shape errors in views, matmul and cat", "[core][errors]") {
  const Tensor x = ones({2, 3});
  std::string m = message_of([&] { x.view({4, 2}); });
  CHECK_THAT(m, Contains("view"));
  CHECK_THAT(m, Contains("[4, 2]"));
  CHECK_THAT(m, Contains("[2, 3]"));
  CHECK_THROWS_AS(x.view({4, 2}), ShapeError);
  m = message_of([&] { x.t().view({6}); });
  CHECK_THAT(m, Contains("view"));
  CHECK_THAT(m, Contains("reshape"));  // says what to do instead
  m = message_of([&] { x.reshape({5, -1}); });
  CHECK_THAT(m, Contains("reshape"));
  CHECK_THAT(m, Contains("[2, 3]"));
  m = message_of([&] { x.expand({2, 4}); });
  CHECK_THAT(m, Contains("expand"));
  CHECK_THAT(m, Contains("[2, 3]"));
  CHECK_THAT(m, Contains("[2, 4]"));
  CHECK_THROWS_AS(x.expand({2, 4}), ShapeError);
  m = message_of([&] { matmul(ones({2, 3}), ones({4, 5})); });
  CHECK_THAT(m, Contains("matmul"));
  CHECK_THAT(m, Contains("[2, 3]"));
  CHECK_THAT(m, Contains("[4, 5]"));
  m = message_of([&] { cat({ones({2, 3}), ones({2, 4})}, 0); });
  CHECK_THAT(m, Contains("cat"));
  CHECK_THAT(m, Contains("[2, 3]"));
  CHECK_THAT(m, Contains("[2, 4]"));
  CHECK_THROWS_AS(cat({ones({2, 3}), ones({2, 4})}, 0), ShapeError);
  CHECK_THROWS_AS(stack({ones({2, 3}), ones({3, 2})}), ShapeError);
  CHECK_THROWS_AS(ones({2}).item<float>(), ShapeError);
  CHECK_THAT(message_of([] { ones({2}).item<float>(); }), Contains("[2]"));
  CHECK_THROWS_AS(from_vector<float>({1, 2, 3}, {2, 2}), ShapeError);
  CHECK_THROWS_AS(zeros({2}).copy_(zeros({3})), ShapeError);
  CHECK_THROWS_AS(x.permute({0}), ShapeError);
}

TEST_CASE("core errors: dtype errors name the dtypes", "[core][errors]") {
  const Tensor i = ones({2}, kInt64);
  std::string m = message_of([&] { i.data_ptr<float>(); });
  CHECK_THAT(m, Contains("float32"));
  CHECK_THAT(m, Contains("int64"));
  CHECK_THROWS_AS(i.data_ptr<float>(), DTypeError);
  CHECK_THROWS_AS(ones({2}).data_ptr<double>(), DTypeError);
  CHECK_THROWS_AS(ones({2}, kBool).data_ptr<uint8_t>(), DTypeError);
  m = message_of([&] { where(i, ones({2}), ones({2})); });
  CHECK_THAT(m, Contains("where"));
  CHECK_THAT(m, Contains("bool"));
  CHECK_THAT(m, Contains("int64"));
  CHECK_THROWS_AS(where(i, ones({2}), ones({2})), DTypeError);
  m = message_of([&] { mean(i); });
  CHECK_THAT(m, Contains("mean"));
  CHECK_THAT(m, Contains("int64"));
  CHECK_THROWS_AS(mean(i), DTypeError);
  CHECK_THROWS_AS(softmax(i, 0), DTypeError);
  CHECK_THROWS_AS(log_softmax(i, 0), DTypeError);
  CHECK_THROWS_AS(var(i), DTypeError);
  m = message_of([&] { matmul(ones({2, 2}), ones({2, 2}, kFloat64)); });
  CHECK_THAT(m, Contains("matmul"));
  CHECK_THAT(m, Contains("float32"));
  CHECK_THAT(m, Contains("float64"));
  CHECK_THROWS_AS(rand({2}, kInt32), DTypeError);
  CHECK_THROWS_AS(neg(ones({2}, kBool)), DTypeError);
  CHECK_THROWS_AS(sub(ones({2}, kBool), ones({2}, kBool)), DTypeError);
  Tensor dst = ones({2}, kInt64);
  m = message_of([&] { add_(dst, ones({2})); });
  CHECK_THAT(m, Contains("int64"));
  CHECK_THAT(m, Contains("float32"));
}

TEST_CASE("core errors: device errors", "[core][errors]") {
  // This build may or may not have a usable CUDA device; without one, making a CUDA tensor
  // is a DeviceError that says why (never a crash).
  Backend* cuda = find_backend(DeviceType::CUDA);
  if (!cuda || !cuda->is_available()) {
    CHECK_THROWS_AS(zeros({2}, Device::cuda(0)), DeviceError);
    const std::string m = message_of([] { zeros({2}, Device::cuda(0)); });
    CHECK_THAT(m, Contains("cuda"));
    CHECK_THROWS_AS(ones({2}).to(Device::cuda(0)), DeviceError);
    CHECK_THROWS_AS(rand({2}, Device::cuda(0)), DeviceError);
  } else {
    // A device index that does not exist.
    CHECK_THROWS_AS(zeros({2}, Device::cuda(1000)), DeviceError);
    CHECK_THAT(message_of([] { zeros({2}, Device::cuda(1000)); }), Contains("cuda:1000"));
    // Mixing devices names both.
    Tensor g = ones({2}, Device::cuda(0));
    const std::string m = message_of([&] { add(ones({2}), g); });
    CHECK_THAT(m, Contains("cpu"));
    CHECK_THAT(m, Contains("cuda:0"));
    CHECK_THROWS_AS(add(ones({2}), g), DeviceError);
    CHECK_THROWS_AS(matmul(ones({2, 2}), ones({2, 2}, Device::cuda(0))), DeviceError);
  }
  CHECK_THROWS_AS(zeros({2}, Device(DeviceType::CPU, 3)), DeviceError);
  CHECK_THROWS_AS(Device("tpu"), ValueError);
  CHECK_THAT(message_of([] { Device("tpu"); }), Contains("tpu"));
}

TEST_CASE("core errors: index errors say the valid range", "[core][errors]") {
  const Tensor x = ones({2, 3});
  std::string m = message_of([&] { x.select(1, 3); });
  CHECK_THAT(m, Contains("select"));
  CHECK_THAT(m, Contains("3"));
  CHECK_THROWS_AS(x.select(1, 3), IndexError);
  CHECK_THROWS_AS(x.select(0, -3), IndexError);
  CHECK_THROWS_AS(x[2], IndexError);
  CHECK_THROWS_AS(x.size(2), IndexError);
  CHECK_THROWS_AS(x.size(-3), IndexError);
  m = message_of([&] { x.transpose(0, 2); });
  CHECK_THAT(m, Contains("transpose"));
  CHECK_THAT(m, Contains("2"));
  CHECK_THROWS_AS(x.transpose(0, 2), IndexError);
  CHECK_THROWS_AS(x.narrow(1, 2, 2), IndexError);
  CHECK_THAT(message_of([&] { x.narrow(1, 2, 2); }), Contains("narrow"));
  CHECK_THROWS_AS(x.unsqueeze(3), IndexError);
  CHECK_THROWS_AS(x.squeeze(2), IndexError);
  CHECK_THROWS_AS(x.flatten(0, 2), IndexError);
  CHECK_THROWS_AS(x.permute({0, 2}), IndexError);
  CHECK_THROWS_AS(sum(x, {2}), IndexError);
  CHECK_THAT(message_of([&] { sum(x, {2}); }), Contains("sum"));
  CHECK_THROWS_AS(argmax(x, -3), IndexError);
  CHECK_THROWS_AS(softmax(x, 2), IndexError);
  CHECK_THROWS_AS(cat({x, x}, 2), IndexError);
}

TEST_CASE("core errors: dim arguments on a 0-dim tensor", "[core][errors]") {
  // A 0-dim tensor has no dim 0 to index into: size/stride/select/narrow/slice must throw
  // IndexError (PyTorch: "dimension specified as 0 but tensor has no dimensions"), not read
  // past the end of the (empty) shape.
  const Tensor s = scalar_tensor(1.0);
  CHECK_THROWS_AS(s.size(0), IndexError);
  CHECK_THROWS_AS(s.size(-1), IndexError);
  CHECK_THROWS_AS(s.stride(0), IndexError);
  CHECK_THROWS_AS(s.select(0, 0), IndexError);
  CHECK_THROWS_AS(s[0], IndexError);
  CHECK_THROWS_AS(s.narrow(0, 0, 1), IndexError);
  CHECK_THROWS_AS(s.slice(0, 0, 1), IndexError);
}

TEST_CASE("core errors: bad values and undefined tensors", "[core][errors]") {
  CHECK_THROWS_AS(empty({2, -1}), ValueError);
  CHECK_THAT(message_of([] { empty({2, -1}); }), Contains("[2, -1]"));
  CHECK_THROWS_AS(arange(0, 10, 0), ValueError);
  CHECK_THROWS_AS(ones({4}).slice(0, 0, 4, 0), ValueError);
  CHECK_THROWS_AS(clamp(ones({2}), 1.0, 0.0), ValueError);
  CHECK_THROWS_AS(randint(3, 3, {2}), ValueError);
  CHECK_THROWS_AS(cat({}, 0), ValueError);
  const Tensor u;
  CHECK_THROWS_AS(u.shape(), ValueError);
  CHECK_THROWS_AS(u.numel(), ValueError);
  CHECK_THROWS_AS(u.clone(), ValueError);
  CHECK_THROWS_AS(exp(u), ValueError);
  CHECK_THROWS_AS(sum(u), ValueError);
  CHECK_THROWS_AS(matmul(u, u), ValueError);
  CHECK_THROWS_AS(softmax(u, 0), ValueError);
  CHECK_THROWS_AS(ones({2}).copy_(u), ValueError);
  CHECK(u.str() == "tensor(undefined)");
  // Every one of these is a tessera::Error, so one catch handles all of them.
  int caught = 0;
  for (const std::function<void()>& f : std::vector<std::function<void()>>{
           [] { add(ones({2}), ones({3})); }, [] { ones({2}, kInt64).data_ptr<float>(); },
           [] { ones({2}).select(0, 5); }, [] { Device("x"); }, [] { ones({2}).view({3}); },
           [] { (ones({2}) * 2.0).backward(); }}) {
    try {
      f();
    } catch (const Error&) {
      ++caught;
    }
  }
  CHECK(caught == 6);
}
