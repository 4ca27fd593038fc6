// A small, fast, seedable random source; one per worker thread, injected so tests are repeatable.
#pragma once

#include <cstdint>
#include <random>

namespace printerfacts {

/// splitmix64: statistically fine for picking a fact, 8 bytes of state, not for cryptography.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}

  /// Seeded from the operating system's entropy.
  static Random from_entropy() {
    std::random_device rd;
    return Random((std::uint64_t{rd()} << 32) ^ rd());
  }

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  /// A value in [0, n); n must be > 0. Lemire's multiply-shift, bias below 2^-32 for small n.
  std::size_t below(std::size_t n) {
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::size_t>((static_cast<u128>(next()) * n) >> 64);
  }

 private:
  std::uint64_t state_;
};

}  // namespace printerfacts
