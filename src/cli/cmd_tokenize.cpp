// `spinlm tokenize`: text to token ids and back with a HuggingFace tokenizer.json, or chat
// conversations rendered with the model's chat template and tokenized.
//   default   {"text": ...}                                   -> {"ids": [...]}
//   --decode  {"ids": [...]}                                  -> {"text": ...}
//   --chat    {"messages": [...], "add_generation_prompt": b} -> {"text": rendered, "ids": [...]}
#include <cstdio>
#include <optional>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/jsonl.h"
#include "text/text_codec.h"
#include "text/tokenizer.h"

namespace spinlm {
namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::string input;
  std::string output;
  bool add_special_tokens = false;
  bool decode = false;
  bool skip_special_tokens = false;
  bool chat = false;
};

std::vector<ChatMessage> read_messages(const json& row, const std::string& where) {
  const json& messages = require_field(row, "messages", where);
  check(messages.is_array(), where, ": \"messages\" must be a list of {\"role\", \"content\"}");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string at = where + ": messages[" + std::to_string(i) + "]";
    check(messages[i].is_object(), at, " must be an object with \"role\" and \"content\"");
    out.push_back({require_string(messages[i], "role", at), require_string(messages[i], "content", at)});
  }
  return out;
}

json convert_row(const TokenizeOptions& options, const Tokenizer& tokenizer, const TextCodec* codec,
                 const json& row, const std::string& where) {
  try {
    if (options.chat) {
      bool generation_prompt = false;
      if (row.contains("add_generation_prompt")) {
        check(row["add_generation_prompt"].is_boolean(), where, ": \"add_generation_prompt\" must be true or false");
        generation_prompt = row["add_generation_prompt"].get<bool>();
      }
      auto messages = read_messages(row, where);
      std::string text = codec->render_chat(messages, generation_prompt);
      return {{"text", text}, {"ids", tokenizer.encode(text, false)}};
    }
    if (options.decode) {
      return {{"text", tokenizer.decode(require_ids(row, "ids", where), options.skip_special_tokens)}};
    }
    return {{"ids", tokenizer.encode(require_string(row, "text", where), options.add_special_tokens)}};
  } catch (const Error& e) {
    std::string message = e.what();
    if (message.rfind(where, 0) == 0) throw;
    fail(where, ": ", message);
  }
}

void run_tokenize(const TokenizeOptions& options) {
  check(!(options.chat && options.decode), "--chat and --decode exclude each other");
  std::optional<TextCodec> codec;
  std::optional<Tokenizer> tokenizer;
  if (options.chat) {
    codec = TextCodec::load(options.tokenizer);
    check(codec->has_chat_template(), options.tokenizer, ": --chat needs a chat template (tokenizer_config.json ",
          "\"chat_template\" or chat_template.jinja)");
    tokenizer = codec->tokenizer();
  } else {
    tokenizer = Tokenizer::load(options.tokenizer);
  }
  const std::string input = options.input.empty() ? "/dev/stdin" : options.input;
  JsonlReader reader(input);
  std::optional<AtomicFile> file;
  if (!options.output.empty()) file.emplace(options.output);
  json row;
  std::string line;
  while (reader.next(row)) {
    line = json_line(convert_row(options, *tokenizer, codec ? &*codec : nullptr, row, reader.where()));
    line += '\n';
    if (file) {
      file->write(line);
    } else {
      std::fwrite(line.data(), 1, line.size(), stdout);
    }
  }
  if (file) {
    file->commit();
  } else {
    std::fflush(stdout);
  }
}

CommandAction setup_tokenize(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  app.add_option("--tokenizer", options->tokenizer, "tokenizer.json, or a model folder holding it")->required();
  app.add_option("--input", options->input, "JSONL input (default: stdin)");
  app.add_option("--output", options->output, "JSONL output, written atomically (default: stdout)");
  app.add_flag("--add-special-tokens", options->add_special_tokens,
               "apply the post-processor (BOS/EOS as tokenizer.json says) when encoding");
  app.add_flag("--decode", options->decode, "ids to text: {\"ids\": [...]} -> {\"text\": ...}");
  app.add_flag("--skip-special-tokens", options->skip_special_tokens, "with --decode: drop special tokens");
  app.add_flag("--chat", options->chat,
               "render {\"messages\": [...], \"add_generation_prompt\": bool} with the chat template of the "
               "folder, then encode: -> {\"text\", \"ids\"}");
  return [options] { run_tokenize(*options); };
}

const bool registered = register_command("tokenize", "text to token ids and back (HuggingFace tokenizer.json)",
                                         setup_tokenize);

}  // namespace
}  // namespace spinlm
