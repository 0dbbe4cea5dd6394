#pragma once
// splitmix64 (Steele, Lea & Flood 2014): the mixing function behind the executor's counter-based draws
// (weight initialisation, dropout masks), a pure function of its input.
#include <cstdint>

namespace paraplan::exec {

inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace paraplan::exec
