#include "paraplan/error.hpp"

#include <algorithm>

namespace paraplan::planner {

std::string Violation::to_string() const {
  if (value.empty()) return field + ": " + rule;
  return field + " = " + value + ": " + rule;
}

static std::string join(const std::vector<Violation>& v) {
  std::string out;
  for (const auto& x : v) {
    if (!out.empty()) out += "\n";
    out += x.to_string();
  }
  return out;
}

PlanError::PlanError(std::vector<Violation> violations)
    : std::runtime_error(join(violations)), violations_(std::move(violations)) {}

PlanError::PlanError(std::string field, std::string value, std::string rule)
    : PlanError(std::vector<Violation>{{std::move(field), std::move(value), std::move(rule)}}) {}

void Violations::add(std::string field, std::string value, std::string rule) {
  list_.push_back({std::move(field), std::move(value), std::move(rule)});
}

void Violations::throw_if_any() const {
  if (!list_.empty()) throw PlanError(list_);
}

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  // First the nearest by edit distance (about one edit per three characters), then, failing that, a
  // candidate that contains the word or is contained in it ("seq" -> "seq_len").
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  if (!best.empty() || word.size() < 3) return best;
  for (const auto& c : candidates)
    if (c.find(word) != std::string::npos || word.find(c) != std::string::npos) return c;
  return "";
}

}  // namespace paraplan::planner
