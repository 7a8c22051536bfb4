#include "dist/dist_context.h"

#include <chrono>
#include <cstdlib>
#include <mutex>

#include "core/error.h"
#include "core/logging.h"
#include "dist/c10d_compat.h"

namespace spinlm {
namespace {

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

std::string error_text(const std::exception& error) {
  if (auto* c10 = dynamic_cast<const c10::Error*>(&error)) return c10->what_without_backtrace();
  return error.what();
}

bool is_loopback(const std::string& address) {
  return address == "127.0.0.1" || address == "localhost" || address == "::1";
}

std::string choose_backend(const DistEnv& env, const at::Device& device) {
  if (env.backend == "gloo") return "gloo";
  if (env.backend == "nccl") {
    check(SPINLM_HAVE_NCCL, "SPINLM_DIST_BACKEND=nccl, but this libtorch build has no NCCL "
                            "(build spinlm against a CUDA libtorch, or use gloo)");
    check(device.is_cuda(), "SPINLM_DIST_BACKEND=nccl needs a CUDA device (--device cuda)");
    return "nccl";
  }
  return device.is_cuda() && SPINLM_HAVE_NCCL ? "nccl" : "gloo";
}

}  // namespace

DistContext::DistContext(const DistEnv& env, const std::string& device)
    : env_(env), device_(at::Device(device)) {
  check(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size, "bad rank ", env.rank,
        " for world size ", env.world_size);
  backend_ = choose_backend(env, device_);
  // With CUDA each process drives the device of its local rank.
  if (device_.is_cuda() && !device_.has_index()) device_ = at::Device(at::kCUDA, static_cast<int8_t>(env.local_rank));
  const auto timeout = to_ms(env.timeout_seconds);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = static_cast<size_t>(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
  } catch (const std::exception& error) {
    fail("rank ", env.rank, " of ", env.world_size, ": cannot rendezvous at ", env.master_addr, ":",
         env.master_port, " within ", env.timeout_seconds, " s (", error_text(error),
         "); check MASTER_ADDR/MASTER_PORT, that rank 0 started, and that the port is free");
  }
  try {
    if (backend_ == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (is_loopback(env.master_addr)) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      options->threads = 2;
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, env.rank, env.world_size, options);
    } else {
#if SPINLM_HAVE_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, env.rank, env.world_size, options);
#endif
    }
  } catch (const std::exception& error) {
    fail("rank ", env.rank, " of ", env.world_size, ": cannot create the ", backend_, " process group (",
         error_text(error), ")");
  }
  log_info("dist: rank ", env.rank, " of ", env.world_size, " (local rank ", env.local_rank, ", ", backend_,
           ", ", env.master_addr, ":", env.master_port, ", timeout ", env.timeout_seconds, " s)");
}

DistContext::~DistContext() = default;

void DistContext::fail_collective(const char* what, const std::string& cause) const {
  fail("rank ", env_.rank, " of ", env_.world_size, ": distributed ", what, " failed: ", cause,
       ". Another rank probably exited or hangs (its own log says why); collectives wait at most ",
       env_.timeout_seconds, " s (SPINLM_DIST_TIMEOUT, spinlm launch --dist-timeout)");
}

void DistContext::wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  bool done = false;
  try {
    done = work->wait(to_ms(env_.timeout_seconds));
  } catch (const std::exception& error) {
    fail_collective(what, error_text(error));
  }
  if (!done) fail_collective(what, "timed out");
}

void DistContext::all_reduce_sum(at::Tensor& tensor, const char* what) {
  std::vector<at::Tensor> tensors{tensor};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = group_->allreduce(tensors, options);
  } catch (const std::exception& error) {
    fail_collective(what, error_text(error));
  }
  wait(work, what);
}

void DistContext::broadcast(at::Tensor& tensor, const char* what) {
  std::vector<at::Tensor> tensors{tensor};
  c10d::BroadcastOptions options;
  options.rootRank = 0;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = group_->broadcast(tensors, options);
  } catch (const std::exception& error) {
    fail_collective(what, error_text(error));
  }
  wait(work, what);
}

void DistContext::barrier() {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = group_->barrier();
  } catch (const std::exception& error) {
    fail_collective("barrier", error_text(error));
  }
  wait(work, "barrier");
}

std::string DistContext::broadcast_string(const std::string& text) {
  const auto on_device = at::TensorOptions().device(device_);
  at::Tensor length = at::full({1}, static_cast<int64_t>(text.size()), on_device.dtype(at::kLong));
  broadcast(length, "broadcast (text length)");
  const int64_t n = length.cpu().item<int64_t>();
  if (n == 0) return "";
  at::Tensor bytes = at::empty({n}, at::kByte);
  if (rank() == 0) std::memcpy(bytes.data_ptr(), text.data(), static_cast<size_t>(n));
  bytes = bytes.to(device_);
  broadcast(bytes, "broadcast (text)");
  bytes = bytes.cpu();
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(n));
}

void DistContext::all_reduce_sum(std::vector<double>& values) {
  if (values.empty()) return;
  at::Tensor t = at::tensor(values, at::kDouble).to(device_);  // [n]
  all_reduce_sum(t, "all-reduce (values)");
  t = t.cpu().contiguous();
  std::memcpy(values.data(), t.data_ptr<double>(), values.size() * sizeof(double));
}

void DistContext::all_reduce_metrics(std::map<std::string, double>& sums) {
  std::string keys;
  for (const auto& [key, value] : sums) keys += key + "\n";
  keys = broadcast_string(keys);  // rank 0's key set, so every rank sends the same layout
  std::vector<std::string> names;
  for (size_t start = 0, end; (end = keys.find('\n', start)) != std::string::npos; start = end + 1) {
    names.push_back(keys.substr(start, end - start));
  }
  std::vector<double> values;
  for (const std::string& name : names) {
    auto found = sums.find(name);
    values.push_back(found == sums.end() ? 0.0 : found->second);
  }
  all_reduce_sum(values);
  sums.clear();
  for (size_t i = 0; i < names.size(); ++i) sums[names[i]] = values[i];
}

void DistContext::all_reduce_gradients(const std::vector<at::Tensor>& params) {
  if (!buckets_) buckets_ = std::make_unique<GradientBuckets>(params, bucket_bytes_);
  buckets_->all_reduce(params, [this](at::Tensor& flat) -> std::function<void()> {
    std::vector<at::Tensor> tensors{flat};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = group_->allreduce(tensors, options);
    } catch (const std::exception& error) {
      fail_collective("all-reduce (gradients)", error_text(error));
    }
    return [this, work] { wait(work, "all-reduce (gradients)"); };
  });
}

void DistContext::broadcast_parameters(const std::vector<at::Tensor>& params) {
  at::NoGradGuard no_grad;
  for (const at::Tensor& p : params) {
    at::Tensor data = p.detach();
    broadcast(data, "broadcast (parameters)");
  }
}

DistContext* dist_from_environment(const std::string& device) {
  // Never destroyed: tearing a process group down after a peer died can block, and the
  // process is about to exit anyway.
  static DistContext* context = nullptr;
  static std::once_flag once;
  std::call_once(once, [&] {
    const DistEnv env = dist_env_from_environment();
    if (env.world_size > 1) context = new DistContext(env, device);
  });
  return context;
}

}  // namespace spinlm
