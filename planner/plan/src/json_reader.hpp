#pragma once
// Reads one JSON object field by field, recording a Violation for every wrong type, out-of-range
// value and unknown key (with a "did you mean"), instead of stopping at the first.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "paraplan/error.hpp"

namespace paraplan::planner::detail {

using nlohmann::json;

std::string show(const json& v);  // a value as the user wrote it, for messages

// Reads an integer (1e6 written as a number counts) within [min, max]; anything else is a violation of
// `field` with the rule, and gives nullopt.
std::optional<int64_t> read_integer(const json& v, const std::string& field, int64_t min, int64_t max,
                                    Violations& errors);

template <class E>
struct EnumName {
  const char* name;
  E value;
};

class ObjectReader {
 public:
  // `known`: every accepted key. A non-object `obj` is reported and reads return defaults.
  ObjectReader(const json& obj, std::string path, Violations& errors, std::vector<std::string> known);

  bool has(const char* key) const;
  const json* raw(const char* key) const;
  std::string field(const char* key) const { return path_.empty() ? key : path_ + "." + key; }
  Violations& errors() { return errors_; }

  int64_t integer(const char* key, int64_t fallback, int64_t min, int64_t max = INT64_MAX);
  double number(const char* key, double fallback, double min, double max);
  bool boolean(const char* key, bool fallback);
  std::string string(const char* key, const std::string& fallback);

  template <class E>
  E enumeration(const char* key, E fallback, const std::vector<EnumName<E>>& names) {
    const json* v = raw(key);
    if (!v || v->is_null()) return fallback;
    std::vector<std::string> all;
    for (const auto& n : names) all.push_back(n.name);
    if (v->is_string()) {
      const auto s = v->get<std::string>();
      for (const auto& n : names)
        if (s == n.name) return n.value;
    }
    errors_.add(field(key), show(*v), "must be one of " + join(all) + hint(*v, all));
    return fallback;
  }

  static std::string join(const std::vector<std::string>& names);

 private:
  static std::string hint(const json& v, const std::vector<std::string>& candidates);
  const json* obj_;
  std::string path_;
  Violations& errors_;
};

}  // namespace paraplan::planner::detail
