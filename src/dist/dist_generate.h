// `spinlm generate` over several ranks (generate/generate_shards.h splits the rows and merges
// the shard files; here each process also picks its device: plain "cuda" becomes the device
// of its local rank, as torchrun's LOCAL_RANK).
#pragma once
#include "dist/dist_context.h"
#include "generate/generate_shards.h"

namespace spinlm {

// Summary of this rank's share (rows_selected etc. count this rank's rows only).
GenerateSummary generate_file_distributed(const GenerateOptions& options, DistContext& dist);

}  // namespace spinlm
