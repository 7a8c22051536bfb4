// Where a process sits in a data-parallel job, read from the environment the way torchrun
// and OpenMPI's mpirun describe it:
//   torchrun / spinlm launch: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//   mpirun (OpenMPI):         OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
//                             OMPI_COMM_WORLD_LOCAL_RANK (MASTER_ADDR/PORT still name rank 0's
//                             host; they default to 127.0.0.1:29500, right for one machine)
//   SPINLM_DIST_TIMEOUT: seconds a collective may wait for the other ranks (default 300);
//   SPINLM_DIST_BACKEND: gloo | nccl | auto (default auto: nccl for CUDA devices when built in).
// RANK/WORLD_SIZE win over the OMPI_ variables when both are set.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace spinlm {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_seconds = 300;
  std::string backend = "auto";
  std::string source = "none";  // "torchrun" | "openmpi" | "none" (one process)
};

// Reads the variables through getenv; Error naming the variable when one is malformed or
// inconsistent (rank outside [0, world size), port outside 1..65535, timeout <= 0).
DistEnv dist_env_from_environment();

// The same from an explicit map (tests; a missing key is an unset variable).
DistEnv dist_env_from_map(const std::map<std::string, std::string>& variables);

}  // namespace spinlm
