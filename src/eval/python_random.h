// Python's random.Random, bit for bit, for the parts the evaluation harness uses: the
// few-shot sampler draws with random.Random(1234).sample(docs, k), so reproducing the
// harness's prompts needs the same Mersenne Twister seeding (init_by_array of the seed's
// 32-bit words), the same getrandbits and the same random.sample algorithm (a pool swap for
// small populations, rejection of repeats from a set for large ones).
#pragma once
#include <cstdint>
#include <vector>

namespace spinlm {

class PythonRandom {
 public:
  // random.Random(seed) for a non-negative integer seed.
  explicit PythonRandom(uint64_t seed);

  // random.getrandbits(k) for 0 <= k <= 32.
  uint32_t getrandbits(int k);
  // random._randbelow(n): uniform in [0, n), n >= 1 (rejection sampling on bit_length(n) bits).
  uint64_t randbelow(uint64_t n);
  // The indices random.sample(range(n), k) returns, in order (k <= n).
  std::vector<int64_t> sample(int64_t n, int64_t k);
  // random.random(): 53-bit float in [0, 1).
  double random();

 private:
  uint32_t next_word();
  void init_genrand(uint32_t seed);
  void init_by_array(const std::vector<uint32_t>& key);

  uint32_t state_[624];
  int index_ = 625;
};

}  // namespace spinlm
