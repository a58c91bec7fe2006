#include <catch2/catch.hpp>

#include "tessera/deterministic.hpp"
#include "tessera/error.hpp"

using namespace tessera;

TEST_CASE("deterministic mode: off by default; alert_not_deterministic throws only when on", "[core][deterministic]") {
  REQUIRE_FALSE(deterministic());
  CHECK_NOTHROW(alert_not_deterministic("index_add", "float atomicAdd"));
  set_deterministic(true);
  CHECK(deterministic());
  try {
    alert_not_deterministic("index_add", "float atomicAdd into shared rows");
    FAIL("no exception");
  } catch (const UnsupportedError& e) {
    CHECK(std::string(e.what()) == "index_add: has no deterministic implementation (float atomicAdd into shared rows); set_deterministic(true) is on");
  }
  set_deterministic(false);
  CHECK_FALSE(deterministic());
}
