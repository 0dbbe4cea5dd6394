// A torchtitan job config (TOML, `--job.config_file`) for a plan.
//
// Keys checked against pytorch/torchtitan v0.2.2 (73a0e6979dd1, 2026-02-20), torchtitan/config/job_config.py
// (sections [model], [optimizer], [training], [parallelism], [activation_checkpoint], [compile]); behaviour
// from torchtitan/models/llama3/infra/parallelize.py, torchtitan/distributed/parallel_dims.py and
// torchtitan/distributed/pipeline_parallel.py at the same tag. torchtitan's main branch has since moved to
// Python configs (torchtitan/config/README.md) and keeps the --section.option names for compatibility.
#include <fmt/format.h>

#include <algorithm>
#include "export_util.hpp"
#include "paraplan/export.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

using detail::Inexpressible;
using detail::toml_string;

namespace {

class Toml {
 public:
  void table(const std::string& name) {
    if (!text_.empty()) text_ += '\n';
    text_.append(1, '[').append(name).append("]\n");
  }
  void key(const std::string& k, const std::string& v, const std::string& comment = "") {
    std::string line = k + " = " + v;
    if (!comment.empty()) line = fmt::format("{:<44}# {}", line + "  ", comment);
    text_ += line + "\n";
  }
  void key(const std::string& k, long long v, const std::string& comment = "") { key(k, std::to_string(v), comment); }
  void flag(const std::string& k, bool v, const std::string& comment = "") { key(k, v ? "true" : "false", comment); }
  void raw(const std::string& s) { text_ += s; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

struct Flavor {
  const char* name;  // [model] name
  const char* flavor;
  int layers;
  int64_t hidden, ffn_hidden, vocab;
  int heads, kv_heads;
};

// Registered flavors whose dimensions paraplan can check: torchtitan/models/llama3/__init__.py (ffn width from
// model.py FeedForward: multiple_of * ceil(ffn_dim_multiplier * int(8 dim / 3) / multiple_of)) and
// torchtitan/models/deepseek_v3/__init__.py "671B" (MLA and MoE fields compared below).
constexpr Flavor kFlavors[] = {{"llama3", "8B", 32, 4096, 14336, 128256, 32, 8},
                               {"llama3", "70B", 80, 8192, 28672, 128256, 64, 8},
                               {"llama3", "405B", 126, 16384, 53248, 128256, 128, 8},
                               {"deepseek_v3", "671B", 61, 7168, 18432, 129280, 128, 128}};

const Flavor* match_flavor(const ModelSpec& m) {
  // Neither flavor norms its query and key heads nor attends through a window (torchtitan/models/llama3/
  // model.py, deepseek_v3/model.py: causal attention over every earlier token).
  const bool llama_like = m.activation == Activation::swiglu && m.norm == Norm::rmsnorm && !m.tied_embeddings &&
                          m.bias == Bias::none && m.position_embedding == PositionEmbedding::rope && !m.qk_norm &&
                          m.sliding_window == 0;
  for (const Flavor& f : kFlavors) {
    if (!llama_like || m.layers != f.layers || m.hidden != f.hidden || m.ffn_hidden != f.ffn_hidden ||
        m.vocab != f.vocab || m.heads != f.heads || m.kv_heads != f.kv_heads)
      continue;
    if (std::string(f.name) == "llama3" && !m.moe && !m.mla && m.head_dim * m.heads == m.hidden) return &f;
    if (std::string(f.name) == "deepseek_v3" && m.moe && m.mla) {
      const MoeSpec& e = *m.moe;
      const MlaSpec& a = *m.mla;
      if (e.experts == 256 && e.top_k == 8 && e.ffn_hidden == 2048 && e.shared_experts == 1 && e.dense_layers == 3 &&
          a.q_lora_rank == 1536 && a.kv_lora_rank == 512 && a.qk_nope_head_dim == 128 && a.qk_rope_head_dim == 64 &&
          a.v_head_dim == 128)
        return &f;
    }
  }
  return nullptr;
}

// torch.distributed.pipelining.schedules get_schedule_class names (PyTorch 2.6+).
const char* schedule_name(PipelineSchedule s) {
  switch (s) {
    case PipelineSchedule::gpipe: return "GPipe";
    case PipelineSchedule::one_f_one_b: return "1F1B";
    case PipelineSchedule::interleaved: return "Interleaved1F1B";
    case PipelineSchedule::zbv: return "ZBVZeroBubble";
    case PipelineSchedule::zb_h1: return "";
  }
  return "";
}

// [parallelism] module_fqns_per_model_part: the modules of each model chunk in model order
// (names as generate_llm_fqn_per_model_part writes them: tok_embeddings, layers.<i>, norm, output).
std::string model_parts(const std::vector<int>& chunks) {
  std::string s = "module_fqns_per_model_part = [\n";
  int layer = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    std::vector<std::string> names;
    if (c == 0) names.push_back("tok_embeddings");
    for (int i = 0; i < chunks[c]; ++i) names.push_back(fmt::format("layers.{}", layer++));
    if (c + 1 == chunks.size()) names.insert(names.end(), {"norm", "output"});
    std::string row;
    for (const auto& n : names) row += (row.empty() ? "" : ", ") + toml_string(n);
    s += "    [" + row + "],\n";
  }
  return s + "]\n";
}

// What the plan's parallel split `p` and training `t` ask that the target cannot express.
void check(const ParallelPlan& p, const TrainingSpec& t, Inexpressible& no) {
  if (p.ep_comm_overlap && p.ep > 1)
    no.add("parallel.ep_comm_overlap", "true", "torchtitan has no setting that overlaps the MoE all-to-all with compute");
  if (p.zero == 1)
    no.add("parallel.zero", "1",
           "torchtitan shards with FSDP2 (parameters, gradients and optimizer states together) or replicates "
           "with DDP; there is no optimizer-only sharding");
  const bool multi_dim = p.tp > 1 || p.pp > 1 || p.cp > 1 || p.ep > 1;
  if (p.zero == 0 && p.dp > 1 && multi_dim)
    no.add("parallel.zero", "0",
           "torchtitan's DDP (data_parallel_replicate_degree) is 1-D only (parallelize.py: \"DDP has not "
           "supported > 1D parallelism\"); use zero = 2 or 3 (FSDP2)");
  if (p.cp > 1 && p.zero == 0)
    no.add("parallel.cp", std::to_string(p.cp),
           "torchtitan always applies FSDP over the cp ranks (parallel_dims.py fsdp_enabled); use zero = 2 or 3");
  if (p.tp > 1 && !p.sequence_parallel)
    no.add("parallel.sequence_parallel", "false",
           "torchtitan's tensor parallelism always shards norms over the sequence (SequenceParallel in apply_tp)");
  if (p.pp > 1 && p.pp_schedule == PipelineSchedule::zb_h1)
    no.add("parallel.pp_schedule", "zb-h1",
           "torch.distributed.pipelining has no single-stage ZB-H1 schedule (get_schedule_class: GPipe, 1F1B, "
           "Interleaved1F1B, LoopedBFS, InterleavedZeroBubble, ZBVZeroBubble, DualPipeV)");
  if (t.precision == Precision::fp16)
    no.add("training.precision", "fp16", "mixed_precision_param takes bfloat16 or float32");
  detail::reject_fsdp_limits(
      t, no,
      {.grad_dtype = "FSDP2 reduces and keeps gradients in float32 (mixed_precision_reduce takes only float32)",
       .selective_recompute = "torchtitan's selective AC saves matmul and attention outputs per op, or checkpoints "
                              "every n-th layer; neither is the attention-core recompute the plan assumes. Use "
                              "none or full"});
  if (!t.flash_attention)
    no.add("training.flash_attention", "false",
           "torchtitan's attention is SDPA or FlexAttention, which never keep the score matrix");
  if (t.optimizer == Optimizer::sgd || t.optimizer == Optimizer::sgd_momentum || t.optimizer == Optimizer::adam8bit)
    no.add("training.optimizer", to_string(t.optimizer),
           "torchtitan builds Adam and AdamW only (components/optimizer.py)");
  if (t.offload == Offload::optimizer)
    no.add("training.offload", "optimizer",
           "training.enable_cpu_offload moves parameters, gradients and optimizer states together; use "
           "optimizer+params with zero = 3");
  if (t.lora) no.add("training.lora", fmt::format("{{rank {}}}", t.lora->rank), "torchtitan v0.2.2 has no LoRA");
  if (t.dropout > 0)
    no.add("training.dropout", fmt::format("{}", t.dropout), "torchtitan's models have no dropout");
}

}  // namespace

ExportResult export_torchtitan(const Plan& plan) {
  const ParallelPlan& p = plan.parallel;
  const TrainingSpec& t = plan.training;
  Inexpressible no("torchtitan");
  check(plan.parallel, plan.training, no);
  detail::reject_te_cross_entropy(plan.training, no, "torchtitan's loss is torch.nn.functional.cross_entropy on fp32 logits "
                                             "(torchtitan/components/loss.py); plan with training.cross_entropy unfused");
  const Flavor* flavor = match_flavor(plan.model);
  if (!flavor)
    no.add("model", plan.model.name,
           "torchtitan builds registered flavors only; none has these dimensions (checked: llama3 8B, 70B, "
           "405B; deepseek_v3 671B). Register one in torchtitan/models/<name>/__init__.py");
  no.throw_if_any();

  ExportResult r;
  Toml o;
  const ClusterSpec& c = plan.cluster;
  o.raw(fmt::format("# torchtitan job config for {} on {} x {} (paraplan export --format torchtitan).\n"
                    "# Keys checked against pytorch/torchtitan v0.2.2 torchtitan/config/job_config.py.\n",
                    plan.model.name, c.gpus, c.gpu.name));
  if (c.nodes() == 1)
    o.raw(fmt::format("# Run: NGPU={} CONFIG_FILE=<this file> ./run_train.sh   (torchtitan's launcher)\n", c.gpus));
  else
    o.raw(fmt::format("# Run on each of the {} nodes:\n"
                      "#   torchrun --nnodes {} --nproc-per-node {} --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\\n"
                      "#       -m torchtitan.train --job.config_file <this file>\n",
                      c.nodes(), c.nodes(), c.gpus_per_node));
  o.table("model");
  o.key("name", toml_string(flavor->name));
  o.key("flavor", toml_string(flavor->flavor));
  // Float8Linear converter registered as "quantize.linear.float8" (components/quantization/float8.py).
  if (t.precision == Precision::fp8) o.key("converters", "[\"quantize.linear.float8\"]", "FP8 GEMMs (torchao)");

  o.table("optimizer");
  // components/optimizer.py: {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}.
  o.key("name", toml_string(t.optimizer == Optimizer::adam ? "Adam" : "AdamW"));

  const bool pipelined = p.pp > 1;
  o.table("training");
  // local_batch_size is per data-parallel rank per step; under PP it is cut into micro-batches of
  // pipeline_parallel_microbatch_size, else gradient accumulation = global / (local * dp).
  o.key("local_batch_size", pipelined ? t.global_batch / p.dp : t.micro_batch, "sequences per dp rank");
  o.key("global_batch_size", t.global_batch, "sequences per optimizer step");
  o.key("seq_len", t.seq_len, "tokens");
  // Under FSDP2 the fp32 shards are the master weights and the gathered copies are bfloat16; under DDP the
  // same key sets torch.autocast's dtype (job_config.py Training.mixed_precision_param).
  o.key("mixed_precision_param", toml_string(t.precision == Precision::fp32 ? "float32" : "bfloat16"),
        p.zero >= 2 ? "compute dtype; fp32 master weights in FSDP's shards" : "compute dtype (autocast under DDP)");
  o.key("mixed_precision_reduce", toml_string("float32"));
  o.flag("enable_cpu_offload", t.offload == Offload::optimizer_params, "parameters, gradients, optimizer states");

  o.table("parallelism");
  const bool fsdp = p.zero >= 2;
  o.key("data_parallel_replicate_degree", fsdp ? 1 : p.dp, !fsdp && p.dp > 1 ? "DDP" : "");
  o.key("data_parallel_shard_degree", fsdp ? p.dp : 1, fsdp ? fmt::format("FSDP2, ZeRO-{}", p.zero) : "");
  // "always" = reshard after forward (ZeRO-3); "never" keeps the gathered parameters until the backward
  // is done (ZeRO-2). "default" would depend on PP, so the plan's choice is spelled out.
  if (fsdp) o.key("fsdp_reshard_after_forward", toml_string(p.zero == 3 ? "always" : "never"));
  o.key("tensor_parallel_degree", p.tp, p.tp > 1 ? "with sequence parallelism (always in torchtitan)" : "");
  if (p.tp > 1) o.flag("enable_async_tensor_parallel", p.tp_comm_overlap, "TP collectives overlapped with GEMMs");
  else if (p.tp_comm_overlap) r.notes.push_back("parallel.tp_comm_overlap has nothing to overlap with tp = 1");
  o.key("pipeline_parallel_degree", p.pp);
  if (pipelined) {
    o.key("pipeline_parallel_schedule", toml_string(schedule_name(p.pp_schedule)));
    o.key("pipeline_parallel_microbatch_size", t.micro_batch,
          fmt::format("{} micro-batches per step", plan.micro_batches()));
    o.raw(model_parts(chunk_layers(plan)));
  }
  o.key("context_parallel_degree", p.cp);
  // "alltoall" passes K/V to the next rank each step (ring attention, as the plan models); "allgather"
  // gathers them once (torch.distributed.tensor.experimental _AllToAllRotater / _AllGatherRotater).
  if (p.cp > 1) o.key("context_parallel_rotate_method", toml_string("alltoall"), "ring: K/V to the next rank");
  if (plan.model.moe) {
    o.key("expert_parallel_degree", p.ep);
    // Experts stay split over tp (the plan's Megatron ETP = TP); torchtitan allows etp = 1 or tp.
    if (p.ep > 1) o.key("expert_tensor_parallel_degree", p.tp);
  }

  o.table("activation_checkpoint");
  o.key("mode", toml_string(t.recompute == Recompute::full ? "full" : "none"));

  const bool compiled = plan.framework() == Framework::fsdp_compile;
  if ((p.tp > 1 && p.tp_comm_overlap) || compiled) {
    // tensor_parallel.py maybe_enable_async_tp: "Async TP requires 'model' in --compile.components".
    o.table("compile");
    o.flag("enable", true, compiled ? "the plan's framework is fsdp-compile" : "async TP needs torch.compile");
    o.key("components", "[\"model\", \"loss\"]");
  }
  if (plan.framework() != Framework::fsdp && !compiled)
    r.notes.push_back(fmt::format("the plan's memory was estimated with {} conventions; torchtitan is FSDP2: "
                                  "re-plan with --set training.framework=fsdp to compare like with like",
                                  to_string(plan.framework())));
  r.notes.push_back("set model.hf_assets_path (tokenizer) and training.dataset / training.steps for your data");
  r.text = o.text();
  return r;
}

}  // namespace paraplan::planner
