// "No limit" has one spelling: kNoLimit in every option and setting that caps a count of rows,
// documents or samples, and null (or an absent key) in recipes and recorded JSON. A limit
// that is set is positive.
#pragma once
#include <cstdint>

namespace spinlm {

constexpr int64_t kNoLimit = -1;

inline bool has_limit(int64_t limit) { return limit != kNoLimit; }

}  // namespace spinlm
