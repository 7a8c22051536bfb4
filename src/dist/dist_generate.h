// `spinlm generate` over several ranks: rank r generates the rows i % world == r into its own
// file OUTPUT.rank-R-of-W (generate_file's --shard, resumable through its own .partial), and
// after a barrier rank 0 merges the shard files in input order into OUTPUT, atomically. The
// rows are the same bytes a one-process run writes (each row depends only on seed, model and
// prompt), so OUTPUT is byte-identical to it.
//
// Resuming: a rank whose shard file exists (finished earlier) does not generate again; an
// unfinished shard resumes from its .partial file. Shard files are removed after the merge.
// The output folder must be visible to every rank (one machine, or a shared file system).
#pragma once
#include <string>

#include "dist/dist_context.h"
#include "generate/generate_file.h"

namespace spinlm {

// Summary of this rank's share (rows_selected etc. count this rank's rows only).
GenerateSummary generate_file_distributed(const GenerateOptions& options, DistContext& dist);

// The same with the model and codec already in memory (spinlm run).
GenerateSummary generate_file_distributed(const Transformer& model, const TextCodec& codec,
                                          const GenerateOptions& options, DistContext& dist);

// OUTPUT.rank-R-of-W
std::string rank_file_path(const std::string& output_path, int rank, int world_size);

// After each rank wrote its rows into rank_file_path(output_path, rank, world): rank 0 merges
// them by index into output_path and removes them; output_path exists on every rank's return.
void merge_rank_files(const std::string& output_path, DistContext& dist);

// Merges JSONL shard files whose rows carry an integer "index" into one file in index order
// (the lines are copied unchanged); Error naming a file:line for a row without an index or an
// index that appears twice.
void merge_shards_by_index(const std::vector<std::string>& shard_paths, const std::string& output_path);

}  // namespace spinlm
