// Learning-rate schedules as transformers' get_scheduler builds them (LambdaLR multipliers
// of the base rate, indexed by the number of optimizer steps already taken):
//   warmup (step < W):  step / max(1, W)
//   linear:    max(0, (N - step) / max(1, N - W))
//   cosine:    max(0, 0.5 (1 + cos(pi * progress))), progress = (step - W) / max(1, N - W)
//   constant:  1   (transformers' constant_with_warmup; with W = 0 it is plain constant)
// W = ceil(warmup_ratio * N), as TrainingArguments.get_warmup_steps computes it.
#pragma once
#include <cstdint>
#include <string>

namespace spinlm {

enum class ScheduleKind { kLinear, kCosine, kConstant };

// "linear", "cosine", "constant" (or "constant_with_warmup"); Error naming the value otherwise.
ScheduleKind parse_schedule(const std::string& name);

class LrSchedule {
 public:
  LrSchedule(ScheduleKind kind, double base_lr, int64_t total_steps, double warmup_ratio);

  // The learning rate for the optimizer step that follows `steps_taken` finished steps.
  double lr(int64_t steps_taken) const;
  double multiplier(int64_t steps_taken) const;
  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t total_steps() const { return total_steps_; }

 private:
  ScheduleKind kind_;
  double base_lr_;
  int64_t total_steps_;
  int64_t warmup_steps_;
};

}  // namespace spinlm
