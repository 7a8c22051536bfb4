// Task data files: JSONL rows in the HuggingFace dataset's fields, turned into EvalDocs by
// the task's processor. Every problem names the file and the line.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/limits.h"
#include "eval/task_config.h"

namespace spinlm {

// Reads and processes every row of path (a limit: only the first `limit` rows).
// A missing file, a bad JSON line, a missing field or an answer out of range is an Error
// "FILE:LINE: ...".
std::vector<EvalDoc> load_task_docs(const std::string& path, const DocProcessor& process, int64_t limit = kNoLimit);

// Where a task's files are: data_dir/<config.data_file> and data_dir/<config.fewshot_file>.
std::string task_docs_path(const TaskConfig& config, const std::string& data_dir);
std::string task_fewshot_path(const TaskConfig& config, const std::string& data_dir);

}  // namespace spinlm
