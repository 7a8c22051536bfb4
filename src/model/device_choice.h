// Defaults for --device and --dtype where a command leaves them out (or says "auto"): the
// first CUDA device when this libtorch has one and a GPU is present, else the CPU; bf16 on
// a GPU, fp32 on the CPU (bf16 matmuls run ~90x slower than fp32 on the test CPUs).
// Explicit values go through parse_device / parse_dtype (model/device_options.h), so
// `--device cuda` on a CPU-only build fails with an Error that says why.
#pragma once
#include <string>

#include "core/torch_pch.h"

namespace spinlm {

at::Device default_device();
at::ScalarType default_dtype(at::Device device);

// "" or "auto" -> the default; anything else -> parse_device / parse_dtype.
at::Device choose_device(const std::string& name);
at::ScalarType choose_dtype(const std::string& name, at::Device device);

// The name a dtype goes by on the command line ("fp32", "bf16", "fp16", "fp64").
std::string dtype_option_name(at::ScalarType dtype);

}  // namespace spinlm
