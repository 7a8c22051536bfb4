// [dist] The collectives a job of several processes needs below dist/ (dist/DistContext
// implements them; the layers below may not include dist/), and Ranks, the view of a job that
// a computation split over its processes takes: every rank computes its share, rank 0 alone
// writes files, sync() is a barrier. A null group is one process: one rank that writes, and
// every collective does nothing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace spinlm {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Sums each element over the ranks, in place (double precision).
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  virtual void barrier() = 0;
};

struct Ranks {
  Collective* group = nullptr;

  bool writer() const { return group == nullptr || group->rank() == 0; }
  int64_t index() const { return group ? group->rank() : 0; }
  int64_t count() const { return group ? group->world_size() : 1; }
  // Whether item i (of a list dealt round-robin) is this rank's.
  bool mine(int64_t i) const { return i % count() == index(); }
  void sync() const {
    if (group) group->barrier();
  }
  // Element-wise sums over the ranks, in place.
  void sum(std::vector<double>& values) const {
    if (group) group->all_reduce_sum(values);
  }
  // Whether the flag holds on any rank (the same answer on every rank).
  bool any(bool flag) const {
    std::vector<double> value = {flag ? 1.0 : 0.0};
    sum(value);
    return value[0] > 0;
  }
};

// A rank's own file beside path, where each rank writes its share: PATH.rank-R-of-W.
inline std::string rank_file_path(const std::string& path, int64_t rank, int64_t world_size) {
  return path + ".rank-" + std::to_string(rank) + "-of-" + std::to_string(world_size);
}

}  // namespace spinlm
