// An accelerate config (YAML, `accelerate launch --config_file`) for FSDP training of a plan.
//
// Keys checked against huggingface/accelerate v1.14.0 (beb0672aa844, 2026-06-11): top-level keys are the
// fields of ClusterConfig (src/accelerate/commands/config/config_args.py, which rejects unknown keys);
// fsdp_config keys as `accelerate config` writes them (src/accelerate/commands/config/cluster.py) and as
// `accelerate launch` reads them (commands/launch.py, utils/launch.py, utils/dataclasses.py
// FullyShardedDataParallelPlugin); value spellings from src/accelerate/utils/constants.py; parallelism_config
// from src/accelerate/parallelism_config.py and docs/source/concept_guides/context_parallelism.md; fp8 from
// docs/source/usage_guides/low_precision_training.md.
#include <fmt/format.h>

#include "export_util.hpp"
#include "paraplan/export.hpp"

namespace paraplan::planner {

using detail::Inexpressible;

namespace {

class Yaml {
 public:
  void key(const std::string& k, const std::string& v, int indent = 0) {
    text_ += std::string(indent, ' ') + k + ": " + v + "\n";
  }
  void key(const std::string& k, long long v, int indent = 0) { key(k, std::to_string(v), indent); }
  void flag(const std::string& k, bool v, int indent = 0) { key(k, v ? "true" : "false", indent); }
  void map(const std::string& k) { text_ += k + ":\n"; }
  void comment(const std::string& c) { text_ += "# " + c + "\n"; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// What the plan's parallel split `p` and training `t` ask that the target cannot express.
void check(const ParallelPlan& p, const TrainingSpec& t, Inexpressible& no) {
  if (p.zero == 1)
    no.add("parallel.zero", "1",
           "FSDP shards optimizer states together with gradients (SHARD_GRAD_OP) or with everything (FULL_SHARD); "
           "there is no optimizer-only sharding");
  if (p.pp > 1)
    no.add("parallel.pp", std::to_string(p.pp), "accelerate's FSDP and ParallelismConfig have no pipeline parallelism");
  if (p.ep > 1)
    no.add("parallel.ep", std::to_string(p.ep), "accelerate's ParallelismConfig has no expert parallelism");
  const bool nd = p.tp > 1 || p.cp > 1;  // needs ParallelismConfig, which needs FSDP2
  if (nd && p.zero == 0 && p.dp > 1)
    no.add("parallel.zero", "0",
           "with tp or cp, accelerate composes data parallelism through FSDP2 only (parallelism_config.py: "
           "dp_replicate_size > 1 with dp_shard_size == 1 is invalid); use zero = 2 or 3");
  // FP8 (torchao, fp8_config backend AO) runs on FSDP2, whose reshard_after_forward: false still shards gradients
  // and optimizer states (ZeRO-2); FSDP2 replicates only beside sharding (parallelism_config.py docstring:
  // "dp_replicate_size > 1 and dp_shard_size == 1 is an invalid configuration"). One rank has nothing to shard.
  if (t.precision == Precision::fp8 && p.zero == 0 && p.dp > 1)
    no.add("parallel.zero", "0",
           "accelerate's FP8 recipe (torchao) runs on FSDP2, which shards gradients and optimizer states over the "
           "data-parallel ranks even with fsdp_reshard_after_forward: false, and cannot replicate alone "
           "(parallelism_config.py: dp_replicate_size > 1 with dp_shard_size == 1 is invalid); use zero = 2 or 3");
  if (p.tp > 1 && p.sequence_parallel)
    no.add("parallel.sequence_parallel", "true",
           "accelerate's tensor parallelism applies the model's Transformers base_model_tp_plan (column/row-wise "
           "linears; LLaMA's leaves the norms replicated), without Megatron-style sequence parallelism");
  if (p.tp_comm_overlap && p.tp > 1)
    no.add("parallel.tp_comm_overlap", "true", "accelerate has no TP communication overlap setting");
  detail::reject_fsdp_limits(
      t, no,
      {.grad_dtype = "FSDP keeps gradients in the dtype of its fp32 sharded parameters",
       .selective_recompute = "fsdp_activation_checkpointing checkpoints whole transformer layers; there is no "
                              "attention-core-only recompute. Use none or full"});
  if (t.offload == Offload::optimizer)
    no.add("training.offload", "optimizer",
           "fsdp_offload_params moves parameters and gradients to the CPU as well; use optimizer+params with "
           "zero = 3");
}

}  // namespace

ExportResult export_accelerate(const Plan& plan) {
  const ParallelPlan& p = plan.parallel;
  const TrainingSpec& t = plan.training;
  const ClusterSpec& c = plan.cluster;
  Inexpressible no("accelerate");
  check(plan.parallel, plan.training, no);
  detail::reject_te_cross_entropy(plan.training, no, detail::kTransformersLoss);
  no.throw_if_any();

  ExportResult r;
  const bool fp8 = t.precision == Precision::fp8;
  const bool v2 = p.tp > 1 || p.cp > 1 || fp8;  // ParallelismConfig and torchao FP8 need FSDP2
  const std::string model_type = detail::hf_model_type(plan.model);
  const std::string layer = detail::hf_decoder_layer_class(model_type);

  Yaml y;
  y.comment(fmt::format("accelerate config for {} on {} x {} (paraplan export --format accelerate).", plan.model.name,
                        c.gpus, c.gpu.name));
  y.comment("Keys checked against huggingface/accelerate v1.14.0 (commands/config/config_args.py, cluster.py).");
  if (c.nodes() == 1) {
    y.comment("Run: accelerate launch --config_file <this file> train.py");
  } else {
    y.comment(fmt::format("Run on machine i = 0..{}: accelerate launch --config_file <this file> --machine_rank i \\",
                          c.nodes() - 1));
    y.comment("    --main_process_ip <machine 0> --main_process_port 29500 train.py");
  }
  y.key("compute_environment", "LOCAL_MACHINE");
  y.flag("debug", false);
  y.key("distributed_type", "FSDP");
  y.key("downcast_bf16", "'no'");
  y.map("fsdp_config");
  y.key("fsdp_version", v2 ? 2 : 1, 2);
  if (v2) {
    // FSDP2: reshard_after_forward is a bool (True = ZeRO-3, False keeps gathered parameters: ZeRO-2).
    y.flag("fsdp_reshard_after_forward", p.zero == 3, 2);
  } else {
    // FSDP1: FULL_SHARD / SHARD_GRAD_OP / NO_SHARD (constants.py FSDP_SHARDING_STRATEGY). launch.py passes
    // fsdp_sharding_strategy (default FULL_SHARD) and FullyShardedDataParallelPlugin prefers it over
    // fsdp_reshard_after_forward, which `accelerate config` writes; both are set to the same strategy.
    const char* strategy = p.zero == 3 ? "FULL_SHARD" : p.zero == 2 ? "SHARD_GRAD_OP" : "NO_SHARD";
    y.key("fsdp_sharding_strategy", strategy, 2);
    y.key("fsdp_reshard_after_forward", strategy, 2);
  }
  // fsdp_offload_params: "offload parameters and gradients to CPU" (cluster.py); the optimizer steps there.
  y.flag("fsdp_offload_params", t.offload == Offload::optimizer_params, 2);
  y.key("fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP", 2);
  // Without a class name the plugin wraps the model's _no_split_modules (dataclasses.py set_auto_wrap_policy).
  if (!layer.empty()) y.key("fsdp_transformer_layer_cls_to_wrap", layer, 2);
  else
    r.notes.push_back("no Transformers decoder-layer class known for this model: FSDP wraps the model's "
                      "_no_split_modules (set fsdp_transformer_layer_cls_to_wrap to override)");
  if (!v2) {
    y.key("fsdp_backward_prefetch", "BACKWARD_PRE", 2);  // FSDP1 only
    y.flag("fsdp_forward_prefetch", false, 2);
    y.flag("fsdp_use_orig_params", true, 2);  // needed for frozen + trainable parameters (LoRA)
  }
  y.key("fsdp_state_dict_type", "SHARDED_STATE_DICT", 2);
  // torchao FP8 cannot use CPU-RAM-efficient loading (low_precision_training.md).
  y.flag("fsdp_cpu_ram_efficient_loading", !fp8, 2);
  y.flag("fsdp_sync_module_states", true, 2);  // required when cpu_ram_efficient_loading (utils/launch.py)
  y.flag("fsdp_activation_checkpointing", t.recompute == Recompute::full, 2);
  if (v2 && (p.tp > 1 || p.cp > 1)) {
    y.map("parallelism_config");
    const std::string k = "parallelism_config_";
    y.key(k + "dp_replicate_size", 1, 2);
    y.key(k + "dp_shard_size", p.dp, 2);
    y.key(k + "tp_size", p.tp, 2);
    y.key(k + "cp_size", p.cp, 2);
    // "alltoall" rotates K/V shards rank to rank (ring, as the plan models); "allgather" gathers them once.
    if (p.cp > 1) y.key(k + "cp_comm_strategy", "alltoall", 2);
    if (p.tp > 1)
      r.notes.push_back("tensor parallelism: load the model with from_pretrained(..., tp_plan=\"auto\", "
                        "device_mesh=accelerator.torch_device_mesh[\"tp\"])");
    if (p.cp > 1)
      r.notes.push_back("context parallelism needs SDPA with a causal mask and the training loop inside "
                        "accelerator.maybe_context_parallel(...) (context_parallelism.md)");
  }
  if (fp8) {
    y.map("fp8_config");
    y.key("backend", "AO", 2);  // torchao float8; keeps the first and last layers in bf16
    y.map("dynamo_config");
    y.key("dynamo_backend", "INDUCTOR", 2);
    y.flag("dynamo_use_regional_compilation", true, 2);
  }
  y.key("machine_rank", 0);
  y.key("main_training_function", "main");
  y.key("mixed_precision", t.precision == Precision::fp32 ? "'no'" : to_string(t.precision));  // no|fp16|bf16|fp8
  y.key("num_machines", c.nodes());
  y.key("num_processes", c.gpus);  // all processes over all machines
  y.key("rdzv_backend", "static");
  y.flag("same_network", true);
  y.flag("use_cpu", c.gpu.is_cpu);

  if (t.lora) r.notes.push_back(detail::peft_note(*t.lora));
  r.notes.push_back(t.flash_attention ? "the plan assumes fused attention: load the model with "
                                        "attn_implementation=\"flash_attention_2\" or \"sdpa\""
                                      : "the plan keeps the attention scores: attn_implementation=\"eager\"");
  if (t.recompute == Recompute::full)
    r.notes.push_back("fsdp_activation_checkpointing wraps each decoder layer; do not also call "
                      "model.gradient_checkpointing_enable()");
  if (plan.framework() != Framework::fsdp && plan.framework() != Framework::fsdp_compile)
    r.notes.push_back(fmt::format("the plan's memory was estimated with {} conventions; re-plan with --set "
                                  "training.framework=fsdp to compare with FSDP",
                                  to_string(plan.framework())));
  r.notes.push_back(fmt::format("micro-batch {} per process and {} gradient-accumulation steps belong in the "
                                "training script (Accelerator(gradient_accumulation_steps={}))",
                                t.micro_batch, plan.micro_batches(), plan.micro_batches()));
  r.text = y.text();
  return r;
}

}  // namespace paraplan::planner
