#include "generate/sampler.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "generate/host_sampling.h"
#include "generate/sort_rows.h"

namespace spinlm {
namespace {

constexpr double kMinusInfinity = -std::numeric_limits<double>::infinity();

// splitmix64's finaliser: a bijection on 64 bits with full avalanche.
uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void SamplingOptions::validate() const {
  check(std::isfinite(temperature) && temperature >= 0, "--temperature must be >= 0 (0 means greedy), got ",
        temperature);
  check(top_k >= 0, "--top-k must be >= 0 (0 turns it off), got ", top_k);
  check(top_p >= 0 && top_p <= 1, "--top-p must be in [0, 1] (1 turns it off), got ", top_p);
  check(min_p >= 0 && min_p <= 1, "--min-p must be in [0, 1] (0 turns it off), got ", min_p);
}

at::Tensor apply_temperature(const at::Tensor& scores, double temperature) {
  return scores / temperature;
}

at::Tensor apply_top_k(const at::Tensor& scores, int64_t top_k) {
  int64_t k = std::min<int64_t>(std::max<int64_t>(top_k, 1), scores.size(-1));
  at::Tensor kth = std::get<0>(at::topk(scores, k, -1)).narrow(-1, k - 1, 1);  // [B, 1]
  return scores.masked_fill(scores < kth, kMinusInfinity);
}

at::Tensor apply_top_p(const at::Tensor& scores, double top_p) {
  // Ascending order: the tail of least likely tokens whose mass is <= 1 - top_p goes.
  // [B, V] each; on the CPU an O(V) radix sort (generate/sort_rows.h) in the same order.
  auto [sorted, order] = sort_rows_applies(scores)
                            ? std::tuple<at::Tensor, at::Tensor>(sort_rows_ascending(scores))
                            : at::sort(scores, /*stable=*/true, -1, /*descending=*/false);
  at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
  at::Tensor remove_sorted = cumulative <= (1 - top_p);
  remove_sorted.narrow(-1, scores.size(-1) - 1, 1).fill_(false);  // keep the most likely
  at::Tensor remove = remove_sorted.scatter(-1, order, remove_sorted);
  return scores.masked_fill(remove, kMinusInfinity);
}

at::Tensor apply_min_p(const at::Tensor& scores, double min_p) {
  at::Tensor probs = scores.softmax(-1);               // [B, V]
  at::Tensor top = probs.amax(-1, /*keepdim=*/true);   // [B, 1]
  at::Tensor remove = probs < top * min_p;
  // The most likely token always stays (it cannot fall below min_p * itself anyway).
  remove.scatter_(-1, probs.argmax(-1, /*keepdim=*/true), false);
  return scores.masked_fill(remove, kMinusInfinity);
}

at::Tensor filter_logits(const at::Tensor& logits, const SamplingOptions& options) {
  at::Tensor scores = logits;
  if (options.temperature != 1.0) scores = apply_temperature(scores, options.temperature);
  if (options.top_k != 0) scores = apply_top_k(scores, options.top_k);
  if (options.top_p < 1.0) scores = apply_top_p(scores, options.top_p);
  if (options.min_p > 0.0) scores = apply_min_p(scores, options.min_p);
  return scores;
}

at::Tensor sampling_distribution(const at::Tensor& logits, const SamplingOptions& options) {
  if (options.is_greedy()) {
    at::Tensor one_hot = at::zeros(logits.sizes(), logits.options().dtype(at::kDouble));
    return one_hot.scatter_(-1, logits.argmax(-1, /*keepdim=*/true), 1.0);
  }
  return filter_logits(logits.to(at::kFloat), options).to(at::kDouble).softmax(-1);
}

double counter_uniform(uint64_t seed, uint64_t row, uint64_t step) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ row);
  h = splitmix64(h ^ (step * 0xd1b54a32d192ed03ULL));
  return static_cast<double>(h >> 11) * 0x1.0p-53;  // 53 random bits -> [0, 1)
}

at::Tensor sample_ids(const at::Tensor& logits, const SamplingOptions& options, const at::Tensor& uniforms) {
  if (options.is_greedy()) return logits.argmax(-1);
  const int64_t vocab = logits.size(-1);
  at::Tensor probs = sampling_distribution(logits, options);  // [B, V] fp64
  at::Tensor cdf = probs.cumsum(-1);
  at::Tensor target = (uniforms.to(at::kDouble) * cdf.select(-1, vocab - 1)).unsqueeze(-1);  // [B, 1]
  // First token whose cumulative probability exceeds u * total: filtered tokens add no
  // mass, so they never are that token.
  at::Tensor ids = at::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).squeeze(-1);  // [B]
  // u * total rounded up to the total gives V: the last token with mass instead. (Its index
  // is the largest i with p_i > 0; computed for every row, kept only where needed.)
  at::Tensor positions = at::arange(vocab, ids.options());                          // [V]
  at::Tensor last_with_mass = (probs > 0).to(at::kLong).mul(positions).amax(-1);    // [B]
  return at::minimum(ids, last_with_mass);
}

std::vector<int64_t> sample_tokens(const at::Tensor& logits, const SamplingOptions& options,
                                   const std::vector<double>& uniforms) {
  check(logits.dim() == 2 && logits.size(0) == static_cast<int64_t>(uniforms.size()),
        "sample_tokens: logits must be [B, V] with one uniform per row");
  const int64_t rows = logits.size(0);
  if (!options.is_greedy() && logits.device().is_cpu()) {
    return sample_rows_on_host(filter_logits(logits.to(at::kFloat), options), uniforms);
  }
  // Elsewhere: the draw on the logits' device, no [B, V] copy to the host.
  at::Tensor u = at::tensor(uniforms, at::TensorOptions().dtype(at::kDouble)).to(logits.device());
  at::Tensor ids = sample_ids(logits, options, u).to(at::kCPU).contiguous();
  return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + rows);
}

}  // namespace spinlm
