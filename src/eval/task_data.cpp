#include "eval/task_data.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/jsonl.h"

namespace spinlm {

std::vector<EvalDoc> load_task_docs(const std::string& path, const DocProcessor& process, int64_t limit) {
  check(data_path_exists(path), "task data file not found: ", path,
        " (the dataset split as JSONL or Parquet with the HuggingFace dataset's fields)");
  JsonlReader reader(path);
  std::vector<EvalDoc> docs;
  nlohmann::json row;
  while ((!has_limit(limit) || static_cast<int64_t>(docs.size()) < limit) && reader.next(row)) {
    EvalDoc doc = process(row, reader.where());
    doc.row = row;
    doc.line = reader.line_number();
    docs.push_back(std::move(doc));
  }
  check(!docs.empty() || limit == 0, path, ": no rows");
  return docs;
}

static std::string join_path(const std::string& dir, const std::string& file) {
  if (dir.empty() || (!file.empty() && file[0] == '/')) return file;
  return dir.back() == '/' ? dir + file : dir + "/" + file;
}

std::string task_docs_path(const TaskConfig& config, const std::string& data_dir) {
  return join_path(data_dir, config.data_file.empty() ? config.name + ".jsonl" : config.data_file);
}

std::string task_fewshot_path(const TaskConfig& config, const std::string& data_dir) {
  return join_path(data_dir, config.fewshot_file.empty() ? config.name + ".fewshot.jsonl" : config.fewshot_file);
}

}  // namespace spinlm
