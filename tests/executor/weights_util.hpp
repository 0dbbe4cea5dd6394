#pragma once
// Final weights of two runs, read from the Hugging Face (or peft) directories they saved, and compared.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "paraplan/exec/hf_dir.hpp"
#include "paraplan/exec/safetensors.hpp"
#include "paraplan/store.hpp"
#include "process_util.hpp"
#include "run_util.hpp"

namespace paraplan::test {

namespace exec = paraplan::exec;
namespace fs = std::filesystem;

inline std::map<std::string, std::vector<float>> read_weights(const fs::path& dir, const std::string& file = "") {
  std::map<std::string, std::vector<float>> out;
  auto add = [&](const exec::SafetensorsFile& f, const exec::TensorEntry& e) {
    std::vector<float> v(static_cast<size_t>(e.numel()));
    f.read(e, v.data());
    out[e.name] = std::move(v);
  };
  if (!file.empty()) {
    exec::SafetensorsFile f((dir / file).string());
    for (const auto& e : f.tensors()) add(f, e);
    return out;
  }
  exec::HfWeights w(dir.string());
  for (const std::string& n : w.names()) {
    const exec::SafetensorsFile* f = nullptr;
    const exec::TensorEntry* e = w.find(n, &f);
    add(*f, *e);
  }
  return out;
}

// Final weights of two runs that differ only in summation order. AdamW moves each element by at most
// about lr per step (|m / sqrt(v)| <= 1), and near-zero gradient components, where rounding differs most,
// are divided by sqrt(v) + eps: so "the same weights" is a bound in units of one step, here 1% of lr.
// `outliers`: the fraction of elements allowed past that bound. Adam's first step is lr * sign(g) for
// every |g| >> eps, so an element whose first gradient is a cancellation down to rounding noise (1e-9
// beside terms of 1e-2) moves by +-lr depending on the summation order, and the run drifts from there.
// The tests allow it only where they say why.
inline void expect_same_weights(const fs::path& a, const fs::path& b, double lr, const std::string& file = "",
                                double outliers = 0) {
  const auto wa = read_weights(a, file), wb = read_weights(b, file);
  ASSERT_EQ(wa.size(), wb.size());
  ASSERT_FALSE(wa.empty());
  size_t past = 0, total = 0;
  for (const auto& [name, ref] : wb) {
    const auto& got = wa.at(name);
    double diff = 0;
    size_t n = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double d = std::abs(static_cast<double>(got[i]) - ref[i]);
      diff = std::max(diff, d);
      n += d > 0.01 * lr;
    }
    past += n;
    total += ref.size();
    if (outliers == 0) EXPECT_LE(diff, 0.01 * lr) << name << ": max |difference| " << diff;
  }
  EXPECT_LE(static_cast<double>(past), outliers * static_cast<double>(total))
      << past << " of " << total << " elements differ by more than 1% of lr";
}

// The equivalence check of the executor tests: the single-process reference and the plan each train 5
// steps (lr 0.01) into the store `db` (runs 1 and 2) and save their weights (adapters under LoRA); both
// succeed, the reference learns, every one of the plan's `world` ranks reports the reference's loss to
// 1e-5 relative at every step, and the final weights agree (expect_same_weights).
inline void expect_same_training(const fs::path& dir, const std::string& ref, const std::string& plan, int world,
                                 bool lora, const std::string& db, double outliers = 0) {
  const std::string common = " --db " + db + " --steps 5 --lr 0.01 --threads 1 ";
  const std::string save = lora ? " --save-adapter " : " --save ";
  auto r = shell(cli("run " + ref + common + save + (dir / "ref-out").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  r = shell(cli("run " + plan + common + save + (dir / "out").string()));
  ASSERT_EQ(r.code, 0) << r.out;
  planner::Store store(db);
  ASSERT_EQ(store.runs().size(), 2u);
  EXPECT_EQ(store.run(1)->status, planner::RunStatus::succeeded);
  EXPECT_EQ(store.run(2)->status, planner::RunStatus::succeeded);
  std::map<int, double> ref_loss;
  for (const planner::StepRecord& s : store.steps(1)) ref_loss[s.step] = s.loss;
  ASSERT_EQ(ref_loss.size(), 5u);
  EXPECT_LT(ref_loss[5], ref_loss[1]) << "the reference did not learn";
  const auto steps = store.steps(2);
  ASSERT_EQ(steps.size(), static_cast<size_t>(5 * world));
  for (const planner::StepRecord& s : steps)
    EXPECT_NEAR(s.loss, ref_loss[s.step], 1e-5 * std::abs(ref_loss[s.step])) << "rank " << s.rank << " step " << s.step;
  expect_same_weights(dir / "out", dir / "ref-out", 0.01, lora ? "adapter_model.safetensors" : "", outliers);
}

}  // namespace paraplan::test
