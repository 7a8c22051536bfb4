#include "generate/generate_shards.h"

#include <cstdio>
#include <fstream>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "io/json_text.h"

namespace spinlm {

void merge_rank_files(const std::string& output_path, const Ranks& ranks) {
  if (ranks.group == nullptr) return;
  ranks.sync();  // every rank's file is complete
  if (ranks.writer()) {
    std::vector<std::string> shards;
    for (int64_t r = 0; r < ranks.count(); ++r) shards.push_back(rank_file_path(output_path, r, ranks.count()));
    merge_shards_by_index(shards, output_path);
    for (const std::string& shard : shards) std::remove(shard.c_str());
  }
  ranks.sync();  // OUTPUT exists before any rank returns
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

GenerateSummary generate_in_shards(const GenerateOptions& options, const Ranks& ranks,
                                   const std::function<GenerateSummary(const GenerateOptions&)>& generate) {
  if (ranks.group == nullptr) return generate(options);
  check(options.shard_count == 1, "--shard cannot be combined with several ranks (each rank is a shard)");
  GenerateOptions mine = options;
  mine.shard_index = ranks.index();
  mine.shard_count = ranks.count();
  mine.output_path = rank_file_path(options.output_path, ranks.index(), ranks.count());
  mine.show_progress = options.show_progress && ranks.writer();
  GenerateSummary summary;
  if (file_exists(mine.output_path)) {
    log_info("generate: rank ", ranks.index(), " finished earlier (", mine.output_path, "); not generating again");
  } else {
    summary = generate(mine);
  }
  merge_rank_files(options.output_path, ranks);
  return summary;
}

GenerateSummary generate_file(const Transformer& model, const TextCodec& codec, const GenerateOptions& options,
                              const Ranks& ranks) {
  return generate_in_shards(options, ranks, [&](const GenerateOptions& mine) { return generate_file(model, codec, mine); });
}

}  // namespace spinlm
