#pragma once
// Cells of a validation table (comma-separated, a header line of column names): one row's cells by
// column name, read whole and checked, every error naming "<origin>:<line>: <column>".
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "paraplan/embedded_data.hpp"
#include "paraplan/error.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::planner::csv {

inline std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  std::string c;
  while (std::getline(ss, c, ',')) cells.push_back(c);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// One data row: its cells by column name, and where it is for messages ("<origin>:<line>: <column>").
struct Row {
  std::map<std::string, std::string> cells;
  std::string where;
  Violations& errors;

  bool has(const char* k) const {
    auto it = cells.find(k);
    return it != cells.end() && !it->second.empty();
  }
  std::string text(const char* k) const { return has(k) ? cells.at(k) : ""; }
  std::string field(const char* k) const { return where + ": " + k; }
  // A whole cell as an integer in [min, max]; empty: `fallback` (required: an error).
  int64_t integer(const char* k, int64_t fallback, int64_t min, int64_t max, bool required = true) {
    if (!has(k)) {
      if (required) errors.add(field(k), "", "is required");
      return fallback;
    }
    const std::string& c = cells.at(k);
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), v);
    if (ec != std::errc() || end != c.data() + c.size()) {
      errors.add(field(k), c, "must be an integer");
      return fallback;
    }
    if (v < min || v > max) {
      errors.add(field(k), c, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return fallback;
    }
    return v;
  }
  // A whole cell as a finite number > 0; empty: 0.
  double positive(const char* k) {
    if (!has(k)) return 0;
    const std::string& c = cells.at(k);
    char* end = nullptr;
    const double v = std::strtod(c.c_str(), &end);
    if (end != c.c_str() + c.size() || !std::isfinite(v) || v <= 0) {
      errors.add(field(k), c, "must be a number > 0");
      return 0;
    }
    return v;
  }
  // The plan's own rules, named with the row: a row the planner cannot estimate is refused.
  void check_plan(const Plan& p) {
    Violations rules;
    validate_plan(p, rules);
    for (const auto& v : rules.list()) errors.add(where + ": " + v.field, v.value, v.rule);
  }
  template <class E>
  E choice(const char* k, E fallback, std::initializer_list<std::pair<const char*, E>> names) {
    if (!has(k)) return fallback;
    std::string all;
    for (const auto& [n, v] : names) {
      if (cells.at(k) == n) return v;
      all += (all.empty() ? "" : ", ") + std::string(n);
    }
    errors.add(field(k), cells.at(k), "must be one of " + all);
    return fallback;
  }
};

// Reads a table: '#' lines and empty lines skipped, the first other line is the header (it must hold every
// `required` column), each later line one Row handed to `read` with its 1-based line number. Errors of all
// rows are collected, then thrown together.
inline void for_each_row(const std::string& text, const std::string& origin, std::initializer_list<const char*> required,
                         const std::function<void(Row&, int)>& read) {
  std::stringstream in(text);
  std::string line;
  std::vector<std::string> header;
  Violations errors;
  for (int n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto cells = split(line);
    if (header.empty()) {
      header = cells;
      for (const char* k : required)
        if (std::find(header.begin(), header.end(), k) == header.end())
          errors.add(origin + ":" + std::to_string(n), "", std::string("the header has no column \"") + k + "\"");
      errors.throw_if_any();
      continue;
    }
    Row row{{}, origin + ":" + std::to_string(n), errors};
    if (cells.size() != header.size())
      errors.add(row.where, std::to_string(cells.size()) + " cells",
                 "must have one cell per header column (" + std::to_string(header.size()) + ")");
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row.cells[header[i]] = cells[i];
    read(row, n);
  }
  errors.throw_if_any();
}

// A table of runs: `read` turns each row into a run, which gets the row's line.
template <class Read>
std::vector<PublishedRun> read_runs(const std::string& text, const std::string& origin,
                                    std::initializer_list<const char*> required, Read read) {
  std::vector<PublishedRun> runs;
  for_each_row(text, origin, required, [&](Row& row, int n) {
    runs.push_back(read(row));
    runs.back().line = n;
  });
  return runs;
}

// The text of data/validation/<id>.csv, compiled in.
inline const char* compiled_in(const std::string& id) {
  for (const auto& f : embedded::validation())
    if (f.id && id == f.id) return f.text;
  throw std::runtime_error("data/validation/" + id + ".csv is not compiled in");
}

}  // namespace paraplan::planner::csv
