// Parquet reading (src/io/parquet.h) against an independent writer and reader: DuckDB
// (npm @duckdb/node-api, run by tests/reference/parquet_duckdb.js) writes each file at test
// time and prints its own reading of it as JSON lines; spinlm's rows must equal DuckDB's.
// Schemas are those of the HuggingFace datasets spinlm reads (UltraChat 200k, SPIN_iter0,
// ARC), in every compression, with dictionaries on and off, DuckDB's PARQUET_VERSION V2
// encodings (DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, BYTE_STREAM_SPLIT), several row
// groups, nulls at every level, empty lists, unicode and long strings. A second writer,
// hyparquet-writer (npm, tests/reference/parquet_hyparquet.mjs), covers what DuckDB does not
// write: DATA_PAGE_V2 pages, DELTA_BYTE_ARRAY and RLE booleans. A reference that is missing
// (node or an npm package) is a failure, not a skip.
// Malformed files (truncated, bad magic, corrupt page sizes, random corruption) must give
// an Error naming the file, never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/arith_task.h"
#include "eval/builtin_tasks.h"
#include "eval/task_data.h"
#include "generate/generate_file.h"
#include "io/jsonl.h"
#include "io/parquet.h"
#include "testkit.h"

namespace spinlm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testkit::shell_quote;

std::string npm_cache() { return testkit::source_path(".cache/npm/node_modules"); }

const std::string& temp_dir() {
  static const std::string dir = testkit::make_temp_dir("parquet");
  return dir;
}

std::vector<json> jsonl_values(const std::string& path) {
  std::vector<json> rows;
  for (JsonlRow& row : read_jsonl(path)) rows.push_back(std::move(row.value));
  return rows;
}

// Writes NAME.parquet with DuckDB: COPY (sql) TO ... (FORMAT PARQUET, options). Returns the
// path; DuckDB's own reading of the file goes to `duckdb_rows`.
std::string duckdb_write(const std::string& name, const std::string& sql, const std::string& options,
                         std::vector<json>& duckdb_rows) {
  EXPECT_TRUE(fs::exists(npm_cache() + "/@duckdb/node-api"))
      << "DuckDB (npm @duckdb/node-api) is missing in " << npm_cache() << ": run scripts/fetch-test-assets.sh";
  const std::string path = temp_dir() + "/" + name + ".parquet";
  const std::string reading = temp_dir() + "/" + name + ".duckdb.jsonl";
  const auto result = testkit::run_command(
      "node " + shell_quote(testkit::source_path("tests/reference/parquet_duckdb.js")) + " " + shell_quote(path) +
      " " + shell_quote(sql) + " " + shell_quote(options) + " > " + shell_quote(reading));
  EXPECT_EQ(result.exit_code, 0) << "the DuckDB reference failed (node and scripts/fetch-test-assets.sh "
                                    "provide it):\n" << result.output;
  if (result.exit_code != 0) return path;
  duckdb_rows = jsonl_values(reading);
  return path;
}

// DuckDB's parquet_metadata: the encodings of each column, {"messages, list, element, role": [...]}.
json duckdb_encodings(const std::string& path) {
  const auto result = testkit::run_command("node " + shell_quote(testkit::source_path("tests/reference/parquet_duckdb.js")) +
                                           " --encodings " + shell_quote(path) + " 2>&1");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return json::parse(result.output);
}

// The columns of path that use encoding.
std::vector<std::string> columns_with(const std::string& path, const std::string& encoding) {
  std::vector<std::string> columns;
  const json all = duckdb_encodings(path);
  for (const auto& [column, encodings] : all.items()) {
    for (const json& e : encodings) {
      if (e == encoding) columns.push_back(column);
    }
  }
  return columns;
}

std::vector<json> spinlm_rows(const std::string& path) {
  std::vector<json> rows;
  JsonlReader reader(path);
  for (json row; reader.next(row);) rows.push_back(std::move(row));
  return rows;
}

// Reads with spinlm and compares every row with DuckDB's reading.
void expect_same_rows(const std::string& name, const std::string& sql, const std::string& options,
                      size_t expected_rows, int64_t min_row_groups = 1) {
  SCOPED_TRACE(name + " (" + options + ")");
  std::vector<json> expected;
  const std::string path = duckdb_write(name, sql, options, expected);
  ASSERT_EQ(expected.size(), expected_rows) << "DuckDB's reading of " << path;
  std::vector<json> got;
  try {
    got = spinlm_rows(path);
  } catch (const Error& error) {
    FAIL() << error.what();
  }
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], expected[i]) << path << " row " << i + 1 << "\nspinlm: " << got[i].dump()
                                   << "\nDuckDB: " << expected[i].dump();
  }
  ParquetReader reader(path);
  EXPECT_EQ(reader.num_rows(), static_cast<int64_t>(expected_rows));
  EXPECT_GE(reader.num_row_groups(), min_row_groups);
}

// UltraChat 200k's schema: prompt, prompt_id, messages list<struct<content, role>>, with
// unicode, long and empty strings and conversations of 0 to 5 messages.
const char* kUltraChat = R"(
  SELECT 'Prompt ' || i || ': ' || (CASE i % 4 WHEN 0 THEN 'naïve café — 日本語のテキスト 🚀'
                                             WHEN 1 THEN repeat('long text ', 200 + i % 37)
                                             WHEN 2 THEN ''
                                             ELSE 'tab	and "quotes" and \ backslash' END) AS prompt,
         md5(i::VARCHAR) AS prompt_id,
         list_transform(range(i % 6), j -> {'content': 'turn ' || j || ' of ' || i || repeat('x', (i * j) % 300),
                                            'role': CASE WHEN j % 2 = 0 THEN 'user' ELSE 'assistant' END}) AS messages
  FROM range(5000) t(i))";

TEST(Parquet, UltraChatSchemaInEveryCompression) {
  for (const char* codec : {"uncompressed", "snappy", "gzip", "zstd"}) {
    expect_same_rows(std::string("ultrachat_") + codec, kUltraChat,
                     std::string("COMPRESSION ") + codec + ", ROW_GROUP_SIZE 2048", 5000, 3);
  }
  // The role column (two distinct values) is dictionary-encoded.
  const std::string path = temp_dir() + "/ultrachat_zstd.parquet";
  auto dictionary = columns_with(path, "PLAIN_DICTIONARY");
  for (const std::string& c : columns_with(path, "RLE_DICTIONARY")) dictionary.push_back(c);
  EXPECT_NE(std::find(dictionary.begin(), dictionary.end(), "messages, list, element, role"), dictionary.end());
}

TEST(Parquet, UltraChatSchemaWithoutDictionary) {
  for (const char* codec : {"snappy", "zstd"}) {
    expect_same_rows(std::string("ultrachat_plain_") + codec, kUltraChat,
                     std::string("COMPRESSION ") + codec + ", DICTIONARY_SIZE_LIMIT 1, ROW_GROUP_SIZE 2048", 5000, 3);
  }
  const std::string path = temp_dir() + "/ultrachat_plain_zstd.parquet";
  EXPECT_TRUE(columns_with(path, "PLAIN_DICTIONARY").empty());
  EXPECT_TRUE(columns_with(path, "RLE_DICTIONARY").empty());
}

TEST(Parquet, DeltaEncodings) {
  // PARQUET_VERSION V2: DELTA_LENGTH_BYTE_ARRAY strings, DELTA_BINARY_PACKED integers,
  // BYTE_STREAM_SPLIT floats (DuckDB still writes them in DATA_PAGE v1 pages).
  const std::string ultrachat_v2 = std::string("SELECT u.*, row_number() OVER () * 1000003 AS n64, "
                                               "(row_number() OVER () * 7 - 3000)::INT AS n32, "
                                               "row_number() OVER () / 3.0 AS d, "
                                               "(row_number() OVER () / 7.0)::FLOAT AS f FROM (") + kUltraChat + ") u";
  for (const char* codec : {"uncompressed", "snappy", "gzip", "zstd"}) {
    expect_same_rows(std::string("ultrachat_v2_") + codec, ultrachat_v2,
                     std::string("COMPRESSION ") + codec + ", PARQUET_VERSION V2, ROW_GROUP_SIZE 2048", 5000, 3);
  }
  expect_same_rows("ultrachat_v2_plain", ultrachat_v2, "COMPRESSION zstd, PARQUET_VERSION V2, DICTIONARY_SIZE_LIMIT 1",
                   5000);
  const std::string path = temp_dir() + "/ultrachat_v2_plain.parquet";
  EXPECT_EQ(columns_with(path, "DELTA_LENGTH_BYTE_ARRAY").size(), size_t(4));  // every string column
  EXPECT_EQ(columns_with(path, "DELTA_BINARY_PACKED"), (std::vector<std::string>{"n32", "n64"}));
  EXPECT_EQ(columns_with(path, "BYTE_STREAM_SPLIT"), (std::vector<std::string>{"d", "f"}));

}

TEST(Parquet, SpinIterationSchema) {
  // UCLA-AGI/SPIN_iter0: real and generated, each a message list.
  const std::string sql = R"(
    SELECT [{'content': 'Question ' || i, 'role': 'user'}, {'content': 'Real answer ' || repeat('é', i % 9), 'role': 'assistant'}] AS real,
           [{'content': 'Question ' || i, 'role': 'user'}, {'content': 'Generated ' || (i * 31 % 17), 'role': 'assistant'}] AS generated
    FROM range(4500) t(i))";
  expect_same_rows("spin_iter0", sql, "COMPRESSION snappy, ROW_GROUP_SIZE 2048", 4500, 3);
  expect_same_rows("spin_iter0_v2", sql, "COMPRESSION zstd, PARQUET_VERSION V2", 4500);
}

TEST(Parquet, ArcSchema) {
  // allenai/ai2_arc: id, question, choices struct<text: list<string>, label: list<string>>, answerKey.
  const std::string sql = R"(
    SELECT 'Mercury_' || (7000000 + i) AS id,
           'Which of these is question ' || i || '?' AS question,
           {'text': list_transform(range(3 + i % 2), j -> 'choice ' || j || ' for ' || i),
            'label': list_transform(range(3 + i % 2), j -> chr(65 + j::INT))} AS choices,
           chr(65 + (i % 3)::INT) AS answerKey
    FROM range(4200) t(i))";
  expect_same_rows("arc", sql, "COMPRESSION gzip, ROW_GROUP_SIZE 2048", 4200, 3);
  expect_same_rows("arc_plain", sql, "COMPRESSION uncompressed, DICTIONARY_SIZE_LIMIT 1", 4200);
}

// Nulls at every level (column, list, list element, struct, struct field, nested list and
// its elements), empty lists, and int/float/bool columns.
const char* kNulls = R"(
  SELECT CASE WHEN i % 3 = 0 THEN NULL ELSE 'p' || i END AS prompt,
         CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN [] WHEN 2 THEN [NULL, {'content': NULL, 'role': 'user'}]
              ELSE [{'content': 'c' || i, 'role': NULL}, {'content': '', 'role': 'assistant'}] END AS messages,
         CASE WHEN i % 7 = 0 THEN NULL
              ELSE {'a': CASE WHEN i % 2 = 0 THEN NULL ELSE i END,
                    'b': CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN [] ELSE [[1, 2], [], NULL, [NULL, i::BIGINT]] END} END AS s,
         CASE WHEN i % 11 = 0 THEN NULL ELSE i::INT - 250 END AS i32,
         i * 1000000000003 - 7 AS i64,
         CASE WHEN i % 13 = 0 THEN NULL ELSE i / 7.0 END AS d,
         (i / 3.0)::FLOAT AS f,
         CASE WHEN i % 17 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
         [i % 2 = 0, NULL, true] AS flags,
         NULL::VARCHAR AS always_null
  FROM range(5000) t(i))";

TEST(Parquet, NullsAtEveryLevelAndScalarTypes) {
  for (const char* codec : {"uncompressed", "snappy", "gzip", "zstd"}) {
    expect_same_rows(std::string("nulls_") + codec, kNulls, std::string("COMPRESSION ") + codec + ", ROW_GROUP_SIZE 2048",
                     5000, 3);
  }
  expect_same_rows("nulls_plain", kNulls, "COMPRESSION snappy, DICTIONARY_SIZE_LIMIT 1", 5000);
  expect_same_rows("nulls_v2", kNulls, "COMPRESSION zstd, PARQUET_VERSION V2, ROW_GROUP_SIZE 2048", 5000, 3);
}

TEST(Parquet, MapsAndUnsignedAndSmallIntegers) {
  // A MAP is an array of {"key", "value"} objects, its stored form; UINT_8/32/64, INT_16
  // annotations on INT32/INT64.
  const std::string sql =
      "SELECT CASE WHEN i % 4 = 0 THEN NULL WHEN i % 4 = 1 THEN MAP {} ELSE MAP {'a': i, 'b': NULL} END AS m, "
      "MAP {i::VARCHAR: [i, NULL]} AS m2, i::UTINYINT AS u8, (i * 1000)::UINTEGER + 3000000000 AS u32, "
      "(i * 4000000000)::UBIGINT AS u64, (i - 50)::SMALLINT AS s16 FROM range(100) t(i)";
  expect_same_rows("maps", sql, "COMPRESSION snappy", 100);
  expect_same_rows("maps_v2", sql, "COMPRESSION zstd, PARQUET_VERSION V2", 100);
}

TEST(Parquet, ArcTaskDocsFromParquetEqualThoseFromJsonl) {
  // The evaluation task reads its documents through the same rows.
  const std::string sql = R"(
    SELECT 'Mercury_' || (7000000 + i) AS id, 'Which of these is question ' || i || '?' AS question,
           {'text': list_transform(range(4), j -> 'choice ' || j || ' for ' || i),
            'label': list_transform(range(4), j -> chr(65 + j::INT))} AS choices,
           chr(65 + (i % 4)::INT) AS answerKey
    FROM range(30) t(i))";
  std::vector<json> rows;
  const std::string parquet = duckdb_write("arc_task", sql, "COMPRESSION zstd", rows);
  ASSERT_EQ(rows.size(), size_t(30));
  const std::string jsonl = temp_dir() + "/arc_task.jsonl";
  write_jsonl_atomic(jsonl, rows);
  const auto arc = builtin_task("arc_challenge");
  const std::vector<EvalDoc> from_parquet = load_task_docs(parquet, arc.process);
  const std::vector<EvalDoc> from_jsonl = load_task_docs(jsonl, arc.process);
  ASSERT_EQ(from_parquet.size(), from_jsonl.size());
  for (size_t i = 0; i < from_jsonl.size(); ++i) {
    EXPECT_EQ(from_parquet[i].row, from_jsonl[i].row);
    EXPECT_EQ(from_parquet[i].text, from_jsonl[i].text);
    EXPECT_EQ(from_parquet[i].choices, from_jsonl[i].choices);
    EXPECT_EQ(from_parquet[i].gold, from_jsonl[i].gold);
    EXPECT_EQ(from_parquet[i].line, static_cast<int64_t>(i + 1));
  }
}

TEST(Parquet, EmptyFileAndEmptyRowGroups) {
  expect_same_rows("empty", "SELECT 'x' AS prompt, [1] AS l FROM range(0)", "COMPRESSION zstd", 0, 0);
}

TEST(Parquet, GlobsReadEveryFileInNameOrder) {
  const std::string dir = temp_dir() + "/shards";
  fs::create_directories(dir);
  std::vector<json> expected;
  // Written out of order: the glob sorts by name.
  for (int shard : {2, 0, 1}) {
    std::vector<json> rows;
    const std::string sql = "SELECT " + std::to_string(shard) + " AS shard, i AS i, 'r' || i AS prompt FROM range(" +
                            std::to_string(3 + shard) + ") t(i)";
    const std::string name = "shards/train-0000" + std::to_string(shard) + "-of-00003";
    duckdb_write(name, sql, "COMPRESSION snappy", rows);
    ASSERT_EQ(rows.size(), size_t(3 + shard));
  }
  for (int shard : {0, 1, 2}) {
    for (int i = 0; i < 3 + shard; ++i) expected.push_back({{"shard", shard}, {"i", i}, {"prompt", "r" + std::to_string(i)}});
  }
  const std::string pattern = dir + "/train-*-of-00003.parquet";
  EXPECT_TRUE(data_path_exists(pattern));
  EXPECT_FALSE(data_path_exists(dir + "/nothing-*.parquet"));
  JsonlReader reader(pattern);
  std::vector<json> got;
  std::vector<std::string> wheres;
  for (json row; reader.next(row);) {
    got.push_back(row);
    wheres.push_back(reader.where());
  }
  EXPECT_EQ(got, expected);
  ASSERT_EQ(wheres.size(), size_t(12));
  EXPECT_EQ(wheres[0], dir + "/train-00000-of-00003.parquet row 1");
  EXPECT_EQ(wheres[4], dir + "/train-00001-of-00003.parquet row 2");
  EXPECT_EQ(wheres[11], dir + "/train-00002-of-00003.parquet row 5");
  // read_jsonl takes the same inputs.
  const auto rows = read_jsonl(pattern);
  ASSERT_EQ(rows.size(), size_t(12));
  EXPECT_EQ(rows[11].line, 5);
  // A glob that matches nothing names itself.
  try {
    JsonlReader none(dir + "/nothing-*.parquet");
    ADD_FAILURE() << "no error for a glob without matches";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("nothing-*.parquet: no files match"), std::string::npos) << error.what();
  }
}

// hyparquet-writer (tests/reference/parquet_hyparquet.mjs) writes DATA_PAGE_V2 pages in
// the encodings each column asks for; DuckDB reads the file back as the second opinion.
// Returns DuckDB's rows.
std::vector<json> hyparquet_write(const json& description) {
  EXPECT_TRUE(fs::exists(npm_cache() + "/hyparquet-writer"))
      << "hyparquet-writer (npm) is missing in " << npm_cache() << ": run scripts/fetch-test-assets.sh";
  const std::string file = description["file"].get<std::string>();
  write_file_atomic(file + ".json", description.dump());
  const auto written = testkit::run_command(
      "node " + shell_quote(testkit::source_path("tests/reference/parquet_hyparquet.mjs")) + " " +
      shell_quote(file + ".json") + " 2>&1");
  EXPECT_EQ(written.exit_code, 0) << "the hyparquet-writer reference failed:\n" << written.output;
  const auto read = testkit::run_command("node " + shell_quote(testkit::source_path("tests/reference/parquet_duckdb.js")) +
                                         " --read " + shell_quote(file) + " > " + shell_quote(file + ".duckdb.jsonl"));
  EXPECT_EQ(read.exit_code, 0) << "the DuckDB reference failed:\n" << read.output;
  if (written.exit_code != 0 || read.exit_code != 0) return {};
  return jsonl_values(file + ".duckdb.jsonl");
}

json string_element(const std::string& name, const char* repetition) {
  return {{"name", name}, {"type", "BYTE_ARRAY"}, {"converted_type", "UTF8"}, {"repetition_type", repetition}};
}

TEST(Parquet, DataPageV2AndDeltaByteArrayFromASecondWriter) {
  // UltraChat's columns and a few scalar ones, in several row groups of several pages each.
  const int n = 3000;
  json prompt = json::array(), prompt_id = json::array(), messages = json::array(), count = json::array(),
       small = json::array(), score = json::array(), flag = json::array();
  std::vector<json> rows;
  for (int i = 0; i < n; ++i) {
    json p = i % 7 == 0 ? json(nullptr) : json("Prompt " + std::to_string(i) + " — ünïcödé " + std::string(i % 120, 'x'));
    json m;
    if (i % 5 == 0) m = nullptr;
    else if (i % 5 == 1) m = json::array();
    else {
      m = json::array({{{"content", "turn of " + std::to_string(i)}, {"role", "user"}}});
      m.push_back(i % 3 == 0 ? json(nullptr) : json{{"content", nullptr}, {"role", "assistant"}});
    }
    // Ids sharing long prefixes: DELTA_BYTE_ARRAY stores each as prefix length and suffix.
    char id[32];
    std::snprintf(id, sizeof id, "ultrachat-%08d", i * 37);
    json c = i % 11 == 0 ? json(nullptr) : json(int64_t(i) * 1000003 - 1500000000);
    json sm = int64_t(i % 300) - 150;
    json sc = i % 13 == 0 ? json(nullptr) : json(i / 8.0);
    json f = i % 3 == 0;
    prompt.push_back(p);
    prompt_id.push_back(id);
    messages.push_back(m);
    count.push_back(c);
    small.push_back(sm);
    score.push_back(sc);
    flag.push_back(f);
    rows.push_back({{"prompt", p}, {"prompt_id", id}, {"messages", m}, {"count", c}, {"small", sm}, {"score", sc},
                    {"flag", f}});
  }
  const json schema = json::array({
      {{"name", "root"}, {"num_children", 7}},
      string_element("prompt", "OPTIONAL"),
      string_element("prompt_id", "REQUIRED"),
      {{"name", "messages"}, {"repetition_type", "OPTIONAL"}, {"converted_type", "LIST"}, {"num_children", 1}},
      {{"name", "list"}, {"repetition_type", "REPEATED"}, {"num_children", 1}},
      {{"name", "element"}, {"repetition_type", "OPTIONAL"}, {"num_children", 2}},
      string_element("content", "OPTIONAL"),
      string_element("role", "OPTIONAL"),
      {{"name", "count"}, {"type", "INT64"}, {"repetition_type", "OPTIONAL"}},
      {{"name", "small"}, {"type", "INT32"}, {"repetition_type", "REQUIRED"}},
      {{"name", "score"}, {"type", "DOUBLE"}, {"repetition_type", "OPTIONAL"}},
      {{"name", "flag"}, {"type", "BOOLEAN"}, {"repetition_type", "REQUIRED"}},
  });
  for (const char* codec : {"SNAPPY", "UNCOMPRESSED"}) {
    SCOPED_TRACE(codec);
    const std::string file = temp_dir() + "/hyparquet_" + codec + ".parquet";
    const json description = {
        {"file", file}, {"schema", schema}, {"rowGroupSize", 700}, {"pageSize", 4096}, {"codec", codec},
        {"columns", json::array({
            {{"name", "prompt"}, {"data", prompt}, {"encoding", "DELTA_LENGTH_BYTE_ARRAY"}},
            {{"name", "prompt_id"}, {"data", prompt_id}, {"encoding", "DELTA_BYTE_ARRAY"}},
            {{"name", "messages"}, {"data", messages}},
            {{"name", "count"}, {"data", count}, {"encoding", "DELTA_BINARY_PACKED"}},
            {{"name", "small"}, {"data", small}, {"encoding", "DELTA_BINARY_PACKED"}},
            {{"name", "score"}, {"data", score}},
            {{"name", "flag"}, {"data", flag}, {"encoding", "RLE"}},
        })}};
    const std::vector<json> duckdb = hyparquet_write(description);
    ASSERT_EQ(duckdb.size(), rows.size());
    std::vector<json> got;
    try {
      got = spinlm_rows(file);
    } catch (const Error& error) {
      FAIL() << error.what();
    }
    ASSERT_EQ(got.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      ASSERT_EQ(duckdb[i], rows[i]) << "DuckDB's reading of row " << i + 1;
      ASSERT_EQ(got[i], rows[i]) << file << " row " << i + 1;
    }
    EXPECT_EQ(ParquetReader(file).num_row_groups(), 5);
    const json encodings = duckdb_encodings(file);
    EXPECT_EQ(encodings["prompt_id"], json::array({"DELTA_BYTE_ARRAY"}));
    EXPECT_EQ(encodings["prompt"], json::array({"DELTA_LENGTH_BYTE_ARRAY"}));
    EXPECT_EQ(encodings["flag"], json::array({"RLE"}));
    // The first page (at byte 4) is a DATA_PAGE_V2: PageHeader field 1 (0x15, an i32) holds 3
    // (zigzag 6).
    EXPECT_EQ(read_file(file).substr(4, 2), std::string("\x15\x06"));
  }
}

TEST(Parquet, MapWhoseKeyValueGroupIsAnnotated) {
  // Older writers mark the repeated key_value group of a MAP with MAP_KEY_VALUE.
  const std::string file = temp_dir() + "/map_key_value.parquet";
  const json rows = json::array({
      {{"m", json::array({{{"key", "a"}, {"value", 1}}, {{"key", "b"}, {"value", nullptr}}})}},
      {{"m", json::array()}},
      {{"m", nullptr}}});
  json data = json::array();
  for (const json& row : rows) data.push_back(row["m"]);
  const json description = {
      {"file", file}, {"codec", "UNCOMPRESSED"},
      {"schema", json::array({{{"name", "root"}, {"num_children", 1}},
                              {{"name", "m"}, {"repetition_type", "OPTIONAL"}, {"converted_type", "MAP"}, {"num_children", 1}},
                              {{"name", "key_value"}, {"repetition_type", "REPEATED"}, {"converted_type", "MAP_KEY_VALUE"},
                               {"num_children", 2}},
                              string_element("key", "REQUIRED"),
                              {{"name", "value"}, {"type", "INT32"}, {"repetition_type", "OPTIONAL"}}})},
      {"columns", json::array({{{"name", "m"}, {"data", data}}})}};
  const std::vector<json> duckdb = hyparquet_write(description);
  ASSERT_EQ(json(duckdb), rows);
  EXPECT_EQ(json(spinlm_rows(file)), rows);
}

// ---------------------------------------------------------------- malformed files

std::string read_bytes(const std::string& path) { return read_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The error reading every row of path, or "" when it reads.
std::string read_error(const std::string& path) {
  try {
    spinlm_rows(path);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

// An uncompressed file of one string column: its first page header starts at byte 4.
std::string uncompressed_file(const std::string& name) {
  std::vector<json> rows;
  return duckdb_write(name, "SELECT 'row ' || i AS prompt FROM range(50) t(i)",
                      "COMPRESSION uncompressed, DICTIONARY_SIZE_LIMIT 1", rows);
}

TEST(ParquetMalformed, TruncatedFile) {
  const std::string good = uncompressed_file("truncate_source");
  const std::string bytes = read_bytes(good);
  for (size_t keep : {size_t(0), size_t(3), size_t(11), bytes.size() / 2, bytes.size() - 1}) {
    const std::string path = temp_dir() + "/truncated_" + std::to_string(keep) + ".parquet";
    write_bytes(path, bytes.substr(0, keep));
    const std::string error = read_error(path);
    EXPECT_NE(error.find(path + ": not a Parquet file"), std::string::npos) << keep << ": " << error;
  }
}

TEST(ParquetMalformed, BadMagic) {
  const std::string bytes = read_bytes(uncompressed_file("magic_source"));
  std::string head = bytes, tail = bytes;
  head[0] = 'X';
  tail[tail.size() - 1] = 'X';
  write_bytes(temp_dir() + "/bad_head.parquet", head);
  write_bytes(temp_dir() + "/bad_tail.parquet", tail);
  EXPECT_NE(read_error(temp_dir() + "/bad_head.parquet").find("bad_head.parquet: not a Parquet file: it does not start "
                                                              "with the magic \"PAR1\""), std::string::npos);
  EXPECT_NE(read_error(temp_dir() + "/bad_tail.parquet").find("bad_tail.parquet: not a Parquet file, or a truncated one"),
            std::string::npos);
  // The encrypted-footer magic.
  std::string encrypted = bytes;
  encrypted.replace(encrypted.size() - 4, 4, "PARE");
  write_bytes(temp_dir() + "/encrypted.parquet", encrypted);
  EXPECT_NE(read_error(temp_dir() + "/encrypted.parquet").find("encrypted.parquet: an encrypted Parquet file (PARE)"),
            std::string::npos);
}

TEST(ParquetMalformed, MetadataPastTheEnd) {
  std::string bytes = read_bytes(uncompressed_file("footer_source"));
  // The 4-byte little-endian metadata length before the trailing magic.
  const uint32_t huge = static_cast<uint32_t>(bytes.size());
  std::memcpy(&bytes[bytes.size() - 8], &huge, 4);
  const std::string path = temp_dir() + "/footer_too_long.parquet";
  write_bytes(path, bytes);
  const std::string error = read_error(path);
  EXPECT_NE(error.find(path + ": the footer says its metadata is"), std::string::npos) << error;
  // A metadata length that points into the data: the Thrift struct there is garbage.
  std::memcpy(&bytes[bytes.size() - 8], "\x20\x00\x00\x00", 4);
  write_bytes(path, bytes);
  EXPECT_NE(read_error(path).find(path + ": "), std::string::npos);
}

// The first page header at byte 4: fields 1 (type), 2 (uncompressed size) and 3 (compressed
// size), each an i32 as a short field header 0x15 and a zigzag varint. Returns the offsets of
// the size varints.
void page_size_offsets(const std::string& bytes, size_t& uncompressed, size_t& compressed) {
  size_t pos = 4;
  auto field = [&](size_t& value_at) {
    ASSERT_EQ(static_cast<uint8_t>(bytes[pos]), 0x15) << "unexpected page header layout";
    value_at = ++pos;
    while (static_cast<uint8_t>(bytes[pos]) & 0x80) ++pos;
    ++pos;
  };
  size_t type_at = 0;
  field(type_at);
  field(uncompressed);
  field(compressed);
}

TEST(ParquetMalformed, PageSizeDisagreesWithItsData) {
  const std::string bytes = read_bytes(uncompressed_file("page_source"));
  size_t uncompressed = 0, compressed = 0;
  page_size_offsets(bytes, uncompressed, compressed);
  {
    // The uncompressed size one larger (zigzag: +2 in the low byte) than the page's bytes.
    std::string bad = bytes;
    bad[uncompressed] = static_cast<char>(static_cast<uint8_t>(bad[uncompressed]) + 2);
    const std::string path = temp_dir() + "/bad_page_size.parquet";
    write_bytes(path, bad);
    const std::string error = read_error(path);
    EXPECT_NE(error.find(path + " row group 0 column 0 (prompt) page 0: the page decompresses (UNCOMPRESSED) to"),
              std::string::npos) << error;
  }
  {
    // A compressed size past the end of the column chunk: one more in the varint's most
    // significant group.
    std::string bad = bytes;
    size_t last = compressed;
    while (static_cast<uint8_t>(bad[last]) & 0x80) ++last;
    ASSERT_LT(static_cast<uint8_t>(bad[last]), 0x7f);
    bad[last] = static_cast<char>(static_cast<uint8_t>(bad[last]) + 1);
    const std::string path = temp_dir() + "/bad_compressed_size.parquet";
    write_bytes(path, bad);
    const std::string error = read_error(path);
    EXPECT_NE(error.find(path + " row group 0 column 0 (prompt) page 0: the page's"), std::string::npos) << error;
  }
}

TEST(ParquetMalformed, CompressedPageSizeDisagrees) {
  // zstd and snappy pages whose decompressed size is not the header's.
  for (const char* codec : {"snappy", "gzip", "zstd"}) {
    std::vector<json> rows;
    const std::string good = duckdb_write(std::string("codec_source_") + codec, "SELECT 'row ' || i AS prompt FROM range(50) t(i)",
                                          std::string("COMPRESSION ") + codec + ", DICTIONARY_SIZE_LIMIT 1", rows);
    std::string bad = read_bytes(good);
    size_t uncompressed = 0, compressed = 0;
    page_size_offsets(bad, uncompressed, compressed);
    bad[uncompressed] = static_cast<char>(static_cast<uint8_t>(bad[uncompressed]) + 2);
    const std::string path = temp_dir() + "/bad_size_" + codec + ".parquet";
    write_bytes(path, bad);
    const std::string error = read_error(path);
    EXPECT_NE(error.find(path + " row group 0 column 0 (prompt) page 0: "), std::string::npos) << codec << ": " << error;
  }
}

TEST(ParquetMalformed, UnsupportedEncodingIsNamed) {
  // The first page's DataPageHeader (field 5, 0x2c) holds num_values (0x15, varint) then
  // encoding (0x15, PLAIN = zigzag 0); BYTE_STREAM_SPLIT (9, zigzag 0x12) is not an encoding
  // of strings.
  std::string bytes = read_bytes(uncompressed_file("encoding_source"));
  size_t uncompressed = 0, compressed = 0;
  page_size_offsets(bytes, uncompressed, compressed);
  size_t pos = compressed;
  while (static_cast<uint8_t>(bytes[pos]) & 0x80) ++pos;
  ++pos;
  ASSERT_EQ(static_cast<uint8_t>(bytes[pos]), 0x2c) << "unexpected page header layout";
  ASSERT_EQ(static_cast<uint8_t>(bytes[pos + 1]), 0x15);
  pos += 2;
  while (static_cast<uint8_t>(bytes[pos]) & 0x80) ++pos;
  ++pos;
  ASSERT_EQ(static_cast<uint8_t>(bytes[pos]), 0x15);
  ASSERT_EQ(static_cast<uint8_t>(bytes[pos + 1]), 0x00);
  bytes[pos + 1] = 0x12;
  const std::string path = temp_dir() + "/bad_encoding.parquet";
  write_bytes(path, bytes);
  const std::string error = read_error(path);
  EXPECT_NE(error.find(path + " row group 0 column 0 (prompt) page 0: unsupported encoding BYTE_STREAM_SPLIT for a "
                              "BYTE_ARRAY column"), std::string::npos) << error;
}

TEST(ParquetMalformed, UnsupportedCodecIsNamed) {
  std::vector<json> rows;
  const std::string path = duckdb_write("lz4", "SELECT 'row ' || i AS prompt FROM range(20) t(i)", "COMPRESSION lz4", rows);
  const std::string error = read_error(path);
  EXPECT_NE(error.find(path + " row group 0 column 0 (prompt) page 0: unsupported compression codec LZ4_RAW"),
            std::string::npos) << error;
}

// Writes NAME.parquet with DuckDB without reading it back (types the reference does not print).
std::string duckdb_write_only(const std::string& name, const std::string& sql) {
  const std::string path = temp_dir() + "/" + name + ".parquet";
  const auto result = testkit::run_command("node " + shell_quote(testkit::source_path("tests/reference/parquet_duckdb.js")) +
                                           " --write-only " + shell_quote(path) + " " + shell_quote(sql) + " 2>&1");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return path;
}

TEST(ParquetMalformed, UnsupportedTypesAreNamed) {
  const std::string decimal = duckdb_write_only("decimal", "SELECT 'a' AS name, 12.5::DECIMAL(10, 2) AS price");
  std::string error = read_error(decimal);
  EXPECT_NE(error.find(decimal + ": column price is a DECIMAL, which spinlm does not read"), std::string::npos) << error;
  const std::string uuid = duckdb_write_only("uuid", "SELECT uuid() AS id");
  error = read_error(uuid);
  EXPECT_NE(error.find(uuid + ": column id has physical type FIXED_LEN_BYTE_ARRAY, which spinlm does not read"),
            std::string::npos) << error;
}

TEST(ParquetMalformed, RandomCorruptionIsAnErrorNeverACrash) {
  std::vector<json> expected;
  const std::string good = duckdb_write("fuzz_source", std::string(kNulls) + " LIMIT 400", "COMPRESSION snappy", expected);
  const std::string bytes = read_bytes(good);
  std::mt19937 random(7);
  const std::string path = temp_dir() + "/fuzzed.parquet";
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bad = bytes;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int f = 0; f < flips; ++f) {
      // Bytes near the footer hold the metadata: corrupt there as often as elsewhere.
      const size_t at = trial % 2 == 0 ? random() % bad.size() : bad.size() - 1 - random() % std::min<size_t>(bad.size(), 600);
      bad[at] = static_cast<char>(random());
    }
    write_bytes(path, bad);
    const std::string error = read_error(path);
    if (!error.empty()) {
      ++errors;
      EXPECT_NE(error.find(path), std::string::npos) << error;
    }
  }
  EXPECT_GT(errors, 0);
}

// ---------------------------------------------------------------- the commands

TEST(ParquetCommands, GenerateOnParquetEqualsGenerateOnJsonl) {
  const std::string dir = temp_dir() + "/generate";
  fs::create_directories(dir);
  auto made = testkit::run_spinlm("init-model --arch llama --hidden-size 32 --intermediate-size 64 --layers 2 "
                                  "--heads 4 --kv-heads 2 --vocab byte --seed 3 --max-position-embeddings 256 --out " +
                                  shell_quote(dir + "/model"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  std::vector<json> rows;
  const std::string parquet = duckdb_write(
      "generate/prompts",
      "SELECT 'Question ' || i || ': what is ' || (i * 7) || '? ünïcödé' AS prompt, md5(i::VARCHAR) AS prompt_id, "
      "[{'content': 'Question ' || i || ': what is ' || (i * 7) || '? ünïcödé', 'role': 'user'}, "
      "{'content': 'Answer ' || i, 'role': 'assistant'}] AS messages FROM range(6) t(i)",
      "COMPRESSION zstd", rows);
  ASSERT_EQ(rows.size(), size_t(6));
  const std::string jsonl = dir + "/prompts.jsonl";
  write_jsonl_atomic(jsonl, rows);
  auto generate = [&](const std::string& input, const std::string& output) {
    return testkit::run_spinlm("generate --no-progress --threads 1 --max-new-tokens 6 --model " +
                               shell_quote(dir + "/model") + " --input " + shell_quote(input) + " --output " +
                               shell_quote(output));
  };
  const auto from_jsonl = generate(jsonl, dir + "/from_jsonl.jsonl");
  ASSERT_EQ(from_jsonl.exit_code, 0) << from_jsonl.output;
  const auto from_parquet = generate(parquet, dir + "/from_parquet.jsonl");
  ASSERT_EQ(from_parquet.exit_code, 0) << from_parquet.output;
  EXPECT_EQ(read_file(dir + "/from_parquet.jsonl"), read_file(dir + "/from_jsonl.jsonl"));
  EXPECT_EQ(jsonl_values(dir + "/from_parquet.jsonl").size(), size_t(6));

  // A malformed Parquet input stops the command with the file named, even with --skip-bad.
  std::string bad = read_file(parquet);
  bad[0] = 'X';
  write_bytes(dir + "/bad.parquet", bad);
  const auto failed = testkit::run_spinlm("generate --no-progress --threads 1 --max-new-tokens 6 --skip-bad --model " +
                                          shell_quote(dir + "/model") + " --input " + shell_quote(dir + "/bad.parquet") +
                                          " --output " + shell_quote(dir + "/bad_out.jsonl"));
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_NE(failed.output.find(dir + "/bad.parquet: not a Parquet file"), std::string::npos) << failed.output;
}

// A generation job over a glob of Parquet shards resumes by row index: a partial output of
// the first rows (as a kill leaves it, torn last line included) plus the resumed job equals
// the uninterrupted job, across the boundary between two files.
TEST(ParquetCommands, GenerateOverParquetShardsResumesByRowIndex) {
  const std::string dir = temp_dir() + "/resume";
  fs::create_directories(dir);
  auto made = testkit::run_spinlm("init-model --arch llama --hidden-size 32 --intermediate-size 64 --layers 2 "
                                  "--heads 4 --kv-heads 2 --vocab byte --seed 3 --max-position-embeddings 256 --out " +
                                  shell_quote(dir + "/model"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  for (int shard = 0; shard < 2; ++shard) {
    std::vector<json> rows;
    duckdb_write("resume/train-0000" + std::to_string(shard) + "-of-00002",
                 "SELECT [{'content': 'Question ' || (i + " + std::to_string(10 * shard) + ") || '?', 'role': 'user'}, "
                 "{'content': 'Answer', 'role': 'assistant'}] AS messages FROM range(10) t(i)",
                 "COMPRESSION zstd", rows);
    ASSERT_EQ(rows.size(), size_t(10));
  }
  auto job = [&](const std::string& output) {
    GenerateOptions o;
    o.model_dir = dir + "/model";
    o.input_path = dir + "/train-*-of-00002.parquet";
    o.output_path = output;
    o.show_progress = false;
    o.max_new_tokens = 8;
    o.batch_size = 2;
    o.sampling.temperature = 0.9;
    o.seed = 5;
    return generate_file(o);
  };
  const std::string reference = dir + "/reference.jsonl";
  EXPECT_EQ(job(reference).rows_generated, 20);
  // The first 13 rows (10 of the first file, 3 of the second) and a torn 14th.
  const std::string text = read_file(reference);
  size_t cut = 0;
  for (int line = 0; line < 13; ++line) cut = text.find('\n', cut) + 1;
  const std::string output = dir + "/resumed.jsonl";
  write_file_atomic(output + ".partial", text.substr(0, cut) + text.substr(cut, 10));
  const GenerateSummary resumed = job(output);
  EXPECT_EQ(resumed.rows_resumed, 13);
  EXPECT_EQ(resumed.rows_generated, 7);
  EXPECT_EQ(read_file(output), text);
}

// `spinlm run` on a one-iteration recipe whose train, held-out and test data are Parquet
// gives the run the same recipe gives on the equivalent JSONL: the same pairs, metrics,
// evaluation and weights.
TEST(ParquetCommands, RunOnParquetEqualsRunOnJsonl) {
  const std::string dir = temp_dir() + "/run";
  fs::create_directories(dir);
  auto made = testkit::run_spinlm("init-model --arch llama --vocab byte --hidden-size 32 --intermediate-size 64 "
                                  "--layers 2 --heads 2 --seed 3 --out " + shell_quote(dir + "/model"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const ArithSplits splits = make_arith_splits(9, {12, 4, 4});
  const std::vector<std::pair<std::string, const std::vector<ArithExample>*>> parts = {
      {"train", &splits.train}, {"heldout", &splits.validation}, {"test", &splits.test}};
  for (const auto& [name, examples] : parts) {
    // The task's JSONL, through DuckDB into Parquet; DuckDB's reading of that file is the JSONL
    // side, so both runs see the same rows.
    write_arith_jsonl(dir + "/" + name + ".source.jsonl", *examples);
    std::vector<json> rows;
    duckdb_write("run/" + name, "SELECT * FROM read_json_auto(" + shell_quote(dir + "/" + name + ".source.jsonl") + ")",
                 "COMPRESSION snappy", rows);
    ASSERT_EQ(rows.size(), examples->size());
    write_jsonl_atomic(dir + "/" + name + ".jsonl", rows);
  }
  auto recipe = [&](const std::string& ext) {
    return "model_name_or_path: model\nseed: 5\nlearning_rate: 1.0e-3\nbeta: 0.1\nnum_train_epochs: 1\n"
           "per_device_train_batch_size: 4\ngradient_accumulation_steps: 1\nmax_length: 160\nmax_prompt_length: 120\n"
           "logging_steps: 1\ndata: {train: train." + ext + ", heldout: heldout." + ext + ", test: test." + ext + "}\n"
           "generation: {max_new_tokens: 16, batch_size: 4}\nevaluation: {max_new_tokens: 8}\nnum_iterations: 1\n";
  };
  write_file_atomic(dir + "/jsonl.yaml", recipe("jsonl"));
  write_file_atomic(dir + "/parquet.yaml", recipe("parquet"));
  for (const char* name : {"jsonl", "parquet"}) {
    const auto ran = testkit::run_spinlm("run --threads 1 --config " + shell_quote(dir + "/" + name + ".yaml") +
                                         " --output " + shell_quote(dir + "/out_" + name));
    ASSERT_EQ(ran.exit_code, 0) << name << ":\n" << ran.output;
  }
  auto metrics = [](const std::string& path) {
    std::string text;
    for (JsonlRow& row : read_jsonl(path)) {
      row.value.erase("tokens_per_second");
      text += row.value.dump() + "\n";
    }
    return text;
  };
  for (const char* file : {"sft_eval.json", "iter_0/pairs.jsonl", "iter_0/eval.json", "iter_0/model/model.safetensors"}) {
    ASSERT_TRUE(file_exists(dir + "/out_jsonl/" + file)) << file;
    EXPECT_EQ(read_file(dir + "/out_parquet/" + file), read_file(dir + "/out_jsonl/" + file)) << file;
  }
  EXPECT_EQ(metrics(dir + "/out_parquet/iter_0/metrics.jsonl"), metrics(dir + "/out_jsonl/iter_0/metrics.jsonl"));
  EXPECT_EQ(read_jsonl(dir + "/out_parquet/iter_0/pairs.jsonl").size(), size_t(12));
}

TEST(ParquetCommands, InspectDataShowsSchemaRowsAndFirstRows) {
  std::vector<json> rows;
  const std::string path = duckdb_write("inspect", std::string(kUltraChat) + " LIMIT 40", "COMPRESSION zstd", rows);
  ASSERT_EQ(rows.size(), size_t(40));
  const auto shown = testkit::run_spinlm("inspect-data --rows 2 " + shell_quote(path));
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  for (const std::string expected :
       {"file: " + path + "\n", std::string("rows: 40 in 1 row groups\n"), std::string("  prompt: optional BYTE_ARRAY (STRING)\n"),
        std::string("  messages: optional group (LIST)\n"), std::string("        role: optional BYTE_ARRAY (STRING)\n"),
        path + " row 1: " + json_line(rows[0]) + "\n"}) {
    EXPECT_NE(shown.output.find(expected), std::string::npos) << expected << "\nin:\n" << shown.output;
  }
  // Long strings are cut unless --full.
  EXPECT_NE(shown.output.find(path + " row 2: "), std::string::npos);
  EXPECT_EQ(shown.output.find(path + " row 3: "), std::string::npos);
  EXPECT_NE(shown.output.find(" bytes)"), std::string::npos) << shown.output;
  const auto full = testkit::run_spinlm("inspect-data --rows 2 --full " + shell_quote(path));
  EXPECT_NE(full.output.find(path + " row 2: " + json_line(rows[1]) + "\n"), std::string::npos) << full.output;
  // A malformed file is an error naming it.
  std::string bad = read_file(path);
  bad.resize(bad.size() - 3);
  write_bytes(path + ".cut.parquet", bad);
  const auto failed = testkit::run_spinlm("inspect-data " + shell_quote(path + ".cut.parquet"));
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_NE(failed.output.find(path + ".cut.parquet: not a Parquet file"), std::string::npos) << failed.output;
}

}  // namespace
}  // namespace spinlm
