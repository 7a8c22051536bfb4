// io/safetensors: bit-exact round trips, every malformed-file error, sharded folders, and
// an independent Python reader/writer (tests/reference/safetensors_reference.py) on both
// directions of the format.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "testkit.h"

using namespace spinlm;
using json = nlohmann::json;

namespace {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

// The tensor's raw bits as integers (floats viewed as same-size signed ints), the same
// encoding the Python reference prints.
std::vector<int64_t> bits_of(const at::Tensor& tensor) {
  at::Tensor flat = tensor.contiguous().reshape({-1});
  switch (flat.element_size()) {
    case 8: flat = flat.view(at::kLong); break;
    case 4: flat = flat.view(at::kInt).to(at::kLong); break;
    case 2: flat = flat.view(at::kShort).to(at::kLong); break;
    default: flat = flat.to(at::kLong); break;
  }
  return std::vector<int64_t>(flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel());
}

std::vector<int64_t> json_bits(const json& value) { return value.get<std::vector<int64_t>>(); }

// Every dtype, special float values, a non-contiguous transpose, a strided slice, a view
// with a storage offset, a scalar and empty shapes.
NamedTensors sample_tensors() {
  at::manual_seed(7);
  float nan_payload;
  uint32_t payload_bits = 0x7fc01234u;
  std::memcpy(&nan_payload, &payload_bits, 4);
  at::Tensor special =
      at::tensor({std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                  nan_payload, -0.0f, std::numeric_limits<float>::denorm_min(),
                  std::numeric_limits<float>::max()});
  at::Tensor base = at::randn({6, 8});
  return {
      {"model.layers.0.weight", at::randn({4, 3})},
      {"f32_special", special},
      {"transposed", base.t()},                                   // [8, 6], not contiguous
      {"strided", base.slice(1, 1, 8, 3)},                        // [6, 3], stride 3
      {"offset_view", base[2]},                                   // storage offset 16
      {"f16", at::randn({5, 2}).to(at::kHalf).t()},               // non-contiguous half
      {"bf16", at::randn({3, 7}).to(at::kBFloat16)},
      {"f64", at::randn({3}, at::kDouble)},
      {"i64", at::tensor({std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                          int64_t{0}, int64_t{-3}})},
      {"i64_strided", at::arange(20, at::kLong).reshape({4, 5}).slice(1, 0, 5, 2)},
      {"i32", at::tensor({-7, 1 << 30}, at::kInt)},
      {"i16", at::tensor({-32768, 32767}, at::kShort)},
      {"i8", at::tensor({-128, 127, 5}, at::kChar)},
      {"u8", at::tensor({0, 255}, at::kByte)},
      {"bool", at::tensor({1, 0, 1}, at::kByte).to(at::kBool)},
      {"scalar", at::scalar_tensor(2.5)},
      {"scalar_bf16", at::scalar_tensor(-1.25, at::kBFloat16)},
      {"empty", at::empty({0, 4})},
      {"empty_i64", at::empty({3, 0}, at::kLong)},
  };
}

// A raw safetensors file from a header text and a data section of data_bytes bytes.
std::string write_raw(const std::string& dir, const std::string& name, const std::string& header,
                      size_t data_bytes, std::optional<uint64_t> declared_size = std::nullopt) {
  std::string path = dir + "/" + name;
  std::ofstream out(path, std::ios::binary);
  uint64_t n = declared_size.value_or(header.size());
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\x01');
  return path;
}

}  // namespace

TEST(Safetensors, RoundTripIsBitExact) {
  std::string dir = testkit::make_temp_dir("st-roundtrip");
  std::string path = dir + "/all.safetensors";
  NamedTensors tensors = sample_tensors();
  write_safetensors(path, tensors);

  SafetensorsFile file(path);
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(file.entries().size(), tensors.size());
  for (const auto& [name, original] : tensors) {
    SCOPED_TRACE(name);
    const SafetensorsEntry& entry = file.entries().at(name);
    EXPECT_EQ(entry.dtype, safetensors_dtype_name(original.scalar_type()));
    EXPECT_EQ(entry.shape, original.sizes().vec());
    at::Tensor back = file.tensor(name, original.scalar_type());
    EXPECT_EQ(back.scalar_type(), original.scalar_type());
    EXPECT_EQ(back.sizes(), original.sizes());
    EXPECT_EQ(bits_of(back), bits_of(original));
  }
  // The header is padded to a multiple of 8, so every tensor's data is aligned.
  std::string bytes = read_file(path);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  // Tensors outlive the file they came from (they are copies, not views of the mapping).
  at::Tensor kept = SafetensorsFile(path).tensor("bf16", at::kBFloat16);
  EXPECT_EQ(bits_of(kept), bits_of(tensors[6].second));
}

TEST(Safetensors, ConvertsToTheRequestedDtype) {
  std::string dir = testkit::make_temp_dir("st-convert");
  std::string path = dir + "/c.safetensors";
  at::Tensor bf16 = at::randn({4, 4}).to(at::kBFloat16);
  at::Tensor f16 = at::randn({4}).to(at::kHalf);
  at::Tensor flags = at::tensor({1, 0}, at::kByte).to(at::kBool);
  write_safetensors(path, {{"bf16", bf16}, {"f16", f16}, {"flags", flags}});
  SafetensorsFile file(path);
  at::Tensor as_float = file.tensor("bf16");  // default: fp32 on the CPU
  EXPECT_EQ(as_float.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(as_float, bf16.to(at::kFloat)));
  EXPECT_TRUE(at::equal(file.tensor("f16", at::kDouble), f16.to(at::kDouble)));
  EXPECT_TRUE(at::equal(file.tensor("flags", at::kLong), at::tensor({int64_t{1}, int64_t{0}})));
  EXPECT_EQ(safetensors_scalar_type("BF16"), at::kBFloat16);
  EXPECT_NE(error_of([] { safetensors_scalar_type("U16"); }).find("no libtorch equivalent"),
            std::string::npos);
}

TEST(Safetensors, WriterRefusesBadInput) {
  std::string dir = testkit::make_temp_dir("st-write-errors");
  std::string path = dir + "/w.safetensors";
  at::Tensor t = at::zeros({2});
  EXPECT_NE(error_of([&] { write_safetensors(path, {{"a", t}, {"a", t}}); })
                .find("tensor \"a\" given twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { write_safetensors(path, {{"c", at::zeros({2}, at::kComplexFloat)}}); })
                .find("safetensors cannot store"),
            std::string::npos);
  EXPECT_FALSE(file_exists(path));
}

// Each malformed file is refused with an Error naming the file and the problem.
TEST(Safetensors, MalformedFilesAreRefused) {
  std::string dir = testkit::make_temp_dir("st-malformed");
  const std::string ok = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    std::string label;
    std::string path;
    std::string problem;
  };
  std::vector<Case> cases;
  auto add = [&](const std::string& label, const std::string& header, size_t data_bytes,
                 const std::string& problem, std::optional<uint64_t> declared = std::nullopt) {
    cases.push_back({label, write_raw(dir, label + ".safetensors", header, data_bytes, declared),
                     problem});
  };
  {
    std::string path = dir + "/short.safetensors";
    std::ofstream(path, std::ios::binary) << "abc";
    cases.push_back({"short", path, "shorter than the 8-byte header length"});
    std::string empty = dir + "/empty.safetensors";
    std::ofstream(empty, std::ios::binary).flush();
    cases.push_back({"empty", empty, "0 bytes, shorter than the 8-byte header length"});
  }
  add("header-past-end", "{" + ok + "}", 8, "header length 1000 runs past the end of the file",
      1000);
  add("truncated-data", "{" + ok + "}", 5, "out of bounds: the data section has 5 bytes");
  add("bad-json", "{\"a\":{\"dtype\":\"F32\",", 0, "header is not valid JSON");
  add("not-object", "[1, 2]", 0, "header is not a JSON object");
  add("no-dtype", R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8,
      "tensor \"a\": missing \"dtype\"");
  add("no-shape", R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8,
      "tensor \"a\": missing \"shape\"");
  add("no-offsets", R"({"a":{"dtype":"F32","shape":[2]}})", 8,
      "tensor \"a\": missing \"data_offsets\"");
  add("unknown-dtype", R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8,
      "tensor \"a\": unknown dtype \"Q4\"");
  add("negative-shape", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8,
      "shape entry must be a non-negative integer");
  add("bad-offsets", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8,
      "\"data_offsets\" must be an array [begin, end]");
  add("out-of-bounds", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8,
      "tensor \"a\": data_offsets [8, 16] out of bounds: the data section has 8 bytes");
  add("begin-after-end", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8,
      "tensor \"a\": data_offsets [8, 0] has begin > end");
  add("size-mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8,
      "tensor \"a\": size mismatch: dtype F32 and shape [3] need 12 bytes but data_offsets "
      "[0, 8] span 8");
  add("dtype-mismatch", R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", 8,
      "size mismatch: dtype F16 and shape [2] need 4 bytes");
  add("overlap",
      "{" + ok + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12,
      "tensor \"b\" (data_offsets [4, 12]) overlaps tensor \"a\"");
  add("gap", "{" + ok + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", 16,
      "gap in the data section: bytes [8, 12) before tensor \"b\"");
  add("not-from-zero", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
      "gap in the data section: bytes [0, 4)");
  add("trailing-bytes", "{" + ok + "}", 12,
      "the data section has 12 bytes but the tensors cover only 8");
  add("duplicate", "{" + ok + "," + ok + "}", 8, "duplicate tensor name \"a\"");
  add("bad-metadata", "{" + ok + R"(,"__metadata__":{"format":1}})", 8,
      "\"__metadata__\" value \"format\" is not a string");
  cases.push_back({"missing", dir + "/missing.safetensors", "cannot open"});

  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    std::string message = error_of([&] { SafetensorsFile file(c.path); });
    EXPECT_EQ(message.rfind(c.path + ": ", 0), 0u) << message;  // starts with the file
    EXPECT_NE(message.find(c.problem), std::string::npos) << message;
  }

  // A well-formed file with the same data is accepted, and an absent tensor is named.
  SafetensorsFile good(write_raw(dir, "good.safetensors", "{" + ok + "}   ", 8));
  EXPECT_TRUE(good.contains("a"));
  std::string message = error_of([&] { good.tensor("b"); });
  EXPECT_NE(message.find(good.path() + ": no tensor \"b\""), std::string::npos) << message;
}

TEST(Safetensors, ShardedFolderWriteAndRead) {
  std::string dir = testkit::make_temp_dir("st-folder");
  NamedTensors tensors;
  at::manual_seed(3);
  for (int i = 0; i < 5; ++i) {
    tensors.emplace_back("layers." + std::to_string(i) + ".w", at::randn({8, 8}));  // 256 B
  }
  tensors.emplace_back("big", at::randn({40, 8}));              // 1280 B: a shard of its own
  tensors.emplace_back("norm", at::ones({8}, at::kBFloat16));  // 16 B
  // Greedy in order with a 600-byte limit: {0,1} {2,3} {4} {big} {norm}.
  write_safetensors_folder(dir, tensors, 600);
  const std::vector<std::vector<std::string>> expected_shards = {
      {"layers.0.w", "layers.1.w"}, {"layers.2.w", "layers.3.w"}, {"layers.4.w"}, {"big"},
      {"norm"}};
  json index = json::parse(read_file(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 5 * 256 + 1280 + 16);
  for (size_t s = 0; s < expected_shards.size(); ++s) {
    std::string shard = "model-0000" + std::to_string(s + 1) + "-of-00005.safetensors";
    for (const std::string& name : expected_shards[s]) EXPECT_EQ(index["weight_map"][name], shard);
    SafetensorsFile file(dir + "/" + shard);
    EXPECT_EQ(file.entries().size(), expected_shards[s].size());
    EXPECT_EQ(file.metadata().at("format"), "pt");
  }
  EXPECT_FALSE(file_exists(dir + "/model.safetensors"));

  SafetensorsFolder folder(dir);
  EXPECT_EQ(folder.names().size(), tensors.size());
  for (const auto& [name, original] : tensors) {
    EXPECT_EQ(bits_of(folder.tensor(name, original.scalar_type())), bits_of(original)) << name;
  }
  EXPECT_EQ(folder.file_of("big"), dir + "/model-00004-of-00005.safetensors");
  EXPECT_EQ(folder.entry("norm").dtype, "BF16");
  EXPECT_NE(error_of([&] { folder.tensor("nope"); }).find(dir + ": no tensor \"nope\""),
            std::string::npos);

  // Rewritten as one file: the shards and the index go.
  write_safetensors_folder(dir, tensors, 0);
  EXPECT_TRUE(file_exists(dir + "/model.safetensors"));
  EXPECT_FALSE(file_exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(file_exists(dir + "/model-00001-of-00005.safetensors"));
  EXPECT_EQ(bits_of(SafetensorsFolder(dir).tensor("big")), bits_of(tensors[5].second));

  // Sharded again with another count: the single file goes, and so do stale shards.
  write_safetensors_folder(dir, tensors, 600);
  write_safetensors_folder(dir, tensors, 2000);  // {layers 0-4} {big, norm}
  EXPECT_FALSE(file_exists(dir + "/model.safetensors"));
  EXPECT_FALSE(file_exists(dir + "/model-00005-of-00005.safetensors"));
  EXPECT_TRUE(file_exists(dir + "/model-00002-of-00002.safetensors"));
  size_t files = std::distance(std::filesystem::directory_iterator(dir), {});
  EXPECT_EQ(files, 3u);  // two shards + index, no temporary files
  SafetensorsFolder again(dir);
  EXPECT_EQ(again.names().size(), tensors.size());
  EXPECT_EQ(again.file_of("norm"), dir + "/model-00002-of-00002.safetensors");
}

TEST(Safetensors, FolderErrors) {
  std::string base = testkit::make_temp_dir("st-folder-errors");
  std::string message = error_of([&] { SafetensorsFolder folder(base); });
  EXPECT_NE(message.find(base + ": no model.safetensors or model.safetensors.index.json"),
            std::string::npos)
      << message;

  NamedTensors tensors = {{"a", at::zeros({100})}, {"b", at::zeros({100})}};
  write_safetensors_folder(base, tensors, 500);  // two shards
  std::string index_path = base + "/model.safetensors.index.json";

  write_file_atomic(index_path, "{\"weight_map\": {\"a\": ");
  message = error_of([&] { SafetensorsFolder folder(base); });
  EXPECT_NE(message.find(index_path + ": not valid JSON"), std::string::npos) << message;

  write_file_atomic(index_path, R"({"metadata": {}})");
  message = error_of([&] { SafetensorsFolder folder(base); });
  EXPECT_NE(message.find(index_path + ": missing \"weight_map\" object"), std::string::npos)
      << message;

  write_file_atomic(index_path, R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                    "b": "model-00009-of-00009.safetensors"}})");
  message = error_of([&] { SafetensorsFolder folder(base); });
  EXPECT_NE(message.find(index_path + ": shard \"model-00009-of-00009.safetensors\" named in "
                                      "weight_map (for tensor \"b\") is missing"),
            std::string::npos)
      << message;

  write_file_atomic(index_path, R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                    "b": "model-00001-of-00002.safetensors"}})");
  message = error_of([&] { SafetensorsFolder folder(base); });
  EXPECT_NE(message.find(index_path + ": tensor \"b\" is listed in weight_map under "
                                      "\"model-00001-of-00002.safetensors\" but absent"),
            std::string::npos)
      << message;

  // A malformed shard is reported under its own name.
  std::ofstream(base + "/model-00002-of-00002.safetensors", std::ios::binary) << "xy";
  write_file_atomic(index_path, R"({"weight_map": {"b": "model-00002-of-00002.safetensors"}})");
  message = error_of([&] { SafetensorsFolder folder(base); });
  EXPECT_NE(message.find(base + "/model-00002-of-00002.safetensors: truncated"),
            std::string::npos)
      << message;
}

// spinlm writes, the independent Python reader parses: same bits, the documented layout.
// One file and a sharded folder (the reader follows the index and checks total_size and
// weight_map), in one Python run.
TEST(Safetensors, PythonReaderAgrees) {
  std::string dir = testkit::make_temp_dir("st-python-read");
  NamedTensors tensors = sample_tensors();
  std::string file = dir + "/all.safetensors";
  std::string folder = dir + "/folder";
  write_safetensors(file, tensors);
  write_safetensors_folder(folder, tensors, 100);
  std::string file_json = dir + "/file.json";
  std::string folder_json = dir + "/folder.json";
  auto result = testkit::run_python_reference(
      "safetensors_reference.py", "read " + testkit::shell_quote(file) + " " +
                                      testkit::shell_quote(file_json) + " " +
                                      testkit::shell_quote(folder) + " " +
                                      testkit::shell_quote(folder_json));
  ASSERT_EQ(result.exit_code, 0) << result.output;

  json parsed = json::parse(read_file(file_json));
  EXPECT_EQ(parsed["metadata"], json({{"format", "pt"}}));
  ASSERT_EQ(parsed["tensors"].size(), tensors.size());
  for (const auto& [name, original] : tensors) {
    SCOPED_TRACE(name);
    const json& seen = parsed["tensors"][name];
    EXPECT_EQ(seen["dtype"], safetensors_dtype_name(original.scalar_type()));
    EXPECT_EQ(seen["shape"].get<std::vector<int64_t>>(), original.sizes().vec());
    EXPECT_EQ(json_bits(seen["bits"]), bits_of(original));
  }

  parsed = json::parse(read_file(folder_json));
  EXPECT_GT(parsed["files"].size(), 3u);
  ASSERT_EQ(parsed["tensors"].size(), tensors.size());
  for (const auto& [name, original] : tensors) {
    EXPECT_EQ(json_bits(parsed["tensors"][name]["bits"]), bits_of(original)) << name;
  }
}

// The independent Python writer's files (misaligned data, entries in reverse name order,
// extra metadata, a sharded folder) read back with the same bits and conversions.
TEST(Safetensors, ReadsPythonWrittenFiles) {
  std::string dir = testkit::make_temp_dir("st-python-write");
  auto result =
      testkit::run_python_reference("safetensors_reference.py", "write " + testkit::shell_quote(dir));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  json expected = json::parse(read_file(dir + "/expected.json"));

  SafetensorsFile file(dir + "/python.safetensors");
  EXPECT_EQ(file.metadata().at("writer"), "python-reference");
  SafetensorsFolder folder(dir + "/sharded");
  ASSERT_EQ(file.entries().size(), expected["tensors"].size());
  ASSERT_EQ(folder.names().size(), expected["tensors"].size());
  for (const auto& [name, want] : expected["tensors"].items()) {
    SCOPED_TRACE(name);
    at::ScalarType native = safetensors_scalar_type(want["dtype"].get<std::string>());
    for (const at::Tensor& got : {file.tensor(name, native), folder.tensor(name, native)}) {
      EXPECT_EQ(got.sizes().vec(), want["shape"].get<std::vector<int64_t>>());
      EXPECT_EQ(bits_of(got), json_bits(want["bits"]));
    }
    at::Tensor as_float = file.tensor(name);  // converted to fp32 as torch converts
    EXPECT_EQ(bits_of(as_float), json_bits(want["f32_bits"]));
    at::Tensor as_double = file.tensor(name, at::kDouble);
    as_double = at::where(at::isfinite(as_double), as_double, at::zeros_like(as_double));
    EXPECT_NEAR(as_double.sum().item<double>(), want["finite_sum"].get<double>(), 1e-9);
    EXPECT_EQ(folder.file_of(name),
              dir + "/sharded/" + expected["weight_map"][name].get<std::string>());
  }
}
