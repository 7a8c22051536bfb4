#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace spinlm {

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "linear") return ScheduleKind::kLinear;
  if (name == "cosine") return ScheduleKind::kCosine;
  if (name == "constant" || name == "constant_with_warmup") return ScheduleKind::kConstant;
  fail("unknown lr scheduler '", name, "' (expected linear, cosine or constant)");
}

LrSchedule::LrSchedule(ScheduleKind kind, double base_lr, int64_t total_steps, double warmup_ratio)
    : kind_(kind), base_lr_(base_lr), total_steps_(total_steps) {
  check(warmup_ratio >= 0 && warmup_ratio <= 1, "warmup ratio must be in [0, 1], got ", warmup_ratio);
  warmup_steps_ = static_cast<int64_t>(std::ceil(warmup_ratio * static_cast<double>(total_steps)));
}

double LrSchedule::multiplier(int64_t step) const {
  const double s = static_cast<double>(step);
  const double w = static_cast<double>(warmup_steps_);
  const double n = static_cast<double>(total_steps_);
  if (step < warmup_steps_) return s / std::max(1.0, w);
  switch (kind_) {
    case ScheduleKind::kLinear:
      return std::max(0.0, (n - s) / std::max(1.0, n - w));
    case ScheduleKind::kCosine: {
      const double progress = (s - w) / std::max(1.0, n - w);
      // transformers: 0.5 * (1 + cos(pi * num_cycles * 2 * progress)) with num_cycles 0.5.
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * progress)));
    }
    case ScheduleKind::kConstant:
      return 1.0;
  }
  return 1.0;
}

double LrSchedule::lr(int64_t steps_taken) const { return base_lr_ * multiplier(steps_taken); }

}  // namespace spinlm
