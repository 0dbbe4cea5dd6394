#pragma once
// Errors for input that cannot exist. Every message names the field, the value and the rule;
// the CLI turns PlanError into exit code 2.
#include <stdexcept>
#include <string>
#include <vector>

namespace paraplan::planner {

struct Violation {
  std::string field;  // dotted path in the plan, e.g. "parallel.tp"
  std::string value;  // the offending value as the user wrote it
  std::string rule;   // what must hold, e.g. "model.heads (32) must be divisible by tp"
  std::string to_string() const;
};

class PlanError : public std::runtime_error {
 public:
  explicit PlanError(std::vector<Violation> violations);
  PlanError(std::string field, std::string value, std::string rule);
  const std::vector<Violation>& violations() const { return violations_; }

 private:
  std::vector<Violation> violations_;
};

// Collects violations so that a user sees every problem of a plan at once, not one per run.
class Violations {
 public:
  void add(std::string field, std::string value, std::string rule);
  bool empty() const { return list_.empty(); }
  const std::vector<Violation>& list() const { return list_; }
  void throw_if_any() const;

 private:
  std::vector<Violation> list_;
};

// "did you mean" for unknown names: the closest candidate within a small edit distance, or "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace paraplan::planner
