// core/ and io/jsonl: atomic files, JSONL errors naming file and line, resumable output,
// progress lines without empty fields.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
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

// Every field of a progress line has a value: no extra text and no known time left leave
// their field out instead of printing it empty ("2.0 steps/s, , took 5m19s").
TEST(Progress, SummaryLinesHaveNoEmptyField) {
  ProgressLine line;
  line.label = "train";
  line.unit = "steps";
  line.done = line.total = 640;
  line.rate = 2.0;
  line.final_line = true;
  line.seconds = 319;
  EXPECT_EQ(format_progress_line(line, false), "train: 640/640 steps, 2.0 steps/s, took 5m19s");
  line.extra = "loss 0.6931";
  EXPECT_EQ(format_progress_line(line, false), "train: 640/640 steps, 2.0 steps/s, loss 0.6931, took 5m19s");
  // Before the end: time left, unless nothing is done yet to estimate it from.
  line.final_line = false;
  line.done = 320;
  line.seconds = 160;
  EXPECT_EQ(format_progress_line(line, false), "train: 320/640 steps, 2.0 steps/s, loss 0.6931, left 2m40s");
  line.extra.clear();
  line.seconds = -1;
  line.rate = 0;
  EXPECT_EQ(format_progress_line(line, false), "train: 320/640 steps, 0.0 steps/s");
  // The terminal's bar line: the same fields, two spaces apart.
  line.seconds = 160;
  line.rate = 2.0;
  EXPECT_EQ(format_progress_line(line, true), "train [############............] 320/640 steps  2.0 steps/s  left 2m40s");
  line.final_line = true;
  line.done = 640;
  line.seconds = 319;
  EXPECT_EQ(format_progress_line(line, true), "train [########################] 640/640 steps  2.0 steps/s  took 5m19s");

  // A Progress logs such lines; finish() without text repeats the last update's.
  testing::internal::CaptureStderr();
  {
    Progress progress("train", 3, "steps");
    progress.update(1, "loss 0.5000");
    progress.update(3, "loss 0.2500");
    progress.finish();
  }
  {
    Progress progress("score", 2, "rows");
    progress.update(2);
    progress.finish();
  }
  const std::string logged = testing::internal::GetCapturedStderr();
  EXPECT_NE(logged.find("spinlm: train: 3/3 steps, "), std::string::npos) << logged;
  EXPECT_NE(logged.find(" steps/s, loss 0.2500, took 0s\n"), std::string::npos) << logged;
  EXPECT_NE(logged.find("spinlm: score: 2/2 rows, "), std::string::npos) << logged;
  EXPECT_NE(logged.find(" rows/s, took 0s\n"), std::string::npos) << logged;
  EXPECT_EQ(logged.find(", ,"), std::string::npos) << logged;
}
