// Counter-based random numbers (Philox4x32-10), identical on every device: element i of a
// tensor drawn with (seed, offset) depends only on seed, offset and i.
// Source: Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011.
#pragma once
#include <cstdint>

#include "tessera/host_device.hpp"

namespace tessera {

struct Philox4x32 {
  uint32_t v[4];
};

/// Philox4x32-10 of counter (c0..c3) under key (k0, k1).
TESSERA_HOST_DEVICE inline Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                                    uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(M0) * c0;
    uint64_t p1 = uint64_t(M1) * c2;
    uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += W0; k1 += W1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

/// Four 32-bit random words for 64-bit counter `counter` of stream (seed, offset).
TESSERA_HOST_DEVICE inline Philox4x32 philox_block(uint64_t seed, uint64_t offset, uint64_t counter) {
  uint64_t c = counter + offset;
  return philox4x32_10(uint32_t(c), uint32_t(c >> 32), 0u, 0u, uint32_t(seed), uint32_t(seed >> 32));
}

/// Uniform in [0, 1) with 24 bits (float) from one word.
TESSERA_HOST_DEVICE inline float uint_to_unit_float(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }
/// Uniform in [0, 1) with 53 bits from two words.
TESSERA_HOST_DEVICE inline double uint2_to_unit_double(uint32_t a, uint32_t b) {
  uint64_t x = (uint64_t(a) << 32 | b) >> 11;
  return double(x) * (1.0 / 9007199254740992.0);
}

// Element i of a draw uses block (seed, offset + i): one counter per element, so a draw of
// n elements advances the generator's offset by n (see Backend::random for the formulas).

/// The default generator: a seed and an offset that advances with every draw.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  void manual_seed(uint64_t seed) { seed_ = seed; offset_ = 0; }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  /// Restores a state read with seed() and offset(): the draws that follow are the ones
  /// that followed when it was read (checkpoints save it). One generator serves every
  /// device: a draw's values depend only on (seed, offset, element index), not the device.
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  /// Reserves `counters` Philox counters and returns the offset of the first.
  uint64_t advance(uint64_t counters) { uint64_t o = offset_; offset_ += counters; return o; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The process-wide default generator (not thread-safe: seed it once, draw from one thread).
Generator& default_generator();
/// Seeds the default generator, as torch.manual_seed.
void manual_seed(uint64_t seed);

}  // namespace tessera
