#include "train/optimizer.h"

#include <cmath>

#include "core/error.h"
#include "io/safetensors.h"

namespace spinlm {

namespace {

at::ScalarType parse_state_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  fail("optimizer state dtype '", name, "': expected fp32 or bf16 (--optimizer-state-dtype)");
}

}  // namespace

Optimizer::Optimizer(std::vector<at::Tensor> params, OptimizerOptions options)
    : params_(std::move(params)), options_(std::move(options)) {
  check(options_.kind == "rmsprop" || options_.kind == "adamw", "unknown optimizer '",
        options_.kind, "' (expected rmsprop or adamw)");
  const at::ScalarType requested = parse_state_dtype(options_.state_dtype);
  for (const at::Tensor& p : params_) {
    // fp64 parameters (gradient checks) keep fp64 state; state lives on the parameter's device.
    const at::ScalarType type = p.scalar_type() == at::kDouble ? at::kDouble : requested;
    const auto state_options = at::TensorOptions().dtype(type);
    second_.push_back(at::zeros_like(p, state_options, at::MemoryFormat::Preserve));
    if (options_.kind == "adamw") first_.push_back(at::zeros_like(p, state_options, at::MemoryFormat::Preserve));
    const bool low_precision = p.scalar_type() != at::kFloat && p.scalar_type() != at::kDouble;
    master_.push_back(requested == at::kFloat && low_precision ? p.detach().to(at::kFloat) : at::Tensor());
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
    // The update runs in fp32 (fp64 for fp64 parameters) on w: the fp32 master copy when
    // there is one, else the parameter itself (or an fp32 copy of a bf16 one). State kept in
    // bf16 is widened here and rounded back below. For fp32 parameters and state every .to()
    // is a no-op and the update is in place, exactly as before.
    const at::Tensor& master = master_[i];
    const at::ScalarType compute = p.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    at::Tensor w = master.defined() ? master : p.to(compute);
    at::Tensor g = p.grad().to(compute);
    at::Tensor v = second_[i].to(compute);
    at::Tensor m = options_.kind == "adamw" ? first_[i].to(compute) : at::Tensor();
    if (options_.kind == "rmsprop") {
      if (options_.weight_decay != 0) g = g.add(w, options_.weight_decay);
      v.mul_(options_.alpha).addcmul_(g, g, 1.0 - options_.alpha);
      at::Tensor denom = v.sqrt().add_(options_.eps);
      w.addcdiv_(g, denom, -lr);
    } else {
      w.mul_(1.0 - lr * options_.weight_decay);
      // As torch 1.13 (torch >= 2.0 uses lerp_, equal up to rounding).
      m.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
      v.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
      const double bias1 = 1.0 - std::pow(options_.beta1, t);
      const double bias2 = 1.0 - std::pow(options_.beta2, t);
      const double step_size = lr / bias1;
      at::Tensor denom = (v.sqrt() / std::sqrt(bias2)).add_(options_.eps);
      w.addcdiv_(m, denom, -step_size);
      if (!m.is_same(first_[i])) first_[i].copy_(m);
    }
    if (!v.is_same(second_[i])) second_[i].copy_(v);
    if (!w.is_same(p)) p.copy_(w);  // round the fp32 weights into the bf16 parameter
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
    if (master_[i].defined()) out.emplace_back(prefix + "master", master_[i]);
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
