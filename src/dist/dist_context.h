// One process's membership of a data-parallel job: a c10d process group (Gloo on CPU, NCCL
// for CUDA devices when the libtorch build has it; src/dist/c10d_compat.h) rendezvoused
// through a TCPStore on MASTER_ADDR:MASTER_PORT that rank 0 serves.
//
// Every collective waits at most the timeout (SPINLM_DIST_TIMEOUT, default 300 s). When a rank
// dies its sockets close and the others fail at once; when it hangs they fail after the
// timeout. Either way the survivors throw a spinlm::Error that names the operation, this rank
// and the timeout, instead of hanging forever.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dist/c10d_compat.h"
#include "dist/dist_env.h"
#include "dist/grad_buckets.h"
#include "train/train_loop.h"

namespace spinlm {

class DistContext : public DataParallel {
 public:
  // Joins the job described by env (world_size >= 1). device: the tensors' device ("cpu",
  // "cuda", "cuda:N"): it picks the backend when env.backend is "auto".
  explicit DistContext(const DistEnv& env, const std::string& device = "cpu");
  ~DistContext() override;
  DistContext(const DistContext&) = delete;
  DistContext& operator=(const DistContext&) = delete;

  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  const DistEnv& env() const { return env_; }
  const std::string& backend() const { return backend_; }

  // DataParallel (train/train_loop.h).
  void all_reduce_gradients(const std::vector<at::Tensor>& params) override;
  void all_reduce_metrics(std::map<std::string, double>& sums) override;
  void all_reduce_sum(std::vector<double>& values) override;
  void broadcast_parameters(const std::vector<at::Tensor>& params) override;
  void barrier() override;

  // Sums in place over the ranks (tensor on this context's device, contiguous).
  void all_reduce_sum(at::Tensor& tensor, const char* what = "all-reduce");
  // Copies rank 0's tensor into every rank's (same shape and dtype on all ranks).
  void broadcast(at::Tensor& tensor, const char* what = "broadcast");
  // Rank 0's text on every rank.
  std::string broadcast_string(const std::string& text);

 private:
  // Waits for a collective; any failure (peer gone, timeout) becomes a spinlm::Error.
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what);
  [[noreturn]] void fail_collective(const char* what, const std::string& cause) const;

  DistEnv env_;
  std::string backend_;
  at::Device device_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d_compat::Group> group_;
  int64_t bucket_bytes_ = 25 << 20;  // gradient buckets of at most this many bytes, as torch DDP
  std::unique_ptr<GradientBuckets> buckets_;
};

// The process-wide context from the environment (dist_env.h), created on first call; null
// when the job has one process. cmd_train/cmd_sft/cmd_generate call it, so `spinlm launch`,
// torchrun-style variables and mpirun all work with the unchanged commands.
DistContext* dist_from_environment(const std::string& device = "cpu");

}  // namespace spinlm
