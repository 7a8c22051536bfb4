#include "model/device_choice.h"

#include <ATen/Context.h>

#include "core/error.h"
#include "model/device_options.h"

namespace spinlm {

at::Device default_device() {
  // hasCUDA: this libtorch was built with CUDA and at least one GPU is visible.
  return at::hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
}

at::ScalarType default_dtype(at::Device device) { return device.is_cuda() ? at::kBFloat16 : at::kFloat; }

at::Device choose_device(const std::string& name) {
  if (name.empty() || name == "auto") return default_device();
  return parse_device(name);
}

at::ScalarType choose_dtype(const std::string& name, at::Device device) {
  if (name.empty() || name == "auto") return default_dtype(device);
  return parse_dtype(name);
}

std::string dtype_option_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "fp32";
    case at::kBFloat16: return "bf16";
    case at::kHalf: return "fp16";
    case at::kDouble: return "fp64";
    default: fail("unsupported dtype ", c10::toString(dtype));
  }
}

}  // namespace spinlm
