// --device / --dtype option values for commands that run a model.
#pragma once
#include <string>

#include "core/torch_pch.h"

namespace spinlm {

// "cpu", "cuda", "cuda:N" -> at::Device; an Error names the value otherwise (and says so
// when this libtorch was built without CUDA).
at::Device parse_device(const std::string& name);
// "fp32"/"float32", "bf16"/"bfloat16", "fp16"/"float16" -> at::ScalarType.
at::ScalarType parse_dtype(const std::string& name);

}  // namespace spinlm
