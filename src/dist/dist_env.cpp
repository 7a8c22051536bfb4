#include "dist/dist_env.h"

#include <cstdlib>
#include <functional>
#include <optional>

#include "core/error.h"

namespace spinlm {
namespace {

using Lookup = std::function<std::optional<std::string>(const std::string&)>;

int64_t parse_integer(const std::string& name, const std::string& text) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used > 0 && used == text.size(), "environment variable ", name, " must be an integer, got \"", text, "\"");
  return value;
}

DistEnv parse(const Lookup& get) {
  DistEnv env;
  auto integer = [&](const char* name) -> std::optional<int64_t> {
    if (auto text = get(name)) return parse_integer(name, *text);
    return std::nullopt;
  };
  std::string rank_name = "RANK", size_name = "WORLD_SIZE";
  std::optional<int64_t> rank = integer("RANK"), size = integer("WORLD_SIZE"), local = integer("LOCAL_RANK");
  if (rank || size) {
    env.source = "torchrun";
  } else if (get("OMPI_COMM_WORLD_SIZE")) {
    env.source = "openmpi";
    rank_name = "OMPI_COMM_WORLD_RANK";
    size_name = "OMPI_COMM_WORLD_SIZE";
    rank = integer("OMPI_COMM_WORLD_RANK");
    size = integer("OMPI_COMM_WORLD_SIZE");
    local = integer("OMPI_COMM_WORLD_LOCAL_RANK");
  }
  if (env.source != "none") {
    check(rank.has_value(), "environment variable ", size_name, " is set but ", rank_name, " is not");
    check(size.has_value(), "environment variable ", rank_name, " is set but ", size_name, " is not");
    check(*size >= 1, "environment variable ", size_name, " must be at least 1, got ", *size);
    check(*rank >= 0 && *rank < *size, "environment variable ", rank_name, "=", *rank, " must be in [0, ",
          size_name, "=", *size, ")");
    env.rank = static_cast<int>(*rank);
    env.world_size = static_cast<int>(*size);
    // Without LOCAL_RANK every rank is taken to be on its own machine's first device.
    env.local_rank = local ? static_cast<int>(*local) : 0;
    check(env.local_rank >= 0, "environment variable LOCAL_RANK must not be negative");
  }
  if (auto addr = get("MASTER_ADDR")) {
    check(!addr->empty(), "environment variable MASTER_ADDR is empty");
    env.master_addr = *addr;
  }
  if (auto port = integer("MASTER_PORT")) {
    check(*port >= 1 && *port <= 65535, "environment variable MASTER_PORT must be in 1..65535, got ", *port);
    env.master_port = static_cast<int>(*port);
  }
  if (auto timeout = get("SPINLM_DIST_TIMEOUT")) {
    char* end = nullptr;
    env.timeout_seconds = std::strtod(timeout->c_str(), &end);
    check(end != timeout->c_str() && *end == '\0' && env.timeout_seconds > 0,
          "environment variable SPINLM_DIST_TIMEOUT must be a positive number of seconds, got \"", *timeout, "\"");
  }
  if (auto backend = get("SPINLM_DIST_BACKEND")) {
    check(*backend == "auto" || *backend == "gloo" || *backend == "nccl",
          "environment variable SPINLM_DIST_BACKEND must be auto, gloo or nccl, got \"", *backend, "\"");
    env.backend = *backend;
  }
  return env;
}

}  // namespace

DistEnv dist_env_from_environment() {
  return parse([](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

DistEnv dist_env_from_map(const std::map<std::string, std::string>& variables) {
  return parse([&](const std::string& name) -> std::optional<std::string> {
    auto found = variables.find(name);
    if (found == variables.end()) return std::nullopt;
    return found->second;
  });
}

}  // namespace spinlm
