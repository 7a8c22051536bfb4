#include "generate/generate_file.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/progress.h"
#include "core/stop_signal.h"
#include "data/conversation.h"
#include "generate/engine.h"
#include "io/jsonl.h"
#include "model/device_choice.h"
#include "model/hf_model.h"
#include "model/lora.h"
#include "model/stop_tokens.h"

namespace spinlm {
namespace {

// A selected input row, ready to generate.
struct PromptRow {
  int64_t index = 0;
  std::string where;  // "FILE:LINE"
  Exchange exchange;
  std::vector<int64_t> prompt_ids;
};

std::vector<int64_t> encode_prompt(const TextCodec& codec, const GenerateOptions& options,
                                   const ChatMessage& user) {
  if (options.prompt_format == "spin-legacy") {
    // uclaml/SPIN's generate.py hands this string to vLLM, which tokenizes it with the
    // tokenizer's special tokens (BOS for Zephyr's Llama tokenizer).
    return codec.tokenizer().encode("### Instruction: " + user.content + "\n\n### Response: ",
                                    /*add_special_tokens=*/true);
  }
  std::vector<ChatMessage> messages;
  if (!options.system.empty()) messages.push_back({"system", options.system});
  messages.push_back(user);
  return codec.encode_chat(messages, /*add_generation_prompt=*/true);
}

// Python's str.lstrip() for the whitespace a model can produce.
std::string left_strip(const std::string& text) {
  size_t start = text.find_first_not_of(" \t\n\r\f\v");
  return start == std::string::npos ? std::string() : text.substr(start);
}

std::string with_where(const std::string& message, const std::string& where) {
  return message.rfind(where, 0) == 0 ? message : where + ": " + message;
}

// Reads the input and prepares the rows selected by --limit and --shard. Bad rows raise an
// Error naming FILE:LINE, or with skip_bad are counted in skipped and left out.
std::vector<PromptRow> read_prompt_rows(const TextCodec& codec, const GenerateOptions& options,
                                        int64_t context_length, int64_t& skipped) {
  std::vector<PromptRow> rows;
  auto bad_row = [&](const std::string& message) {
    if (!options.skip_bad) throw Error(message);
    log_warning(message, " (row skipped)");
    ++skipped;
  };
  auto selected = [&](int64_t index) { return index % options.shard_count == options.shard_index; };

  JsonlReader reader(options.input_path);
  int64_t index = -1;
  while (true) {
    json value;
    bool got = false;
    try {
      got = reader.next(value);
    } catch (const Error& error) {  // not JSON or not an object: the line still is a row
      if (reader.is_parquet()) throw;  // a Parquet error is about the file, not one row
      ++index;
      if (has_limit(options.limit) && index >= options.limit) break;
      if (selected(index)) bad_row(error.what());
      continue;
    }
    if (!got) break;
    ++index;
    if (has_limit(options.limit) && index >= options.limit) break;
    if (!selected(index)) continue;
    const std::string where = reader.where();
    try {
      PromptRow row;
      row.index = index;
      row.where = where;
      row.exchange = first_exchange(parse_conversation(value, where), where);
      row.prompt_ids = encode_prompt(codec, options, row.exchange.prompt);
      const int64_t length = static_cast<int64_t>(row.prompt_ids.size());
      check(length >= 1, where, ": the prompt encodes to no tokens");
      check(length < context_length, where, ": the prompt has ", length,
            " tokens, which leaves no room for an answer in the model's context of ",
            context_length, " tokens (max_position_embeddings)");
      rows.push_back(std::move(row));
    } catch (const Error& error) {
      bad_row(with_where(error.what(), where));
    }
  }
  return rows;
}

json output_row(const PromptRow& row, const GenerationResult& result, const GenerateOptions& options) {
  std::vector<ChatMessage> real{row.exchange.prompt};
  if (row.exchange.answer) real.push_back(*row.exchange.answer);
  std::string text = options.prompt_format == "spin-legacy" ? left_strip(result.text) : result.text;
  json out;
  out["index"] = row.index;
  out["real"] = messages_to_json(real);
  out["generated"] = messages_to_json({row.exchange.prompt, {"assistant", text}});
  out["prompt_ids"] = row.prompt_ids;
  out["generated_ids"] = result.ids;
  out["finish_reason"] = finish_reason_name(result.finish_reason);
  return out;
}

// Rows of a previous, interrupted run: checked against this run's prompts, kept as lines.
void take_resumed_rows(const ResumableJsonl& partial, const std::map<int64_t, const PromptRow*>& by_index,
                       std::map<int64_t, std::string>& lines) {
  int64_t line = 0;
  for (const json& row : partial.existing_rows()) {
    ++line;
    const std::string where = partial.partial_path() + ":" + std::to_string(line);
    auto index_field = row.find("index");
    check(index_field != row.end() && index_field->is_number_integer(), where,
          ": a row without an integer \"index\"; delete ", partial.partial_path(), " to start over");
    const int64_t index = index_field->get<int64_t>();
    auto found = by_index.find(index);
    check(found != by_index.end() && require_ids(row, "prompt_ids", where) == found->second->prompt_ids,
          where, ": row ", index, " does not match this input and these options (another run's partial "
          "output?); delete ", partial.partial_path(), " to start over");
    check(lines.emplace(index, json_line(row)).second, where, ": row ", index, " appears twice; delete ",
          partial.partial_path(), " to start over");
  }
}

std::string rate_text(int64_t tokens, double seconds) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f tok/s", seconds > 0 ? tokens / seconds : 0.0);
  return text;
}

}  // namespace

std::pair<int64_t, int64_t> parse_shard(const std::string& text) {
  size_t slash = text.find('/');
  int64_t index = -1, count = 0;
  try {
    check(slash != std::string::npos, "");
    size_t used = 0;
    index = std::stoll(text.substr(0, slash), &used);
    check(used == slash, "");
    count = std::stoll(text.substr(slash + 1), &used);
    check(used == text.size() - slash - 1, "");
  } catch (const std::exception&) {
    fail("--shard must be I/N (e.g. 0/4), got \"", text, "\"");
  }
  check(count >= 1 && index >= 0 && index < count, "--shard I/N needs 0 <= I < N, got \"", text, "\"");
  return {index, count};
}

GenerateSummary generate_file(const GenerateOptions& options) {
  const at::Device device = choose_device(options.device);
  const at::ScalarType dtype = choose_dtype(options.dtype, device);
  log_info("generate: model on ", device.str(), " in ", dtype_option_name(dtype));
  Transformer model = load_model(options.model_dir, device, dtype);
  attach_lora_adapter(model, options.adapter_dir);
  TextCodec codec = TextCodec::load(options.model_dir);
  return generate_file(model, codec, options);
}

GenerateSummary generate_file(const Transformer& model, const TextCodec& codec,
                              const GenerateOptions& options) {
  check(options.prompt_format == "chat" || options.prompt_format == "spin-legacy",
        "--prompt-format must be chat or spin-legacy, got \"", options.prompt_format, "\"");
  check(options.shard_count >= 1 && options.shard_index >= 0 && options.shard_index < options.shard_count,
        "--shard I/N needs 0 <= I < N");
  check(options.prompt_format == "chat" || options.system.empty(),
        "--system applies to --prompt-format chat only");
  auto start = std::chrono::steady_clock::now();

  EngineOptions engine_options;
  engine_options.sampling = options.sampling;
  engine_options.seed = options.seed;
  engine_options.max_new_tokens = options.max_new_tokens;
  engine_options.batch_size = options.batch_size;
  engine_options.max_batch_tokens = options.max_batch_tokens;
  engine_options.steps_per_sync = options.steps_per_sync;
  engine_options.cuda_graphs = options.cuda_graphs;
  engine_options.eos_ids = load_stop_tokens(options.model_dir, model.config(), &codec).ids;
  engine_options.stop_strings = StopStrings(options.stop);
  engine_options.decode = [&codec](const std::vector<int64_t>& ids) {
    return codec.tokenizer().decode(ids, /*skip_special_tokens=*/true);
  };
  GenerationEngine engine(model, engine_options);  // validates the options before any work

  GenerateSummary summary;
  std::vector<PromptRow> rows =
      read_prompt_rows(codec, options, model.config().max_position_embeddings, summary.rows_skipped);
  summary.rows_selected = static_cast<int64_t>(rows.size());
  std::map<int64_t, const PromptRow*> by_index;
  for (const PromptRow& row : rows) by_index[row.index] = &row;

  auto partial = std::make_unique<ResumableJsonl>(options.output_path);
  std::map<int64_t, std::string> lines;  // index -> output line (without newline)
  take_resumed_rows(*partial, by_index, lines);
  summary.rows_resumed = static_cast<int64_t>(lines.size());

  std::vector<GenerationRequest> requests;
  std::vector<const PromptRow*> request_rows;
  for (const PromptRow& row : rows) {
    if (lines.count(row.index)) continue;
    requests.push_back({row.index, row.prompt_ids});
    request_rows.push_back(&row);
  }

  std::optional<Progress> progress;
  if (options.show_progress) {
    progress.emplace("generate", summary.rows_selected, "rows");
    progress->update(summary.rows_resumed);
  }
  engine.generate(requests, [&](GenerationResult&& result) {
    json row = output_row(*request_rows[result.request], result, options);
    partial->append(row);
    lines.emplace(result.row, json_line(row));
    // Preemption (core/stop_signal.h): every finished row is in the partial file already.
    if (stop_requested())
      throw Preempted("generation stopped by " + signal_name(stop_signal()) + " after " +
                      std::to_string(lines.size()) + " of " + std::to_string(summary.rows_selected) +
                      " rows, kept in " + partial->partial_path() +
                      ": rerun the same command to continue (spinlm run: with --resume)");
    summary.rows_generated += 1;
    summary.new_tokens += static_cast<int64_t>(result.ids.size());
    if (progress) {
      double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      progress->update(static_cast<int64_t>(lines.size()), rate_text(summary.new_tokens, elapsed));
    }
  });
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.decode_windows = engine.stats().decode_windows;
  summary.cuda_graphs = engine.stats().cuda_graphs;
  if (progress) progress->finish(rate_text(summary.new_tokens, summary.seconds));

  // Every row is in the partial file (in completion order); write them in input order.
  const std::string partial_path = partial->partial_path();
  partial.reset();
  AtomicFile out(options.output_path);
  for (const auto& [index, line] : lines) out.write(line + "\n");
  out.commit();
  std::remove(partial_path.c_str());
  return summary;
}

}  // namespace spinlm
