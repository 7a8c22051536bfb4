#include "model/device_choice.h"

#include <ATen/Context.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <cstdlib>

#include "core/error.h"
#include "model/device_options.h"

namespace spinlm {
namespace {

bool is_auto(const std::string& name) { return name.empty() || name == "auto"; }

// The variable's value as a non-negative integer; nullopt when it is unset.
std::optional<int> local_rank_variable(const char* variable) {
  const char* text = std::getenv(variable);
  if (text == nullptr) return std::nullopt;
  const std::string value = text;
  size_t used = 0;
  long parsed = -1;
  try {
    parsed = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used > 0 && used == value.size() && parsed >= 0 && parsed < 1024, "environment variable ", variable,
        " must be a non-negative integer (the process's local rank), got \"", value, "\"");
  return static_cast<int>(parsed);
}

// A CUDA device becomes the process's current one: libtorch otherwise creates contexts,
// streams and NCCL communicators on cuda:0 for work that does not name a device.
void make_current(at::Device device) {
  if (!device.is_cuda()) return;  // never true on a CPU-only build: parse_device refuses cuda there
  const c10::impl::DeviceGuardImplInterface* cuda = c10::impl::getDeviceGuardImpl(at::kCUDA);
  const int count = cuda->deviceCount();
  check(device.index() < count, "--device ", device.str(), ": this process sees ", count, " GPU",
        count == 1 ? "" : "s", " (CUDA_VISIBLE_DEVICES); in a distributed job auto and cuda mean cuda:LOCAL_RANK, "
        "so with one GPU visible per process give --device cuda:0");
  cuda->setDevice(device);
}

}  // namespace

at::ScalarType default_dtype(at::Device device) { return device.is_cuda() ? at::kBFloat16 : at::kFloat; }

std::string device_name_for_rank(const std::string& name, bool cuda_available, int local_rank) {
  check(local_rank >= 0, "local rank ", local_rank, " is negative");
  const std::string rank_gpu = "cuda:" + std::to_string(local_rank);
  if (is_auto(name)) return cuda_available ? rank_gpu : "cpu";
  if (name == "cuda" && cuda_available) return rank_gpu;
  return name;
}

int local_rank_from_environment() {
  if (std::getenv("RANK") != nullptr || std::getenv("WORLD_SIZE") != nullptr)
    return local_rank_variable("LOCAL_RANK").value_or(0);
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr)
    return local_rank_variable("OMPI_COMM_WORLD_LOCAL_RANK").value_or(0);
  return 0;
}

at::Device choose_device(const std::string& name, int local_rank) {
  const at::Device device = parse_device(device_name_for_rank(name, at::hasCUDA(), local_rank));
  make_current(device);
  return device;
}

at::Device choose_device(const std::string& name) {
  // The environment only matters where the name leaves the GPU open.
  const bool needs_rank = (is_auto(name) || name == "cuda") && at::hasCUDA();
  return choose_device(name, needs_rank ? local_rank_from_environment() : 0);
}

at::ScalarType choose_dtype(const std::string& name, at::Device device) {
  if (is_auto(name)) return default_dtype(device);
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
