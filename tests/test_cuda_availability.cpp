// The CUDA availability logic, without a GPU: the pure decision availability_reason() for
// each failure kind, architecture coverage, environment flags, and what this build reports.
#include <catch2/catch.hpp>

#include <string>

#include "tessera/backend.hpp"
#include "tessera/build_config.hpp"
#include "tessera/cuda.hpp"
#include "tessera/ops.hpp"

using namespace tessera;
using Catch::Matchers::Contains;

namespace {
cuda::AvailabilityProbe working_probe() {
  cuda::AvailabilityProbe p;
  p.built = true;
  p.driver_version = 13000;
  p.runtime_version = 13000;
  p.device_count = 1;
  p.compiled_architectures = "75-real,80-real,86-real,89-real,90";
  cuda::DeviceInfo d;
  d.name = "NVIDIA H200";
  d.cc_major = 9;
  d.cc_minor = 0;
  d.kernel_image_ok = true;
  p.devices.push_back(d);
  return p;
}
}  // namespace

TEST_CASE("cuda availability: a working stack is available", "[cuda][availability]") {
  REQUIRE(cuda::availability_reason(working_probe()).empty());
}

TEST_CASE("cuda availability: each failure kind has its own reason", "[cuda][availability]") {
  SECTION("not built") {
    auto p = working_probe();
    p.built = false;
    REQUIRE_THAT(cuda::availability_reason(p), Contains("built without the CUDA backend"));
  }
  SECTION("disabled by TESSERA_DISABLE_CUDA, checked before the driver") {
    auto p = working_probe();
    p.disabled_by_env = true;
    p.driver_version = 0;
    REQUIRE_THAT(cuda::availability_reason(p), Contains("TESSERA_DISABLE_CUDA"));
  }
  SECTION("no driver") {
    auto p = working_probe();
    p.driver_version = 0;
    p.count_error = 35;
    REQUIRE_THAT(cuda::availability_reason(p), Contains("no NVIDIA driver"));
  }
  SECTION("driver older than the runtime (older major)") {
    auto p = working_probe();
    p.driver_version = 12040;
    REQUIRE_THAT(cuda::availability_reason(p), Contains("supports CUDA 12.4") && Contains("runtime is 13.0"));
  }
  SECTION("driver older than the runtime (reported by cudaGetDeviceCount)") {
    auto p = working_probe();
    p.runtime_version = 13010;
    p.count_error = 35;
    REQUIRE_THAT(cuda::availability_reason(p), Contains("update the driver"));
  }
  SECTION("same major, older minor driver is fine (minor-version compatibility)") {
    auto p = working_probe();
    p.runtime_version = 13010;
    REQUIRE(cuda::availability_reason(p).empty());
  }
  SECTION("no device") {
    auto p = working_probe();
    p.count_error = 100;
    p.device_count = 0;
    p.devices.clear();
    REQUIRE_THAT(cuda::availability_reason(p), Contains("no CUDA device"));
  }
  SECTION("architecture not compiled") {
    auto p = working_probe();
    p.devices[0].cc_major = 7;
    p.devices[0].cc_minor = 0;
    p.devices[0].name = "Tesla V100";
    p.devices[0].kernel_image_ok = false;
    const std::string why = cuda::availability_reason(p);
    REQUIRE_THAT(why, Contains("architecture") && Contains("sm_70") && Contains("75-real"));
  }
  SECTION("another CUDA error is reported with its text") {
    auto p = working_probe();
    p.count_error = 999;
    p.count_error_text = "cudaErrorUnknown: unknown error";
    REQUIRE_THAT(cuda::availability_reason(p), Contains("unknown error"));
  }
}

TEST_CASE("cuda availability: architecture coverage rules", "[cuda][availability]") {
  const std::string def = "75-real;80-real;86-real;89-real;90";
  REQUIRE(cuda::arch_covered(7, 5, def));
  REQUIRE(cuda::arch_covered(8, 0, def));
  REQUIRE(cuda::arch_covered(8, 7, def));    // sm_86 SASS runs on 8.7
  REQUIRE(cuda::arch_covered(9, 0, def));
  REQUIRE(cuda::arch_covered(10, 0, def));   // compute_90 PTX JIT on Blackwell
  REQUIRE_FALSE(cuda::arch_covered(7, 0, def));
  REQUIRE_FALSE(cuda::arch_covered(6, 1, def));
  REQUIRE_FALSE(cuda::arch_covered(9, 0, "80-real,86-real"));  // SASS does not cross majors
  REQUIRE(cuda::arch_covered(9, 0, "80-virtual"));               // PTX does
  REQUIRE_FALSE(cuda::arch_covered(8, 6, "90"));                 // nothing runs on older GPUs
  REQUIRE(cuda::arch_covered(8, 6, "native"));
  REQUIRE(cuda::arch_covered(9, 0, "90a-real"));
}

TEST_CASE("cuda availability: environment flag values", "[cuda][availability]") {
  REQUIRE(cuda::env_flag_true("1"));
  REQUIRE(cuda::env_flag_true("TRUE"));
  REQUIRE(cuda::env_flag_true("yes"));
  REQUIRE(cuda::env_flag_true("On"));
  REQUIRE_FALSE(cuda::env_flag_true("0"));
  REQUIRE_FALSE(cuda::env_flag_true(""));
  REQUIRE_FALSE(cuda::env_flag_true(nullptr));
  REQUIRE_FALSE(cuda::env_flag_true("off"));
}

TEST_CASE("cuda availability: this process", "[cuda][availability]") {
  REQUIRE(cuda::is_built() == (TESSERA_WITH_CUDA_BUILD != 0));
  // Settings work in every build.
  cuda::set_allow_tf32(true);
  REQUIRE(cuda::allow_tf32());
  CHECK(cuda::allow_tf32_matmul());
  CHECK(cuda::allow_tf32_cudnn());
  cuda::set_allow_tf32(false);
  REQUIRE_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32_cudnn(true);  // separate flags
  CHECK(cuda::allow_tf32_cudnn());
  CHECK_FALSE(cuda::allow_tf32_matmul());
  CHECK_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32_cudnn(false);
  cuda::set_allow_tf32_matmul(true);
  CHECK(cuda::allow_tf32_matmul());
  CHECK_FALSE(cuda::allow_tf32_cudnn());
  cuda::set_allow_tf32_matmul(false);
  cuda::set_gemm_impl(cuda::GemmImpl::Tiled);
  REQUIRE(cuda::gemm_impl() == cuda::GemmImpl::Tiled);
  cuda::set_gemm_impl(cuda::GemmImpl::Cublas);
  if (cuda::is_available()) {
    REQUIRE(cuda::unavailable_reason().empty());
    REQUIRE(cuda::device_count() >= 1);
    return;
  }
  // Not available (this is the case on machines without a GPU): a reason, no devices,
  // zero statistics, no-op synchronize, and a CUDA tensor is a DeviceError naming the reason.
  const std::string why = cuda::unavailable_reason();
  INFO("reason: " << why);
  REQUIRE_FALSE(why.empty());
  REQUIRE(cuda::device_count() == 0);
  REQUIRE(cuda::memory_stats().num_device_mallocs == 0);
  REQUIRE_NOTHROW(cuda::synchronize());
  REQUIRE_NOTHROW(cuda::empty_cache());
  REQUIRE_THROWS_AS(zeros({2}, Device::cuda()), DeviceError);
  try {
    (void)zeros({2}, Device::cuda());
  } catch (const DeviceError& e) {
    REQUIRE_THAT(std::string(e.what()), Contains(why.substr(0, 20)));
  }
  if (cuda::is_built()) {
    // The backend is registered even when unusable (the object file was not dropped).
    REQUIRE(find_backend(DeviceType::CUDA) != nullptr);
    REQUIRE_FALSE(find_backend(DeviceType::CUDA)->is_available());
    REQUIRE(find_backend(DeviceType::CUDA)->unavailable_reason() == why);
  }
}
