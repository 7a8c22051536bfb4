// Hostile inputs, built at test time: JSON nested 200,000 deep in a JSONL row and in a
// model folder's JSON files, shard indexes that point outside the model folder, safetensors
// headers that lie about sizes, and chat templates that try to exhaust memory, time or
// stack. Each must end in an error that names the file and the limit, never in a crash.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/json_text.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/stop_tokens.h"
#include "pipeline/recipe.h"
#include "text/chat_template.h"
#include "text/text_codec.h"
#include "text/tokenizer.h"
#include "testkit.h"

using namespace spinlm;
namespace fs = std::filesystem;

namespace {

// The time bounds below are for the optimised build; AddressSanitizer at -O1 (make test-asan)
// runs the renderer about ten times slower.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kSanitizerSlowdown = 20.0;
#else
constexpr double kSanitizerSlowdown = 1.0;
#endif

constexpr int kHostileDepth = 200000;

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string contains_message(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos ? "" : "missing \"" + part + "\" in: " + text.substr(0, 2000);
}

// A model folder made by `spinlm init-model` (byte vocabulary), shared by the CLI tests:
// each spinlm start costs seconds here.
const std::string& byte_model() {
  static const std::string dir = [] {
    const std::string path = testkit::make_temp_dir("hardening-model") + "/model";
    const auto made = testkit::run_spinlm(
        "init-model --arch llama --hidden-size 16 --intermediate-size 32 --layers 1 --heads 2 "
        "--vocab byte --seed 3 --out " + testkit::shell_quote(path));
    EXPECT_EQ(made.exit_code, 0) << made.output;
    return path;
  }();
  return dir;
}

std::string copy_model(const std::string& label) {
  const std::string dir = testkit::make_temp_dir(label) + "/model";
  fs::copy(byte_model(), dir, fs::copy_options::recursive);
  return dir;
}

// Writes a safetensors file from raw parts: the 8-byte length (declared, or the header's
// own), the header text, and data_bytes zero bytes.
void write_raw_safetensors(const std::string& path, const std::string& header, size_t data_bytes,
                           std::optional<uint64_t> declared = std::nullopt) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t length = declared.value_or(header.size());
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << header << std::string(data_bytes, '\0');
}

}  // namespace

// ---- JSON: one reader with a nesting and a size limit ----

TEST(HardeningJson, NestingDepthIgnoresBracketsInStrings) {
  EXPECT_EQ(json_nesting_depth("1"), 0);
  EXPECT_EQ(json_nesting_depth(R"({"a": [1, {"b": []}]})"), 4);
  EXPECT_EQ(json_nesting_depth(R"(["[[[[", "\"[[[", "\\", {"k]": "{"}])"), 2);
  EXPECT_EQ(json_nesting_depth(nested_arrays(kHostileDepth)), kMaxJsonDepth + 1);
  // The limit itself is accepted, one more level is not.
  EXPECT_NO_THROW(parse_json_text(nested_arrays(kMaxJsonDepth), "limit.json"));
  const std::string message = error_of([] { parse_json_text(nested_arrays(kMaxJsonDepth + 1), "over.json"); });
  EXPECT_EQ(contains_message(message, "over.json: JSON nested deeper than 256"), "");
}

TEST(HardeningJson, DeepJsonlRowIsAnErrorNamingFileAndLine) {
  const std::string dir = testkit::make_temp_dir("hardening-jsonl");
  const std::string path = dir + "/rows.jsonl";
  write_text(path, "{\"text\": \"fine\"}\n{\"text\": " + nested_arrays(kHostileDepth) + "}\n");
  EXPECT_EQ(contains_message(error_of([&] { read_jsonl(path); }), path + ":2: JSON nested deeper than 256"), "");

  // The real binary: an error and a non-zero exit, not a signal.
  write_text(path, "{\"text\": " + nested_arrays(kHostileDepth) + "}\n");
  const auto result = testkit::run_spinlm("tokenize --tokenizer " + testkit::shell_quote(byte_model()) +
                                          " --input " + testkit::shell_quote(path));
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_LT(result.exit_code, 128) << "killed by a signal: " << result.output;
  EXPECT_EQ(contains_message(result.output, "error: " + path + ":1: JSON nested deeper than 256"), "");
}

TEST(HardeningJson, DeepConfigJsonIsAnErrorNamingTheFile) {
  const std::string dir = copy_model("hardening-config");
  const std::string config = dir + "/config.json";
  write_text(config, "{\"hidden_size\": " + nested_arrays(kHostileDepth) + "}");
  EXPECT_EQ(contains_message(error_of([&] { load_config(config); }), config + ": JSON nested deeper than 256"), "");

  const auto result = testkit::run_spinlm("inspect " + testkit::shell_quote(dir));
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_LT(result.exit_code, 128) << "killed by a signal: " << result.output;
  EXPECT_EQ(contains_message(result.output, "error: " + config + ": JSON nested deeper than 256"), "");
}

TEST(HardeningJson, EveryModelFolderJsonFileHasTheLimit) {
  const std::string deep = "{\"x\": " + nested_arrays(kHostileDepth) + "}";
  {
    const std::string dir = copy_model("hardening-tokenizer-json");
    write_text(dir + "/tokenizer.json", deep);
    EXPECT_EQ(contains_message(error_of([&] { Tokenizer::load(dir); }),
                               dir + "/tokenizer.json: JSON nested deeper than 256"),
              "");
  }
  {
    const std::string dir = copy_model("hardening-tokenizer-config");
    write_text(dir + "/tokenizer_config.json", deep);
    EXPECT_EQ(contains_message(error_of([&] { TextCodec::load(dir); }),
                               dir + "/tokenizer_config.json: JSON nested deeper than 256"),
              "");
  }
  {
    const std::string dir = copy_model("hardening-generation-config");
    write_text(dir + "/generation_config.json", deep);
    EXPECT_EQ(contains_message(error_of([&] { load_stop_tokens(dir, load_config(dir + "/config.json"), nullptr); }),
                               dir + "/generation_config.json: JSON nested deeper than 256"),
              "");
  }
  {
    const std::string dir = testkit::make_temp_dir("hardening-header");
    const std::string path = dir + "/deep.safetensors";
    write_raw_safetensors(path, "{\"a\": " + nested_arrays(kHostileDepth) + "}", 0);
    EXPECT_EQ(contains_message(error_of([&] { SafetensorsFile file(path); }), path + ": JSON nested deeper than 256"), "");
  }
  {
    const std::string dir = copy_model("hardening-index");
    fs::rename(dir + "/model.safetensors", dir + "/model-00001-of-00001.safetensors");
    write_text(dir + "/model.safetensors.index.json", deep);
    EXPECT_EQ(contains_message(error_of([&] { SafetensorsFolder folder(dir); }),
                               dir + "/model.safetensors.index.json: JSON nested deeper than 256"),
              "");
  }
}

TEST(HardeningJson, OversizedFilesAndRowsAreRefused) {
  // Sparse files: 300 MB on paper, nothing on disk.
  const std::string dir = testkit::make_temp_dir("hardening-size");
  const std::string config = dir + "/config.json";
  write_text(config, "{");
  ASSERT_EQ(::truncate(config.c_str(), 300'000'000), 0);
  EXPECT_EQ(contains_message(error_of([&] { load_config(config); }),
                             config + ": 300000000 bytes, larger than spinlm's limit of 256 MiB"),
            "");
  const std::string rows = dir + "/rows.jsonl";
  write_text(rows, "{\"a\": 1}\n{\"text\": \"");
  ASSERT_EQ(::truncate(rows.c_str(), 300'000'000), 0);
  EXPECT_EQ(contains_message(error_of([&] { read_jsonl(rows); }),
                             rows + ":2: a line longer than spinlm's limit of 256 MiB"),
            "");
}

TEST(HardeningJson, NormalInputsStillParse) {
  // The byte model's own files load, and a JSONL row with brackets inside strings is a row.
  EXPECT_NO_THROW(load_config(byte_model() + "/config.json"));
  EXPECT_NO_THROW(TextCodec::load(byte_model()));
  EXPECT_NO_THROW(SafetensorsFolder folder(byte_model()));
  const std::string dir = testkit::make_temp_dir("hardening-normal");
  const std::string path = dir + "/rows.jsonl";
  write_text(path, "{\"text\": \"[[[{{{\\\"]]]\"}\r\n\n{\"ids\": [[1], [2]]}");
  const auto rows = read_jsonl(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].value["text"], "[[[{{{\"]]]");
  EXPECT_EQ(rows[1].line, 3);
  // A row longer than the reader's 64 KiB chunks is read whole.
  write_text(path, "{\"text\": \"" + std::string(200000, 'x') + "\"}\n");
  EXPECT_EQ(read_jsonl(path).at(0).value["text"].get<std::string>().size(), 200000u);
}

TEST(HardeningJson, DeepRecipeYamlIsAnError) {
  // Recipes are YAML: yaml-cpp's parser has its own depth guard.
  const std::string message = error_of([] {
    parse_recipe("model: " + nested_arrays(kHostileDepth) + "\n", "deep.yaml", ".");
  });
  EXPECT_EQ(contains_message(message, "deep.yaml:1: not valid YAML"), "");
}

// ---- shard indexes: only files inside the model folder ----

namespace {

// A sharded copy of the byte model whose index names `shard` for every tensor; the real
// shard is moved to `shard_location` (relative to the folder, or absolute).
std::string index_naming(const std::string& label, const std::string& shard) {
  const std::string dir = copy_model(label);
  nlohmann::json weight_map = nlohmann::json::object();
  SafetensorsFile file(dir + "/model.safetensors");
  for (const auto& [name, entry] : file.entries()) weight_map[name] = shard;
  write_text(dir + "/model.safetensors.index.json", nlohmann::json{{"weight_map", weight_map}}.dump());
  return dir;
}

}  // namespace

TEST(HardeningShards, IndexEntriesMustStayInsideTheFolder) {
  // ../elsewhere/w.safetensors, with a real file there: refused, not followed.
  {
    const std::string dir = index_naming("hardening-dotdot", "../elsewhere/w.safetensors");
    fs::create_directories(fs::path(dir).parent_path() / "elsewhere");
    fs::rename(dir + "/model.safetensors", fs::path(dir).parent_path() / "elsewhere" / "w.safetensors");
    const std::string message = error_of([&] { SafetensorsFolder folder(dir); });
    EXPECT_EQ(contains_message(message, dir + "/model.safetensors.index.json: weight_map entry \""), "");
    EXPECT_EQ(contains_message(message, "\"../elsewhere/w.safetensors\" has a '..' component"), "");
  }
  // An absolute path to a real file.
  {
    const std::string outside = testkit::make_temp_dir("hardening-absolute-target") + "/w.safetensors";
    const std::string dir = index_naming("hardening-absolute", outside);
    fs::rename(dir + "/model.safetensors", outside);
    const std::string message = error_of([&] { SafetensorsFolder folder(dir); });
    EXPECT_EQ(contains_message(message, "\"" + outside + "\" is an absolute path"), "");
  }
  // A link inside the folder that resolves outside it.
  {
    const std::string dir = index_naming("hardening-link-out", "model-00001-of-00001.safetensors");
    const std::string outside = testkit::make_temp_dir("hardening-link-target") + "/w.safetensors";
    fs::rename(dir + "/model.safetensors", outside);
    fs::create_symlink(outside, dir + "/model-00001-of-00001.safetensors");
    const std::string message = error_of([&] { SafetensorsFolder folder(dir); });
    EXPECT_EQ(contains_message(message, "\"model-00001-of-00001.safetensors\" is a link to " +
                                            fs::canonical(outside).string() + ", outside the model folder"),
              "");
  }
  // Links that stay inside the folder, and a Hugging Face cache snapshot's links into its
  // blobs/, load.
  {
    const std::string dir = index_naming("hardening-link-in", "model-00001-of-00001.safetensors");
    fs::create_directories(dir + "/weights");
    fs::rename(dir + "/model.safetensors", dir + "/weights/w.safetensors");
    fs::create_symlink("weights/w.safetensors", dir + "/model-00001-of-00001.safetensors");
    SafetensorsFolder folder(dir);
    EXPECT_FALSE(folder.names().empty());
  }
  {
    const std::string repo = testkit::make_temp_dir("hardening-hub") + "/models--x--tiny";
    const std::string snapshot = repo + "/snapshots/0123abc";
    fs::create_directories(repo + "/blobs");
    fs::create_directories(fs::path(snapshot).parent_path());
    fs::copy(index_naming("hardening-hub-source", "model-00001-of-00001.safetensors"), snapshot,
             fs::copy_options::recursive);
    fs::rename(snapshot + "/model.safetensors", repo + "/blobs/5f3e");
    fs::create_symlink("../../blobs/5f3e", snapshot + "/model-00001-of-00001.safetensors");
    SafetensorsFolder folder(snapshot);
    EXPECT_FALSE(folder.names().empty());
  }
}

// ---- safetensors: sizes a header cannot lie about ----

TEST(HardeningSafetensors, HeaderSizesAreCheckedAgainstTheFile) {
  const std::string dir = testkit::make_temp_dir("hardening-safetensors");
  const std::string tensor = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  {
    // A header length of 2^62 bytes in a small file.
    const std::string path = dir + "/long-header.safetensors";
    write_raw_safetensors(path, "{" + tensor + "}", 8, uint64_t{1} << 62);
    EXPECT_EQ(contains_message(error_of([&] { SafetensorsFile file(path); }),
                               path + ": header length 4611686018427387904 runs past the end of the file"),
              "");
  }
  {
    // A header length within the file but above the format's 100 MB (a sparse file).
    const std::string path = dir + "/huge-header.safetensors";
    write_raw_safetensors(path, "{}", 0, 150'000'000);
    ASSERT_EQ(::truncate(path.c_str(), 150'000'008), 0);
    EXPECT_EQ(contains_message(error_of([&] { SafetensorsFile file(path); }), "larger than the 100 MB safetensors limit"),
              "");
  }
  {
    // A tensor whose byte range ends past the end of the file.
    const std::string path = dir + "/past-end.safetensors";
    write_raw_safetensors(path, R"({"a":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}})", 8);
    EXPECT_EQ(contains_message(error_of([&] { SafetensorsFile file(path); }),
                               "tensor \"a\": data_offsets [0, 4000000] out of bounds: the data section has 8 bytes"),
              "");
  }
  {
    // More than a million tensors: refused while parsing, before any entry is built.
    const std::string path = dir + "/many.safetensors";
    std::string header = "{";
    for (int i = 0; i <= 1'000'000; ++i) header += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
    header += "}";
    write_raw_safetensors(path, header, 0);
    EXPECT_EQ(contains_message(error_of([&] { SafetensorsFile file(path); }),
                               path + ": the header lists more than 1000000 tensors"),
              "");
  }
}

// ---- chat templates: limits a template cannot lift ----

namespace {

// Renders source with no messages; returns the error ("" when it rendered) and the seconds it took.
std::pair<std::string, double> render_error(const std::string& source) {
  const auto start = std::chrono::steady_clock::now();
  std::string error;
  try {
    ChatTemplate chat_template(source, "hostile.jinja");
    chat_template.render({}, false);
  } catch (const Error& e) {
    error = e.what();
  }
  return {error, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

}  // namespace

TEST(HardeningTemplates, DoublingAStringInANamespaceLoopStopsQuickly) {
  const auto [error, seconds] = render_error(
      "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"
      "{{ ns.s | length }}");
  EXPECT_EQ(contains_message(error, "hostile.jinja:1: the template builds a string of"), "");
  EXPECT_EQ(contains_message(error, "kMaxStringBytes"), "");
  EXPECT_LT(seconds, 2.0 * kSanitizerSlowdown);
  // The same with ~ and with a list that doubles.
  EXPECT_EQ(contains_message(render_error("{% set ns = namespace(s='x') %}{% for i in range(40) %}"
                                          "{% set ns.s = ns.s ~ ns.s %}{% endfor %}").first,
                             "kMaxStringBytes"),
            "");
  EXPECT_EQ(contains_message(render_error("{% set ns = namespace(l=[1]) %}{% for i in range(40) %}"
                                          "{% set ns.l = ns.l + ns.l %}{% endfor %}").first,
                             "kMaxItems"),
            "");
}

TEST(HardeningTemplates, SizesATemplateAsksForAreChecked) {
  for (const std::string& source : {
           std::string("{{ 'x' * 100000000 }}"),
           std::string("{{ 'a'.center(10000000000) }}"),
           std::string("{{ 'a'.zfill(10000000000) }}"),
           std::string("{{ '{:>999999999}'.format('a') }}"),
           std::string("{{ '%999999999s' % 'a' }}"),
           std::string("{{ 'a\\nb' | indent(1000000000, true) }}"),
           std::string("{{ [1, [2]] | tojson(indent=1000000000) }}"),
           std::string("{% set s = 'ab' * 10000000 %}{{ s.replace('a', 'xxxxxxxx') | length }}"),
       }) {
    const auto [error, seconds] = render_error(source);
    EXPECT_EQ(contains_message(error, "kMaxStringBytes"), "") << source;
    EXPECT_LT(seconds, 5.0 * kSanitizerSlowdown) << source;
  }
  EXPECT_EQ(contains_message(render_error("{{ (range(100000) | list) * 20 }}").first, "kMaxItems"), "");
  EXPECT_EQ(contains_message(render_error("{{ ('x' * 20000000) | list | length }}").first, "kMaxItems"), "");
  EXPECT_EQ(contains_message(render_error("{{ ('a' * 20000000).split('a') | length }}").first, "kMaxItems"), "");
}

TEST(HardeningTemplates, SubstringSearchTakesLinearTime) {
  // A needle that matches all but its last byte at every position: quadratic for a naive search.
  const std::string setup = "{% set a = 'a' * 20000000 %}{% set b = 'a' * 10000000 ~ 'b' %}";
  for (const std::string& use : {"{{ b in a }}", "{{ a.count(b) }}", "{{ a.find(b) }}", "{{ a.rfind(b) }}",
                                 "{{ a.split(b) | length }}", "{{ a.replace(b, '') | length }}"}) {
    const auto [error, seconds] = render_error(setup + use);
    EXPECT_EQ(error, "") << use;
    EXPECT_LT(seconds, 5.0 * kSanitizerSlowdown) << use;
  }
}

TEST(HardeningTemplates, OutputAndTotalBuiltBytesAreBounded) {
  auto [error, seconds] = render_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}");
  EXPECT_EQ(contains_message(error, "kMaxOutputBytes"), "");
  EXPECT_LT(seconds, 5.0 * kSanitizerSlowdown);
  std::tie(error, seconds) = render_error("{% for i in range(100000) %}{% set s = 'x' * 30000000 %}{% endfor %}");
  EXPECT_EQ(contains_message(error, "kMaxBuiltBytes"), "");
  EXPECT_LT(seconds, 5.0 * kSanitizerSlowdown);
}

TEST(HardeningTemplates, RecursionIsBounded) {
  // A runaway macro: jinja2's message, with the limit named.
  auto [error, seconds] = render_error("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}");
  EXPECT_EQ(contains_message(error, "maximum recursion depth exceeded"), "");
  EXPECT_EQ(contains_message(error, "kMaxMacroDepth"), "");
  // Each macro level deep inside blocks and brackets: the renderer's depth limit holds first.
  std::string nested_blocks;
  std::string closing;
  for (int i = 0; i < 60; ++i) {
    nested_blocks += "{% if true %}";
    closing += "{% endif %}";
  }
  std::tie(error, seconds) = render_error("{% macro r(n) %}" + nested_blocks + "{{ " + std::string(100, '(') +
                                          "r(n + 1)" + std::string(100, ')') + " }}" + closing +
                                          "{% endmacro %}{{ r(0) }}");
  EXPECT_EQ(contains_message(error, "maximum recursion depth exceeded"), "");
  EXPECT_EQ(contains_message(error, "kMaxRenderDepth"), "");
  // The same with a deep expression tree (each + a level) around the call.
  std::string sum;
  for (int i = 0; i < 200; ++i) sum += "1 + (";
  std::tie(error, seconds) = render_error("{% macro r(n) %}{{ " + sum + "r(n + 1)" + std::string(200, ')') +
                                          " }}{% endmacro %}{{ r(0) }}");
  EXPECT_EQ(contains_message(error, "kMaxRenderDepth"), "");
  // Syntax nested past the limit is refused when parsed: brackets, unary operators, operator
  // and filter chains, blocks.
  for (const std::string& source : {
           "{{ " + std::string(kHostileDepth, '(') + "1" + std::string(kHostileDepth, ')') + " }}",
           "{{ " + std::string(kHostileDepth, '-') + "1 }}",
           [] {
             std::string chain = "{{ 1";
             for (int i = 0; i < kHostileDepth; ++i) chain += " ~ 1";
             return chain + " }}";
           }(),
           [] {
             std::string chain = "{{ 'a'";
             for (int i = 0; i < kHostileDepth; ++i) chain += " | trim";
             return chain + " }}";
           }(),
           [] {
             std::string blocks;
             for (int i = 0; i < 20000; ++i) blocks += "{% if true %}";
             return blocks;
           }(),
       }) {
    std::tie(error, seconds) = render_error(source);
    EXPECT_EQ(contains_message(error, "kMaxSyntaxDepth"), "") << source.substr(0, 40);
  }
}

TEST(HardeningTemplates, ExponentialRecursionIsBoundedInSteps) {
  // Each call makes two: 2^60 calls, none deeper than 60 and none in a loop.
  const auto [error, seconds] = render_error(
      "{% macro r(n) %}{% if n < 60 %}{{ r(n + 1) }}{{ r(n + 1) }}{% endif %}{% endmacro %}{{ r(0) }}");
  EXPECT_EQ(contains_message(error, "kMaxRenderSteps"), "");
  EXPECT_LT(seconds, 60.0 * kSanitizerSlowdown);
}

TEST(HardeningTemplates, DeepAndCyclicValuesFailToPrintAndAreFreed) {
  // A list nested 100,000 deep: building it is allowed, printing it is not, and freeing it
  // (at the end of the render) does not overflow the stack.
  const std::string build = "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}";
  auto [error, seconds] = render_error(build + "{{ ns.l | length }}");
  EXPECT_EQ(error, "");
  std::tie(error, seconds) = render_error(build + "{{ ns.l }}");
  EXPECT_EQ(contains_message(error, "kMaxValueDepth"), "");
  std::tie(error, seconds) = render_error(build + "{{ ns.l | tojson }}");
  EXPECT_EQ(contains_message(error, "kMaxValueDepth"), "");
  std::tie(error, seconds) = render_error(build + "{{ ns.l == ns.l }}");
  EXPECT_EQ(contains_message(error, "kMaxValueDepth"), "");
  // A namespace that holds itself.
  std::tie(error, seconds) = render_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}");
  EXPECT_EQ(contains_message(error, "kMaxValueDepth"), "");
}

TEST(HardeningTemplates, LoopIterationsAndTemplateSizeAreBounded) {
  // Over a list built once (a fresh range() per iteration would hit kMaxBuiltBytes first).
  auto [error, seconds] = render_error(
      "{% set xs = range(100000) | list %}{% for i in xs %}{% for j in xs %}{% endfor %}{% endfor %}");
  EXPECT_EQ(contains_message(error, "kMaxLoopIterations"), "");
  EXPECT_LT(seconds, 60.0 * kSanitizerSlowdown);
  std::tie(error, seconds) = render_error(std::string(5 << 20, 'x'));
  EXPECT_EQ(contains_message(error, "hostile.jinja: the template is 5242880 bytes"), "");
  EXPECT_EQ(contains_message(error, "kMaxTemplateBytes"), "");
}

TEST(HardeningTemplates, RealTemplatesStillRender) {
  // An ordinary template well inside every limit (the reference suites cover the rest).
  ChatTemplate chat_template(
      "{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}{% if not loop.last %}{{ '\\n' }}{% endif %}"
      "{% endfor %}{% if add_generation_prompt %}{{ '\\n' }}<|assistant|>{% endif %}",
      "ordinary");
  EXPECT_EQ(chat_template.render({{"user", " hi "}, {"assistant", "hello"}}, true),
            "<|user|>hi\n<|assistant|>hello\n<|assistant|>");
}
