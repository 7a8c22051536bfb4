// The one way spinlm parses JSON text: every JSON file and JSONL row it reads (datasets,
// config.json, tokenizer.json, tokenizer_config.json, generation_config.json, safetensors
// headers and shard indexes, run and checkpoint state) goes through parse_json_text or
// read_json_file, so a file from a stranger cannot lift the limits below.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

namespace spinlm {

// Deepest nesting of arrays and objects accepted. Real files nest a few levels
// (tokenizer.json about 6); without a limit, code that walks a parsed value recursively
// (copying, printing, converting) overflows the stack on a file of a few hundred thousand
// brackets.
constexpr int kMaxJsonDepth = 256;

// Largest JSON text accepted, one file or one JSONL row: 256 MiB. The largest real
// tokenizer.json files are about 35 MB; a parsed value takes several times its text.
constexpr size_t kMaxJsonBytes = size_t{256} << 20;

// Parses text. Errors name `where` (a file, or "FILE:LINE" for a JSONL row):
// "WHERE: not valid JSON (...)", "WHERE: JSON nested deeper than 256 levels ...",
// "WHERE: JSON text of N bytes is larger than the 256 MiB limit ...". With `what`
// ("header"), the first reads "WHERE: header is not valid JSON (...)". A callback is
// nlohmann's parser callback (it sees every event; returning false drops the value).
nlohmann::json parse_json_text(const std::string& text, const std::string& where,
                               const nlohmann::json::parser_callback_t& callback = nullptr,
                               const std::string& what = "");

// Reads and parses a whole file, refusing one larger than kMaxJsonBytes before reading it.
nlohmann::json read_json_file(const std::string& path);

// Depth of the deepest array or object in text (0 for a scalar), counting brackets outside
// strings; returns limit + 1 as soon as the depth passes limit. On the part of a text that
// a JSON parser accepts it equals the parser's nesting, so checking it first bounds every
// value the parser can build.
int json_nesting_depth(const std::string& text, int limit = kMaxJsonDepth);

// value as an integer, for fields that must hold one: nlohmann's get<int64_t>() converts a
// float without a check (undefined behaviour outside int64's range; 2.5 reads as 2).
// Error "WHAT must be an integer, got VALUE" otherwise; what names the file and the field.
int64_t json_integer(const nlohmann::json& value, const std::string& what);

}  // namespace spinlm
