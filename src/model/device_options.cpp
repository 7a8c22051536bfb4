#include "model/device_options.h"

#include <ATen/Context.h>

#include "core/error.h"

namespace spinlm {

at::Device parse_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    check(at::hasCUDA(), "--device ", name, ": this spinlm was built against a libtorch without CUDA");
    try {
      return at::Device(name);
    } catch (const c10::Error&) {
      fail("--device ", name, ": expected cpu, cuda or cuda:N");
    }
  }
  fail("--device ", name, ": expected cpu, cuda or cuda:N");
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp16" || name == "float16") return at::kHalf;
  fail("--dtype ", name, ": expected fp32, bf16 or fp16");
}

}  // namespace spinlm
