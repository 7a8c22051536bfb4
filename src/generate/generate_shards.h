// Generation split across the ranks of a job (core/collective.h): rank r generates the rows
// i % world == r into its own file OUTPUT.rank-R-of-W (generate_file's shard options,
// resumable through its own .partial), and after a barrier rank 0 merges the shard files in
// input order into OUTPUT, atomically. The rows are the same bytes a one-process run writes
// (each row depends only on seed, model and prompt), so OUTPUT is byte-identical to it.
//
// Resuming: a rank whose shard file exists (finished earlier) does not generate again; an
// unfinished shard resumes from its .partial file. Shard files are removed after the merge.
// The output folder must be visible to every rank (one machine, or a shared file system).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/collective.h"
#include "generate/generate_file.h"

namespace spinlm {

// After each rank wrote its rows into rank_file_path(output_path, rank, world): rank 0 merges
// them by index into output_path and removes them; output_path exists on every rank's return.
// One process: nothing to merge (output_path is its own file).
void merge_rank_files(const std::string& output_path, const Ranks& ranks);

// Merges JSONL shard files whose rows carry an integer "index" into one file in index order
// (the lines are copied unchanged); Error naming a file:line for a row without an index or an
// index that appears twice.
void merge_shards_by_index(const std::vector<std::string>& shard_paths, const std::string& output_path);

// Runs generate(this rank's options) unless this rank's shard is already complete, then
// merges the shards. Summary of this rank's share (rows_selected etc. count its rows only).
GenerateSummary generate_in_shards(const GenerateOptions& options, const Ranks& ranks,
                                   const std::function<GenerateSummary(const GenerateOptions&)>& generate);

// generate_file with the model and codec in memory, split across the ranks (one process: the
// plain call).
GenerateSummary generate_file(const Transformer& model, const TextCodec& codec, const GenerateOptions& options,
                              const Ranks& ranks);

}  // namespace spinlm
