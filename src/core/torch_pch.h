// Precompiled header shared by every target: the parts of libtorch spinlm uses.
// ATen for tensors and ops, autograd for backward and grad mode. torch/torch.h (the C++
// frontend) is deliberately not included: it triples the compile time of every file.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
