// Writes the binary seed corpora of tests/fuzz/corpus with paraplan's own writers: tiny safetensors files
// (the shapes and dtypes the executor's tests write) and a run store with one run, its steps and memory
// rows. Run it again when those formats change: write_seeds <tests/fuzz/corpus>.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "paraplan/exec/safetensors.hpp"
#include "paraplan/store.hpp"

namespace fs = std::filesystem;
using namespace paraplan;

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const fs::path root = argv[1];
  const std::vector<float> f32{1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> bf16{0x3f80, 0x4000, 0x4040};  // 1, 2, 3
  const std::vector<int64_t> ids{0, 7, 42};
  exec::write_safetensors((root / "safetensors/f32-2x3.safetensors").string(),
                          {{"model.embed_tokens.weight", exec::Dtype::f32, {2, 3}, f32.data()}});
  exec::write_safetensors((root / "safetensors/mixed.safetensors").string(),
                          {{"a.weight", exec::Dtype::bf16, {3}, bf16.data()},
                           {"b.ids", exec::Dtype::i64, {3}, ids.data()},
                           {"c.empty", exec::Dtype::f32, {0, 4}, f32.data()},
                           {"d.scalar", exec::Dtype::f32, {}, f32.data()}},
                          {{"format", "pt"}});
  const std::string db = (root / "store/one-run.db").string();
  fs::remove(db);
  {
    planner::Store s(db);
    planner::NewRun r;
    r.plan_json = R"({"model": "tiny-llama", "training": {"seq_len": 32, "precision": "fp32"},
                      "parallel": {"dp": 2}, "cluster": {"gpu": "cpu", "gpus": 2}})";
    r.name = "tiny-llama dp=2";
    r.world_size = 2;
    r.steps = 2;
    r.predicted_peak_bytes = 1.5e6;
    const int64_t id = s.create_run(r);
    s.set_running(id);
    for (int rank = 0; rank < 2; ++rank)
      for (int step = 1; step <= 2; ++step) s.add_step({id, rank, step, 10.5 - step, 0.25, 0.05, 1000});
    s.add_memory({{id, 0, "weights", 1e6, 1e6}, {id, 0, "peak", 1.5e6, 1.4e6}});
    s.finish_run(id);
  }
  return 0;
}
