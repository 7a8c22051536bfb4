// Every libtorch-version and backend difference of the c10d layer that spinlm uses, in one
// place (the src/dist counterpart of core/torch_compat.h).
//
// - libtorch 1.13 (Debian, CPU): ProcessGroupGloo derives from c10d::ProcessGroup.
//   libtorch 2.x: ProcessGroupGloo/ProcessGroupNCCL derive from c10d::Backend; both keep
//   broadcast/allreduce/barrier with the signatures used here.
// - NCCL exists only where the libtorch build defines USE_C10D_NCCL (CUDA builds). Debian's
//   CPU build ships ProcessGroupNCCL.hpp but not the library code, so the header alone is
//   no evidence: the macro decides.
#pragma once
#include "core/torch_compat.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define SPINLM_HAVE_NCCL 1
#else
#define SPINLM_HAVE_NCCL 0
#endif

namespace spinlm::c10d_compat {

#if SPINLM_TORCH2
using Group = ::c10d::Backend;
#else
using Group = ::c10d::ProcessGroup;
#endif

}  // namespace spinlm::c10d_compat
