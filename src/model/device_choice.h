// Defaults for --device and --dtype where a command leaves them out (or says "auto"): a
// CUDA device when this libtorch has CUDA and a GPU is present, else the CPU; bf16 on a GPU,
// fp32 on the CPU (bf16 matmuls run ~90x slower than fp32 on the test CPUs).
//
// Per-rank choice: a process of a distributed job (torchrun's LOCAL_RANK, OpenMPI's
// OMPI_COMM_WORLD_LOCAL_RANK; the same variables dist/dist_env.h reads) takes the GPU of its
// local rank: "auto" and a bare "cuda" both mean cuda:<local rank> (cuda:0 outside a job).
// An explicit "cuda:N" is used as given.
//
// Explicit values go through parse_device / parse_dtype (model/device_options.h), so
// `--device cuda` on a CPU-only build fails with an Error that says why.
#pragma once
#include <string>

#include "core/torch_pch.h"

namespace spinlm {

at::ScalarType default_dtype(at::Device device);

// "" or "auto" -> the default; anything else -> parse_device / parse_dtype. A CUDA result
// always has an index, and choose_device makes it the process's current CUDA device (so that
// kernels and collectives without an explicit device land on it too); an Error names an index
// beyond the GPUs this process sees.
at::Device choose_device(const std::string& name);
// The same for a process with the given local rank (instead of the environment's).
at::Device choose_device(const std::string& name, int local_rank);
at::ScalarType choose_dtype(const std::string& name, at::Device device);

// The device name that name stands for on a process with this local rank: "" / "auto" ->
// "cuda:<local_rank>" when cuda_available, else "cpu"; "cuda" -> "cuda:<local_rank>" when
// cuda_available (else unchanged, for parse_device's error); anything else unchanged.
std::string device_name_for_rank(const std::string& name, bool cuda_available, int local_rank);

// This process's local rank in a distributed job: LOCAL_RANK when RANK or WORLD_SIZE is set
// (torchrun), else OMPI_COMM_WORLD_LOCAL_RANK when OMPI_COMM_WORLD_SIZE is set (mpirun), else
// 0. Unset local rank inside a job: 0. Error naming the variable when it is not a
// non-negative integer.
int local_rank_from_environment();

// --device / --dtype help, one wording for every command.
inline constexpr const char* kDeviceHelp =
    "auto, cpu, cuda or cuda:N (default auto: the GPU of this process's local rank when libtorch has CUDA and "
    "a GPU is visible, else cpu; a bare cuda also means the local rank's GPU)";
inline constexpr const char* kInferenceDtypeHelp = "auto, fp32, bf16 or fp16 (default auto: bf16 on a GPU, fp32 on cpu)";
inline constexpr const char* kTrainingDtypeHelp = "auto, fp32 or bf16 (default auto: bf16 on a GPU, fp32 on cpu)";

// The name a dtype goes by on the command line ("fp32", "bf16", "fp16", "fp64").
std::string dtype_option_name(at::ScalarType dtype);

}  // namespace spinlm
