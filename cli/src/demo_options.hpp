#pragma once
// Options of `paraplan demo` (cmd_demo.cpp parses them; demo_*.cpp run them).
#include <cstdint>
#include <string>
#include <vector>

namespace paraplan::cli {

struct LenetDemoOptions {
  std::vector<int> workers{1, 2, 4};
  int epochs = 5;
  int64_t global_batch = 64;
  double lr = 1e-3;
  uint64_t seed = 0;
  int threads = 1;
  int64_t train_samples = 0, test_samples = 0;  // 0: all
  int log_every = 10;
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string db = "runs.sqlite";
  std::string plot;
  bool json = false;
};
int run_lenet_demo(const LenetDemoOptions& o);

struct TourOptions {
  std::string model = "llama3-8b";
  bool json = false;
};
int run_memory_tour(const TourOptions& o);

}  // namespace paraplan::cli
