// vTrain's measured single-node Megatron-LM iteration times (Bang et al., MICRO'24; VIA-Research/vTrain
// data/ground_truth_single.csv @ f8dda84, MIT licence), as plans. The settings every row shares come from
// vTrain's validation configs (config/validation/single/*.json) and the Megatron-LM it profiled: a GPT
// (multi-head attention, 4h GeLU MLP, learned positions, tied embeddings, biases, vocabulary 50,257
// padded to a multiple of 128 x tp), fp16 mixed precision with fp16 gradients, hidden and attention
// dropout 0.1, unfused softmax attention, full activation recompute, 1F1B, the gradient all-reduce after
// the backward without buckets ("use_gradient_bucket": false), 8 GPUs per node on NVLink. The configs
// say only "A100": we take the A100 SXM4 80 GB preset (the memory size does not matter to the step
// time; its HBM bandwidth is the unit of the fitted memory efficiency, so a 40 GB card's 1.56 TB/s would
// only rescale that one fitted number).
#include <cctype>
#include <sstream>

#include "paraplan/csv_row.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::planner {

namespace {

constexpr const char* kSource = "vtrain-single";
constexpr int64_t kVocab = 50257;  // GPT-2's BPE vocabulary (Megatron --vocab-file gpt2-vocab.json)

}  // namespace

std::vector<PublishedRun> vtrain_runs_from_csv(const std::string& text, const std::string& origin) {
  std::stringstream in(text);
  std::string line;
  std::vector<PublishedRun> runs;
  Violations errors;
  for (int n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    // The column names (GPUs, global batch, micro batch, hidden size, attention heads, # layers, sequence
    // length, tp, dp, pp, iteration time (ms)) are a '#' line in this file; a bare header line is skipped too.
    if (!std::isdigit(static_cast<unsigned char>(line[0]))) continue;
    std::vector<double> v;
    std::stringstream cells(line);
    for (std::string c; std::getline(cells, c, ',');) {
      char* end = nullptr;
      const double x = std::strtod(c.c_str(), &end);
      if (c.empty() || *end != '\0' || !(x > 0)) {
        errors.add(origin + ":" + std::to_string(n), "\"" + c + "\"", "must be a positive number");
        break;
      }
      v.push_back(x);
    }
    if (v.size() != 11) {
      errors.add(origin + ":" + std::to_string(n), std::to_string(v.size()) + " cells", "must have 11 cells");
      continue;
    }
    PublishedRun r;
    r.source = kSource;
    r.line = n;
    ModelSpec& m = r.plan.model;
    m.layers = static_cast<int>(v[5]);
    m.hidden = static_cast<int64_t>(v[3]);
    m.heads = static_cast<int>(v[4]);
    m.kv_heads = m.heads;
    m.head_dim = m.hidden / m.heads;
    m.ffn_hidden = 4 * m.hidden;
    m.vocab = kVocab;
    m.activation = Activation::gelu;
    m.norm = Norm::layernorm;
    m.tied_embeddings = true;
    m.bias = Bias::all;
    m.position_embedding = PositionEmbedding::learned;
    m.max_seq_len = static_cast<int64_t>(v[6]);
    m.name = "GPT h" + std::to_string(m.hidden) + " L" + std::to_string(m.layers);
    r.model = m.name;
    Plan& p = r.plan;
    p.training.seq_len = static_cast<int64_t>(v[6]);
    p.training.micro_batch = static_cast<int>(v[2]);
    p.training.global_batch = static_cast<int64_t>(v[1]);
    p.training.precision = Precision::fp16;
    p.training.grad_dtype = GradDtype::fp16;
    p.training.recompute = Recompute::full;
    p.training.flash_attention = false;
    p.training.dropout = 0.1;
    p.training.framework = Framework::megatron_2021;
    p.parallel.tp = static_cast<int>(v[7]);
    p.parallel.dp = static_cast<int>(v[8]);
    p.parallel.pp = static_cast<int>(v[9]);
    p.parallel.pp_schedule = PipelineSchedule::one_f_one_b;
    p.parallel.dp_overlap = false;
    p.cluster.gpu = hardware_preset("a100-80gb");
    p.cluster.gpus = static_cast<int>(v[0]);
    p.cluster.gpus_per_node = 8;
    p.cluster.calibration = builtin_calibration("vtrain-a100");
    r.published_step_s = v[10] / 1000;
    Violations rules;
    validate_plan(p, rules);
    for (const Violation& x : rules.list()) errors.add(origin + ":" + std::to_string(n) + ": " + x.field, x.value, x.rule);
    runs.push_back(r);
  }
  errors.throw_if_any();
  return runs;
}

std::vector<PublishedRun> vtrain_runs() {
  return vtrain_runs_from_csv(csv::compiled_in("vtrain-single-node"), "data/validation/vtrain-single-node.csv");
}

}  // namespace paraplan::planner
