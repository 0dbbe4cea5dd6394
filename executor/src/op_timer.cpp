// Exclusive time per class of work: a stack of open scopes per thread; entering one charges the time
// since the last event to the scope below, leaving one charges it to the scope itself.
#include "paraplan/exec/op_timer.hpp"

#include <chrono>
#include <cstring>

namespace paraplan::exec {

namespace {

using Clock = std::chrono::steady_clock;

struct Tally {
  const char* op_class;
  double seconds;
  int64_t calls;
};

struct State {
  bool active = false;
  std::vector<Tally> tallies;  // a handful of classes: a linear search by pointer is the fastest lookup
  std::vector<Tally*> open;    // innermost last
  Clock::time_point last;
  static constexpr size_t kMaxClasses = 64;  // reserved once: `open`'s pointers stay valid
  Tally* of(const char* c) {
    for (Tally& t : tallies)
      if (t.op_class == c) return &t;
    if (tallies.size() == kMaxClasses) return nullptr;
    tallies.push_back({c, 0, 0});
    return &tallies.back();
  }
  void charge(Clock::time_point now) {
    if (!open.empty()) open.back()->seconds += std::chrono::duration<double>(now - last).count();
    last = now;
  }
};

thread_local State state;

}  // namespace

OpScope::OpScope(const char* op_class) {
  State& s = state;
  if (!s.active) return;
  Tally* t = s.of(op_class);
  if (!t) return;
  s.charge(Clock::now());
  ++t->calls;
  s.open.push_back(t);
  counted_ = true;
}

OpScope::~OpScope() {
  State& s = state;
  if (!counted_ || !s.active || s.open.empty()) return;
  s.charge(Clock::now());
  s.open.pop_back();
}

void op_timer_begin_step() {
  State& s = state;
  s.tallies.clear();
  s.tallies.reserve(State::kMaxClasses);
  s.open.clear();
  s.active = true;
  s.last = Clock::now();
}

std::vector<OpTally> op_timer_end_step(double step_s) {
  State& s = state;
  s.active = false;
  std::vector<OpTally> out;
  double sum = 0;
  for (const Tally& t : s.tallies) {
    // Classes with the same name from different strings (two communicators of one group) merge.
    auto it = out.begin();
    while (it != out.end() && it->op_class != t.op_class) ++it;
    if (it == out.end()) out.push_back({t.op_class, t.seconds, t.calls});
    else {
      it->seconds += t.seconds;
      it->calls += t.calls;
    }
    sum += t.seconds;
  }
  out.push_back({"idle", step_s > sum ? step_s - sum : 0, 1});
  return out;
}

}  // namespace paraplan::exec
