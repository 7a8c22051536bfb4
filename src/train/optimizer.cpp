#include "train/optimizer.h"

#include <cmath>

#include "core/error.h"
#include "io/safetensors.h"

namespace spinlm {

Optimizer::Optimizer(std::vector<at::Tensor> params, OptimizerOptions options)
    : params_(std::move(params)), options_(std::move(options)) {
  check(options_.kind == "rmsprop" || options_.kind == "adamw", "unknown optimizer '",
        options_.kind, "' (expected rmsprop or adamw)");
  for (const at::Tensor& p : params_) {
    second_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
    if (options_.kind == "adamw") first_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
  }
}

void Optimizer::zero_grad() {
  for (at::Tensor& p : params_) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
}

void Optimizer::step(double lr) {
  at::NoGradGuard no_grad;
  ++step_count_;
  const double t = static_cast<double>(step_count_);
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad();
    at::Tensor& v = second_[i];
    if (options_.kind == "rmsprop") {
      if (options_.weight_decay != 0) g = g.add(p, options_.weight_decay);
      v.mul_(options_.alpha).addcmul_(g, g, 1.0 - options_.alpha);
      at::Tensor denom = v.sqrt().add_(options_.eps);
      p.addcdiv_(g, denom, -lr);
    } else {
      at::Tensor& m = first_[i];
      p.mul_(1.0 - lr * options_.weight_decay);
      // As torch 1.13 (torch >= 2.0 uses lerp_, equal up to rounding).
      m.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
      v.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
      const double bias1 = 1.0 - std::pow(options_.beta1, t);
      const double bias2 = 1.0 - std::pow(options_.beta2, t);
      const double step_size = lr / bias1;
      at::Tensor denom = (v.sqrt() / std::sqrt(bias2)).add_(options_.eps);
      p.addcdiv_(m, denom, -step_size);
    }
  }
}

std::vector<std::pair<std::string, at::Tensor>> Optimizer::state_tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string prefix = "state." + std::to_string(i) + ".";
    if (options_.kind == "rmsprop") {
      out.emplace_back(prefix + "square_avg", second_[i]);
    } else {
      out.emplace_back(prefix + "exp_avg", first_[i]);
      out.emplace_back(prefix + "exp_avg_sq", second_[i]);
    }
  }
  out.emplace_back("step", at::full({1}, step_count_, at::kLong));
  return out;
}

void Optimizer::save_state(const std::string& path) const {
  write_safetensors(path, state_tensors(), {{"format", "pt"}, {"optimizer", options_.kind}});
}

void Optimizer::load_state(const std::string& path) {
  SafetensorsFile file(path);
  auto kind = file.metadata().find("optimizer");
  check(kind != file.metadata().end() && kind->second == options_.kind, path,
        ": optimizer state is not for '", options_.kind,
        "' (resume with the optimizer the run started with)");
  at::NoGradGuard no_grad;
  for (auto& [name, tensor] : state_tensors()) {
    check(file.contains(name), path, ": optimizer state lacks tensor '", name, "'");
    if (name == "step") {
      step_count_ = file.tensor(name, at::kLong).item<int64_t>();
      continue;
    }
    at::Tensor saved = file.tensor(name, tensor.scalar_type(), tensor.device());
    check(saved.sizes() == tensor.sizes(), path, ": optimizer state '", name, "' has shape ",
          saved.sizes(), ", the model needs ", tensor.sizes());
    const_cast<at::Tensor&>(tensor).copy_(saved);  // tensor shares storage with the state
  }
}

}  // namespace spinlm
