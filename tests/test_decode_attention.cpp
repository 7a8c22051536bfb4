// The CPU attention kernel for one query position (model/decode_attention.h) against the
// textbook formula written with plain tensor ops here (keys/values repeated per query head
// as transformers' repeat_kv does, softmax in fp64), on the layouts the KV cache produces:
// keys narrowed out of a larger store (non-contiguous), masks that hide cache positions.
#include <gtest/gtest.h>

#include <limits>

#include "model/decode_attention.h"

namespace spinlm {
namespace {

// softmax(q k^T / sqrt(D) + mask) v with each key/value head repeated for its G query heads.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Hkv = k.size(1), G = H / Hkv;
  at::Tensor keys = k.to(at::kDouble).repeat_interleave(G, 1);    // [B, H, S, D]
  at::Tensor values = v.to(at::kDouble).repeat_interleave(G, 1);
  at::Tensor scores = at::matmul(q.to(at::kDouble), keys.transpose(-1, -2)) / std::sqrt(double(D)) +
                      mask.to(at::kDouble);                        // [B, H, 1, S]
  at::Tensor out = at::matmul(scores.softmax(-1), values);        // [B, H, 1, D]
  return out.reshape({B, H * D});
}

TEST(DecodeAttention, MatchesTheFormulaOnCacheLayouts) {
  at::manual_seed(5);
  const float lowest = std::numeric_limits<float>::lowest();
  struct Case {
    int64_t B, H, Hkv, D, S, store;
  };
  for (const Case& c : {Case{1, 4, 4, 8, 1, 4}, Case{3, 8, 2, 16, 37, 64}, Case{64, 14, 2, 64, 130, 200},
                        Case{2, 6, 3, 12, 9, 9}}) {
    SCOPED_TRACE("B " + std::to_string(c.B) + " H " + std::to_string(c.H) + " Hkv " + std::to_string(c.Hkv));
    at::Tensor q = at::randn({c.B, 1, c.H, c.D}).transpose(1, 2);  // [B, H, 1, D], as the model lays it out
    at::Tensor key_store = at::randn({c.B, c.Hkv, c.store, c.D});
    at::Tensor value_store = at::randn({c.B, c.Hkv, c.store, c.D});
    at::Tensor k = key_store.narrow(2, 0, c.S), v = value_store.narrow(2, 0, c.S);  // [B, Hkv, S, D]
    // Row b sees positions < its length; the rest hold garbage the mask must hide.
    at::Tensor lengths = at::randint(1, c.S + 1, {c.B, 1});
    at::Tensor allowed = at::arange(c.S).unsqueeze(0) < lengths;  // [B, S]
    at::Tensor mask = at::zeros({c.B, c.S}).masked_fill(allowed.logical_not(), lowest).view({c.B, 1, 1, c.S});
    ASSERT_TRUE(decode_attention_applies(q, k, v, mask));
    at::Tensor ours = decode_attention(q, k, v, mask);  // [B, H*D]
    at::Tensor expected = reference_attention(q, k, v, mask);
    EXPECT_LT((ours.to(at::kDouble) - expected).abs().max().item<double>(), 2e-5);
    // Garbage beyond a row's length changes nothing.
    key_store.narrow(2, 0, c.S).masked_fill_(allowed.logical_not().view({c.B, 1, c.S, 1}), 1e4);
    EXPECT_TRUE(at::allclose(decode_attention(q, k, v, mask), ours, 0, 0));
  }
}

TEST(DecodeAttention, AppliesOnlyWhereItShould) {
  at::Tensor q = at::randn({2, 4, 1, 8}), k = at::randn({2, 2, 5, 8}), v = at::randn({2, 2, 5, 8});
  at::Tensor mask = at::zeros({2, 1, 1, 5});
  EXPECT_TRUE(decode_attention_applies(q, k, v, mask));
  EXPECT_FALSE(decode_attention_applies(at::randn({2, 4, 3, 8}), k, v, at::zeros({2, 1, 3, 5})));  // T = 3
  EXPECT_FALSE(decode_attention_applies(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble), mask));
  EXPECT_FALSE(decode_attention_applies(q, k, v, at::Tensor()));
  at::Tensor trained = q.clone().requires_grad_(true);
  EXPECT_FALSE(decode_attention_applies(trained, k, v, mask));
  at::NoGradGuard no_grad;
  EXPECT_TRUE(decode_attention_applies(trained, k, v, mask));
}

}  // namespace
}  // namespace spinlm
