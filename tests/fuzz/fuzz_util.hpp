#pragma once
// Shared by the fuzz targets: the input as text, and a scratch file for readers that take a path.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "paraplan/plan_io.hpp"

namespace fuzz {

inline std::string text(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// A file of this process (libFuzzer's -jobs/-fork run several at once), rewritten for every input.
inline std::string scratch(const char* name) {
  static const std::string dir = [] {
    const auto d = std::filesystem::temp_directory_path() / ("paraplan-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir + "/" + name;
}

inline void write(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();
  if (size && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
}

// The input as a JSON document, or nullopt when paraplan's parser refuses it (with a PlanError).
inline std::optional<nlohmann::json> json_of(const uint8_t* data, size_t size, const char* origin) {
  try {
    return paraplan::planner::parse_json_text(text(data, size), origin);
  } catch (const paraplan::planner::PlanError&) {
    return std::nullopt;
  }
}

// A plan whose model is {"hf_config": path} reads the file it names (/dev/zero would never end): the
// plan targets leave those to fuzz_hf_config, which reads configs from its input.
inline bool names_a_file(const nlohmann::json& plan) {
  return plan.is_object() && plan.contains("model") && plan["model"].is_object() && plan["model"].contains("hf_config");
}

// A property that must hold for every input: a failure is a finding, like a crash.
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace fuzz
