// The chapter's second exercise, one process: pretraining, then one fine-tuning per variant (full and
// LoRA at each rank) from the same pretrained weights, the same data and the same seed, each evaluated
// on held-out addition problems. Uses the executor's Trainer as `paraplan run` does.
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "paraplan/exec/dataset.hpp"
#include "paraplan/exec/prediction.hpp"
#include "paraplan/exec/teach_data.hpp"
#include "paraplan/exec/trainer.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"
#include "teach_worker.hpp"

namespace paraplan::exec {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A LLaMA-shaped decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) with a byte vocabulary plus
// an end-of-document token: 3.0 M parameters; the quick one (tests) 0.13 M.
json model_json(bool quick) {
  if (quick)
    return {{"name", "teach-llama-0.1m"}, {"layers", 2}, {"hidden", 64}, {"heads", 4}, {"kv_heads", 2},
            {"head_dim", 16}, {"ffn_hidden", 176}, {"vocab", 257}};
  return {{"name", "teach-llama-3m"}, {"layers", 4}, {"hidden", 256}, {"heads", 4}, {"kv_heads", 2},
          {"head_dim", 64}, {"ffn_hidden", 688}, {"vocab", 257}};
}

planner::Plan plan_for(const LoraRanksOptions& o, int rank) {
  json training = {{"seq_len", 64}, {"micro_batch", 16}, {"global_batch", 16}, {"precision", "fp32"},
                   {"optimizer", "adamw"}, {"recompute", "none"}, {"flash_attention", true}};
  if (rank > 0)
    training["lora"] = {{"rank", rank}, {"alpha", 4 * rank}, {"targets", o.targets}, {"base", "fp32"}};
  return planner::plan_from_json({{"model", model_json(o.quick)}, {"training", training},
                                  {"parallel", {{"dp", 1}}}, {"cluster", {{"gpu", "cpu"}, {"gpus", 1}}}});
}

void write_jsonl(const std::string& path, const std::vector<std::string>& docs) {
  std::ofstream out(path);
  for (const std::string& d : docs) out << json{{"text", d}}.dump() << "\n";
  if (!out) throw std::runtime_error(path + ": cannot write");
}

std::string variant_name(int rank) { return rank > 0 ? "LoRA r=" + std::to_string(rank) : "full fine-tuning"; }

// Mean next-token cross-entropy (nats/token) over windows of the held-out problems' token stream.
double validation_loss(Trainer& t, const std::vector<Problem>& problems, int64_t seq_len, int64_t vocab) {
  const ByteTokenizer tok(vocab);
  std::vector<int64_t> stream;
  for (const Problem& p : problems) {
    stream.push_back(tok.eos());
    for (int32_t id : tok.encode(p.text())) stream.push_back(id);
  }
  const int64_t windows = static_cast<int64_t>(stream.size() - 1) / seq_len;
  std::vector<int64_t> ids(stream.begin(), stream.begin() + windows * seq_len);
  const std::vector<float> logits = t.logits(ids, windows, seq_len);
  double sum = 0;
  for (int64_t i = 0; i < windows * seq_len; ++i) {
    const float* row = logits.data() + i * vocab;
    double mx = row[0];
    for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    double z = 0;
    for (int64_t v = 0; v < vocab; ++v) z += std::exp(row[v] - mx);
    sum += mx + std::log(z) - row[stream[static_cast<size_t>(i + 1)]];
  }
  return sum / static_cast<double>(windows * seq_len);
}

// Greedy decoding of every prompt at once (all prompts have the same length): returns how many
// answers are exactly right, and the first few continuations for the log.
std::pair<int, std::vector<std::string>> task_accuracy(Trainer& t, const std::vector<Problem>& problems,
                                                       int64_t vocab) {
  const ByteTokenizer tok(vocab);
  const int64_t n = static_cast<int64_t>(problems.size());
  std::vector<std::vector<int64_t>> seqs;
  size_t longest = 0;
  for (const Problem& p : problems) {
    longest = std::max(longest, p.answer.size());
    std::vector<int64_t> s{tok.eos()};
    for (int32_t id : tok.encode(p.prompt)) s.push_back(id);
    seqs.push_back(s);
  }
  std::vector<std::string> out(static_cast<size_t>(n));
  for (size_t k = 0; k < longest + 1; ++k) {  // the answer and the end of the document
    const int64_t len = static_cast<int64_t>(seqs[0].size());
    std::vector<int64_t> ids;
    for (const auto& s : seqs) ids.insert(ids.end(), s.begin(), s.end());
    const std::vector<float> logits = t.logits(ids, n, len);
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + ((i + 1) * len - 1) * vocab;
      const int64_t best = std::max_element(row, row + vocab) - row;
      seqs[static_cast<size_t>(i)].push_back(best);
      if (best < 256) out[static_cast<size_t>(i)].push_back(static_cast<char>(best));
      else out[static_cast<size_t>(i)].push_back('\n');
    }
  }
  int correct = 0;
  std::vector<std::string> samples;
  for (int64_t i = 0; i < n; ++i) {
    const std::string got = answer_of(out[static_cast<size_t>(i)]);
    correct += got == problems[static_cast<size_t>(i)].answer;
    if (i < 5) samples.push_back(problems[static_cast<size_t>(i)].prompt + got);
  }
  return {correct, samples};
}

struct Phase {
  std::string name;
  planner::Plan plan;
  std::string data, load;
  double lr;
  int steps;
};

// Trains one phase, emitting its steps; returns the mean step time (steps after the first).
double train(Trainer& t, const Phase& ph) {
  double total = 0;
  for (int s = 1; s <= ph.steps; ++s) {
    const StepStats st = t.step();
    if (s > 1) total += st.step_s;
    emit({{"event", "step"}, {"phase", ph.name}, {"step", st.step}, {"steps", ph.steps}, {"loss", st.loss},
          {"step_s", st.step_s}});
  }
  return ph.steps > 1 ? total / (ph.steps - 1) : 0;
}

}  // namespace

int run_lora_ranks(const LoraRanksOptions& o) {
  auto groups = data_parallel_groups(120);
  fs::create_directories(o.work_dir);
  const std::string pretrain_data = (fs::path(o.work_dir) / "fortunes.jsonl").string();
  const std::string task_data = (fs::path(o.work_dir) / "addition-train.jsonl").string();
  const std::string pretrained = (fs::path(o.work_dir) / "pretrained").string();
  const std::vector<std::string> fortunes = fortune_documents(o.corpus);
  write_jsonl(pretrain_data, fortunes);
  std::vector<std::string> train_docs;
  for (const Problem& p : task_problems(o.task, 20000, o.digits, o.seed + 1, false)) train_docs.push_back(p.text());
  write_jsonl(task_data, train_docs);
  const std::vector<Problem> held = task_problems(o.task, o.eval_problems, o.digits, o.seed + 2, true);

  const planner::Plan base = plan_for(o, 0);
  emit({{"event", "start"}, {"model", planner::model_to_json(base.model)},
        {"params", planner::model_params(base.model, std::nullopt).total}, {"corpus", o.corpus},
        {"corpus_documents", fortunes.size()}, {"task", o.task == "copy" ? "copy " + std::to_string(o.digits) + " letters"
                                   : std::to_string(o.digits) + "-digit addition, answer reversed"},
        {"eval_problems", o.eval_problems}, {"ranks", o.ranks}, {"targets", o.targets}, {"threads", at::get_num_threads()}});

  std::vector<Phase> phases{{"pretrain", base, pretrain_data, "", o.pretrain_lr, o.pretrain_steps},
                            {variant_name(0), base, task_data, pretrained, o.full_lr, o.finetune_steps}};
  for (int r : o.ranks) phases.push_back({variant_name(r), plan_for(o, r), task_data, pretrained, o.lora_lr, o.finetune_steps});
  for (const Phase& ph : phases) {
    const Prediction pred = predict_run(ph.plan);
    emit({{"event", "phase"}, {"phase", ph.name}, {"steps", ph.steps}, {"lr", ph.lr},
          {"plan", planner::plan_to_json(ph.plan)}, {"predicted_peak_bytes", pred.peak_bytes}});
    TrainOptions to;
    to.plan = ph.plan;
    to.lr = ph.lr;
    to.seed = o.seed;
    to.data = ph.data;
    to.load_dir = ph.load;
    Trainer t(to, *groups);
    const double step_s = train(t, ph);
    const MemoryStats mem = t.memory();
    const int64_t vocab = ph.plan.model.vocab;
    const double val = validation_loss(t, held, ph.plan.training.seq_len, vocab);
    const auto [correct, samples] = task_accuracy(t, held, vocab);
    const planner::ModelParams mp = planner::model_params(ph.plan.model, ph.plan.training.lora);
    emit({{"event", "result"}, {"phase", ph.name}, {"lora_rank", ph.plan.training.lora ? ph.plan.training.lora->rank : 0},
          {"trainable", t.trainable_params()}, {"trainable_planner", mp.trainable_total}, {"params", mp.total},
          {"step_s", step_s}, {"peak_measured_bytes", mem.measured ? mem.peak : 0},
          {"peak_predicted_bytes", pred.peak_bytes}, {"val_loss", val}, {"correct", correct},
          {"problems", o.eval_problems}, {"accuracy", static_cast<double>(correct) / o.eval_problems},
          {"samples", samples}});
    if (ph.name == "pretrain") t.save(pretrained);
  }
  emit({{"event", "done"}});
  return 0;
}

}  // namespace paraplan::exec
