#include "eval/results.h"

#include <cmath>
#include <cstdio>

namespace spinlm {
namespace {

nlohmann::json number_or_na(double value) {
  if (std::isnan(value)) return "N/A";
  return value;
}

nlohmann::json metrics_json(const TaskResult& result) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, summary] : result.metrics) {
    out[name] = number_or_na(summary.value);
    out[name + "_stderr"] = number_or_na(summary.stderr_value);
  }
  out["alias"] = result.name;
  return out;
}

std::string format_number(double value) {
  if (std::isnan(value)) return "N/A";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4f", value);
  return buffer;
}

std::string format_version(double version) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", version);
  return buffer;
}

}  // namespace

nlohmann::json results_to_json(const std::vector<TaskResult>& results, const nlohmann::json& run_config) {
  nlohmann::json out = {{"results", nlohmann::json::object()},   {"configs", nlohmann::json::object()},
                        {"versions", nlohmann::json::object()},  {"n-shot", nlohmann::json::object()},
                        {"n-samples", nlohmann::json::object()}, {"config", run_config}};
  for (const auto& result : results) {
    out["results"][result.name] = metrics_json(result);
    out["configs"][result.name] = result.config.to_json();
    out["versions"][result.name] = result.config.version;
    out["n-shot"][result.name] = result.config.num_fewshot;
    out["n-samples"][result.name] = {{"effective", result.num_docs}};
    for (const auto& subset : result.subsets) {
      auto entry = metrics_json(subset);
      entry["alias"] = " - " + subset.name;
      out["results"][subset.name] = entry;
      out["versions"][subset.name] = subset.config.version;
      out["n-shot"][subset.name] = subset.config.num_fewshot;
      out["n-samples"][subset.name] = {{"effective", subset.num_docs}};
    }
  }
  return out;
}

std::string format_results_table(const std::vector<TaskResult>& results) {
  std::vector<std::vector<std::string>> rows;
  auto add = [&rows](const TaskResult& result, const std::string& label) {
    bool first = true;
    for (const auto& [name, summary] : result.metrics) {
      rows.push_back({first ? label : "", first ? format_version(result.config.version) : "",
                      first ? result.config.filter.name : "", first ? std::to_string(result.config.num_fewshot) : "",
                      name, format_number(summary.value), "±", format_number(summary.stderr_value)});
      first = false;
    }
  };
  for (const auto& result : results) {
    add(result, result.name);
    for (const auto& subset : result.subsets) add(subset, " - " + subset.name);
  }
  const std::vector<std::string> header = {"Tasks", "Version", "Filter", "n-shot", "Metric", "Value", "", "Stderr"};
  std::vector<size_t> widths(header.size());
  auto width_of = [](const std::string& text) {
    size_t count = 0;
    for (unsigned char c : text) count += (c & 0xC0) != 0x80;  // code points ("±" is one)
    return count;
  };
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = width_of(header[c]);
    for (const auto& row : rows) widths[c] = std::max(widths[c], width_of(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells, bool right_numbers) {
    std::string out = "|";
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(widths[c] - width_of(cells[c]), ' ');
      const bool right = right_numbers && (c == 3 || c == 5 || c == 7);
      out += right ? pad + cells[c] : cells[c] + pad;
      out += "|";
    }
    return out + "\n";
  };
  std::string table = line(header, false);
  std::string rule = "|";
  for (size_t c = 0; c < header.size(); ++c) {
    const bool right = c == 3 || c == 5 || c == 7;
    rule += std::string(widths[c] - (right ? 1 : 0), '-') + (right ? ":" : "") + "|";
  }
  table += rule + "\n";
  for (const auto& row : rows) table += line(row, true);
  return table;
}

}  // namespace spinlm
