#include "dist/dist_generate.h"

#include <cstdio>
#include <fstream>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "io/json_text.h"
#include "model/device_options.h"
#include "model/hf_model.h"

namespace spinlm {
namespace {

GenerateOptions rank_options(const GenerateOptions& options, const DistContext& dist) {
  check(options.shard_count == 1, "--shard cannot be combined with several ranks (each rank is a shard)");
  GenerateOptions mine = options;
  mine.shard_index = dist.rank();
  mine.shard_count = dist.world_size();
  mine.output_path = rank_file_path(options.output_path, dist.rank(), dist.world_size());
  mine.show_progress = options.show_progress && dist.rank() == 0;
  // Plain "cuda": each process on the device of its local rank (as torchrun's LOCAL_RANK).
  if (options.device == "cuda") mine.device = "cuda:" + std::to_string(dist.local_rank());
  return mine;
}

template <typename Generate>
GenerateSummary run(const GenerateOptions& options, DistContext& dist, const Generate& generate) {
  const GenerateOptions mine = rank_options(options, dist);
  GenerateSummary summary;
  if (file_exists(mine.output_path)) {
    log_info("generate: rank ", dist.rank(), " finished earlier (", mine.output_path, "); not generating again");
  } else {
    summary = generate(mine);
  }
  merge_rank_files(options.output_path, dist);
  return summary;
}

}  // namespace

std::string rank_file_path(const std::string& output_path, int rank, int world_size) {
  return output_path + ".rank-" + std::to_string(rank) + "-of-" + std::to_string(world_size);
}

void merge_rank_files(const std::string& output_path, DistContext& dist) {
  dist.barrier();  // every rank's file is complete
  if (dist.rank() == 0) {
    std::vector<std::string> shards;
    for (int r = 0; r < dist.world_size(); ++r) shards.push_back(rank_file_path(output_path, r, dist.world_size()));
    merge_shards_by_index(shards, output_path);
    for (const std::string& shard : shards) std::remove(shard.c_str());
  }
  dist.barrier();  // OUTPUT exists before any rank returns
}

void merge_shards_by_index(const std::vector<std::string>& shard_paths, const std::string& output_path) {
  std::map<int64_t, std::string> lines;  // index -> line, unchanged bytes
  for (const std::string& path : shard_paths) {
    std::ifstream in(path, std::ios::binary);
    check(in.good(), path, ": cannot open the shard file for merging");
    std::string line;
    int64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (line.empty()) continue;
      const std::string where = path + ":" + std::to_string(number);
      const nlohmann::json row = parse_json_text(line, where);
      auto index = row.find("index");
      check(row.is_object() && index != row.end() && index->is_number_integer(), where,
            ": a row without an integer \"index\"");
      check(lines.emplace(index->get<int64_t>(), line).second, where, ": row ", index->get<int64_t>(),
            " appears in two shards");
    }
  }
  AtomicFile out(output_path);
  for (const auto& [index, line] : lines) out.write(line + "\n");
  out.commit();
}

GenerateSummary generate_file_distributed(const GenerateOptions& options, DistContext& dist) {
  return run(options, dist, [](const GenerateOptions& mine) { return generate_file(mine); });
}

GenerateSummary generate_file_distributed(const Transformer& model, const TextCodec& codec,
                                          const GenerateOptions& options, DistContext& dist) {
  return run(options, dist, [&](const GenerateOptions& mine) { return generate_file(model, codec, mine); });
}

}  // namespace spinlm
