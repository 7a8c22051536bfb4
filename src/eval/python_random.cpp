#include "eval/python_random.h"

#include <cmath>
#include <unordered_set>

#include "core/error.h"

namespace spinlm {

PythonRandom::PythonRandom(uint64_t seed) {
  // CPython's random_seed: the absolute value of the integer split into 32-bit words,
  // least significant first (zero becomes the one-word key [0]).
  std::vector<uint32_t> key;
  do {
    key.push_back(static_cast<uint32_t>(seed & 0xffffffffu));
    seed >>= 32;
  } while (seed != 0);
  init_by_array(key);
}

void PythonRandom::init_genrand(uint32_t seed) {
  state_[0] = seed;
  for (int i = 1; i < 624; ++i) {
    state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
  index_ = 624;
}

// The reference MT19937 init_by_array (Matsumoto and Nishimura, 2002), as CPython uses it.
void PythonRandom::init_by_array(const std::vector<uint32_t>& key) {
  init_genrand(19650218u);
  int i = 1;
  size_t j = 0;
  const size_t key_length = key.size();
  for (size_t k = (624 > key_length ? 624 : key_length); k > 0; --k) {
    state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1664525u)) + key[j] +
                static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= 624) {
      state_[0] = state_[623];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = 623; k > 0; --k) {
    state_[i] = (state_[i] ^ ((state_[i - 1] ^ (state_[i - 1] >> 30)) * 1566083941u)) -
                static_cast<uint32_t>(i);
    ++i;
    if (i >= 624) {
      state_[0] = state_[623];
      i = 1;
    }
  }
  state_[0] = 0x80000000u;  // the most significant bit set: a non-zero initial state
  index_ = 624;
}

uint32_t PythonRandom::next_word() {
  constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrix = 0x9908b0dfu;
  if (index_ >= 624) {
    for (int k = 0; k < 624; ++k) {
      const uint32_t y = (state_[k] & kUpper) | (state_[(k + 1) % 624] & kLower);
      state_[k] = state_[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? kMatrix : 0u);
    }
    index_ = 0;
  }
  uint32_t y = state_[index_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

uint32_t PythonRandom::getrandbits(int k) {
  check(k >= 0 && k <= 32, "getrandbits: k must be in [0, 32], got ", k);
  if (k == 0) return 0;
  return next_word() >> (32 - k);
}

uint64_t PythonRandom::randbelow(uint64_t n) {
  check(n >= 1 && n <= 0xffffffffull, "randbelow: n must be in [1, 2^32], got ", n);
  int bits = 0;
  for (uint64_t v = n; v != 0; v >>= 1) ++bits;  // n.bit_length(), not of n - 1
  uint64_t r = getrandbits(bits);
  while (r >= n) r = getrandbits(bits);
  return r;
}

double PythonRandom::random() {
  const uint32_t a = next_word() >> 5, b = next_word() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

std::vector<int64_t> PythonRandom::sample(int64_t n, int64_t k) {
  check(k >= 0 && k <= n, "sample larger than population or negative: k=", k, " n=", n);
  std::vector<int64_t> result(static_cast<size_t>(k));
  // CPython sizes a set against a list to pick the cheaper algorithm; the choice changes
  // which random numbers are drawn, so it must be the same.
  int64_t setsize = 21;
  if (k > 5) setsize += static_cast<int64_t>(std::pow(4.0, std::ceil(std::log(k * 3.0) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<int64_t> pool(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pool[i] = i;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = static_cast<int64_t>(randbelow(static_cast<uint64_t>(n - i)));
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<int64_t> selected;
    for (int64_t i = 0; i < k; ++i) {
      int64_t j = static_cast<int64_t>(randbelow(static_cast<uint64_t>(n)));
      while (selected.count(j)) j = static_cast<int64_t>(randbelow(static_cast<uint64_t>(n)));
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

}  // namespace spinlm
