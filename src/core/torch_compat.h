// Every difference between the libtorch versions spinlm builds against (Debian's 1.13 on
// CPU, 2.x from a PyTorch install for CUDA) lives in this header and nowhere else.
#pragma once
#include "core/torch_pch.h"

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif

#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
#define SPINLM_TORCH2 1
#else
#define SPINLM_TORCH2 0
#endif
