#include "dist/dist_generate.h"

namespace spinlm {

GenerateSummary generate_file_distributed(const GenerateOptions& options, DistContext& dist) {
  GenerateOptions placed = options;
  if (options.device == "cuda") placed.device = "cuda:" + std::to_string(dist.local_rank());
  return generate_in_shards(placed, Ranks{&dist}, [](const GenerateOptions& mine) { return generate_file(mine); });
}

}  // namespace spinlm
