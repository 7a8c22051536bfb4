// core/ and io/jsonl: atomic files, JSONL errors naming file and line, resumable output.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/jsonl.h"
#include "testkit.h"

using namespace spinlm;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST(AtomicFile, AppearsOnlyOnCommit) {
  std::string dir = testkit::make_temp_dir("atomic");
  std::string path = dir + "/out.txt";
  {
    AtomicFile file(path);
    file.write("half");
    EXPECT_FALSE(file_exists(path));
  }  // destroyed without commit: nothing appears, no temp file left
  EXPECT_FALSE(file_exists(path));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 0);
  write_file_atomic(path, "whole");
  EXPECT_EQ(read_file(path), "whole");
}

TEST(Jsonl, ErrorsNameFileAndLine) {
  std::string dir = testkit::make_temp_dir("jsonl");
  std::string path = dir + "/bad.jsonl";
  write_text(path, "{\"a\":1}\n\n{\"a\":2\n");
  std::string message = error_of([&] { read_jsonl(path); });
  EXPECT_NE(message.find(path + ":3: not valid JSON"), std::string::npos) << message;

  write_text(path, "{\"a\":1}\n[1,2]\n");
  message = error_of([&] { read_jsonl(path); });
  EXPECT_NE(message.find(path + ":2: expected a JSON object"), std::string::npos) << message;

  write_text(path, "{\"text\":\"\xff\xfe\"}\n");
  message = error_of([&] { read_jsonl(path); });
  EXPECT_NE(message.find(path + ":1:"), std::string::npos) << message;

  write_text(path, "{\"ids\":[1,\"x\"]}\n");
  auto rows = read_jsonl(path);
  message = error_of([&] { require_ids(rows[0].value, "ids", path + ":1"); });
  EXPECT_NE(message.find("field \"ids\" must hold integers"), std::string::npos) << message;
  message = error_of([&] { require_string(rows[0].value, "text", path + ":1"); });
  EXPECT_NE(message.find("missing field \"text\""), std::string::npos) << message;
}

TEST(Jsonl, ResumableDropsTornLineAndContinues) {
  std::string dir = testkit::make_temp_dir("resumable");
  std::string path = dir + "/out.jsonl";
  {
    ResumableJsonl out(path);
    EXPECT_TRUE(out.existing_rows().empty());
    out.append({{"i", 0}});
    out.append({{"i", 1}});
  }
  // A kill in the middle of a write leaves a torn last line.
  std::ofstream(path + ".partial", std::ios::app) << "{\"i\":";
  {
    ResumableJsonl out(path);
    ASSERT_EQ(out.existing_rows().size(), 2u);
    EXPECT_EQ(out.existing_rows()[1]["i"], 1);
    out.append({{"i", 2}});
    out.finish();
  }
  EXPECT_FALSE(file_exists(path + ".partial"));
  auto rows = read_jsonl(path);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].value["i"], 2);
}
