// A DeepSpeed JSON config (the file deepspeed.initialize(config=...) and `deepspeed --deepspeed_config` take).
//
// Keys checked against deepspeedai/DeepSpeed v0.19.5 (cf44300453eb, 2026-08-09): batch keys in
// deepspeed/runtime/constants.py; bf16/fp16 in deepspeed/runtime/precision_config.py; zero_optimization in
// deepspeed/runtime/zero/config.py and zero/offload_config.py; activation_checkpointing in
// deepspeed/runtime/activation_checkpointing/config.py; "tensor_parallel" (AutoTP) in
// deepspeed/runtime/tensor_parallel/config.py; "expert_parallel" (AutoEP), "data_types" and all of the
// above in docs/_pages/config-json.md. Batch rule: runtime/config.py (DeepSpeedConfig.__init__ lines 697-715
// choose world_size, _batch_assertion line 924 checks it); launcher flags: launcher/runner.py; pipeline
// placement: runtime/pipe/module.py _partition_layers and runtime/utils.py partition_balanced.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "export_util.hpp"
#include "paraplan/export.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

using detail::Inexpressible;
using ojson = nlohmann::ordered_json;

namespace {

const char* dtype_name(GradDtype g) { return g == GradDtype::fp32 ? "fp32" : g == GradDtype::bf16 ? "bf16" : "fp16"; }

void check_parallel(const Plan& plan, Inexpressible& no) {
  const ParallelPlan& p = plan.parallel;
  if (p.ep_comm_overlap && p.ep > 1)
    no.add("parallel.ep_comm_overlap", "true", "DeepSpeed has no setting that overlaps the MoE all-to-all with compute");
  if (p.cp > 1)
    no.add("parallel.cp", std::to_string(p.cp),
           "DeepSpeed's sequence parallelism (Ulysses, sequence_parallel_size) splits attention heads with "
           "all-to-all; it is not ring attention over the sequence");
  if (p.pp > 1) {
    if (p.zero >= 2)
      no.add("parallel.zero", std::to_string(p.zero),
             "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism (deepspeed/runtime/pipe/engine.py)");
    if (p.pp_schedule != PipelineSchedule::one_f_one_b)
      no.add("parallel.pp_schedule", to_string(p.pp_schedule),
             "DeepSpeed's PipelineEngine runs its own 1F1B TrainSchedule (deepspeed/runtime/pipe/schedule.py)");
    // PipelineModule places layers by partition_method only ("parameters", "uniform", "type:<regex>",
    // pipe/module.py _partition_layers). "type:<decoder layer class>" weighs the decoder layers 1 and the
    // embedding, norm and head 0, and partition_balanced then gives every stage L/pp decoder layers when
    // that is a whole number (a split with equal counts is the only one of cost 0); an uneven split has
    // no method that reproduces it.
    const std::vector<int> chunks = chunk_layers(plan);
    if (std::adjacent_find(chunks.begin(), chunks.end(), std::not_equal_to<>()) != chunks.end()) {
      const std::string rule = fmt::format(
          "DeepSpeed's PipelineModule places layers by partition_method (parameters, uniform, type:<regex>; "
          "pipe/module.py), which reproduces only an even split of the {} transformer layers over pp = {}; "
          "the plan puts {} on the stages",
          plan.model.layers, p.pp, detail::list_of(chunks));
      if (!p.layer_split.empty()) no.add("parallel.layer_split", detail::list_of(p.layer_split), rule);
      else no.add("parallel.pp", std::to_string(p.pp), rule);
    }
    if (p.tp > 1)
      no.add("parallel.tp", std::to_string(p.tp),
             "AutoTP (tensor_parallel.autotp_size) is documented for ZeRO, not for PipelineModule pipelines");
  }
  if (p.tp > 1 && p.sequence_parallel)
    no.add("parallel.sequence_parallel", "true",
           "AutoTP shards linear layers only; it has no Megatron-style sequence parallelism");
  if (p.ep > 1 && p.tp > 1)
    no.add("parallel.ep", std::to_string(p.ep),
           "AutoEP cannot be combined with AutoTP (config-json.md, Expert Parallel constraints)");
}

}  // namespace

ExportResult export_deepspeed(const Plan& plan) {
  const ParallelPlan& p = plan.parallel;
  const TrainingSpec& t = plan.training;
  Inexpressible no("DeepSpeed");
  ExportResult r;
  check_parallel(plan, no);
  detail::reject_te_cross_entropy(plan.training, no, detail::kTransformersLoss);

  ojson c;
  // DeepSpeedConfig asserts train_batch_size == micro x gradient_accumulation_steps x world_size, with
  // world_size the data-parallel size of the mpu it is given (a PipelineModule's grid: dp) and, without one,
  // every rank (runtime/config.py, HF zero.init case): AutoTP makes its groups only later, in the engine, so
  // the tp ranks count as data parallel. They read the same micro-batches (the engine checks it at the first
  // forward), so micro x accumulation x dp distinct sequences still train per step: the plan's global batch.
  const long long config_world = p.pp > 1 ? p.dp : static_cast<long long>(p.dp) * p.tp;  // cp is refused
  c["train_batch_size"] = static_cast<long long>(t.micro_batch) * plan.micro_batches() * config_world;
  c["train_micro_batch_size_per_gpu"] = t.micro_batch;
  c["gradient_accumulation_steps"] = plan.micro_batches();  // the PipelineEngine's micro-batches when pp > 1

  if (t.precision == Precision::fp8)
    no.add("training.precision", "fp8",
           "the DeepSpeed config has no FP8 training mode (FP8 GEMMs come from Transformer Engine in the model)");
  if (t.precision == Precision::bf16) c["bf16"] = {{"enabled", true}};
  if (t.precision == Precision::fp16) c["fp16"] = {{"enabled", true}};
  const bool half = t.precision == Precision::bf16 || t.precision == Precision::fp16;
  const GradDtype model_grads = t.precision == Precision::fp16 ? GradDtype::fp16 : t.precision == Precision::bf16
                                                                                     ? GradDtype::bf16
                                                                                     : GradDtype::fp32;
  if (half && t.grad_dtype != GradDtype::fp32 && t.grad_dtype != model_grads)
    no.add("training.grad_dtype", to_string(t.grad_dtype),
           fmt::format("gradients accumulate in fp32 or in the {} model dtype", to_string(t.precision)));
  else if (half && t.grad_dtype == GradDtype::fp32 && p.zero == 0)
    // engine.py _do_optimizer_sanity_check: without ZeRO, model and gradient dtypes must match.
    no.add("training.grad_dtype", "fp32",
           fmt::format("without ZeRO DeepSpeed accumulates gradients in the model dtype ({}); fp32 gradients "
                       "need zero >= 1",
                       to_string(t.precision)));
  c["data_types"] = {{"grad_accum_dtype", dtype_name(t.grad_dtype)}};  // "fp32" | "fp16" | "bf16"

  ojson zero;
  zero["stage"] = p.zero;  // 0 disabled, 1 optimizer states, 2 + gradients, 3 + parameters
  if (p.zero >= 1) {
    zero["overlap_comm"] = p.dp_overlap;  // "overlap the reduction of the gradients with backward computation"
    zero["contiguous_gradients"] = true;  // default true: copy gradients to a contiguous buffer as produced
  }
  if (t.offload != Offload::none) zero["offload_optimizer"] = {{"device", "cpu"}};   // valid for stage 1, 2, 3
  if (t.offload == Offload::optimizer_params) zero["offload_param"] = {{"device", "cpu"}};  // stage 3 only
  c["zero_optimization"] = zero;

  switch (t.optimizer) {
    // engine.py _configure_basic_optimizer: "Adam" is AdamW unless adam_w_mode is false; "AdamW" is AdamW.
    case Optimizer::adamw: c["optimizer"] = {{"type", "AdamW"}}; break;
    case Optimizer::adam: c["optimizer"] = {{"type", "Adam"}, {"params", {{"adam_w_mode", false}}}}; break;
    // Other names are looked up in torch.optim; ZeRO asks for zero_allow_untested_optimizer with them.
    case Optimizer::sgd: c["optimizer"] = {{"type", "SGD"}}; break;
    case Optimizer::sgd_momentum:
      c["optimizer"] = {{"type", "SGD"}, {"params", {{"momentum", 0.9}}}};
      r.notes.push_back("SGD momentum 0.9 written (Megatron-LM's --sgd-momentum default); the plan only says "
                        "that a momentum buffer is kept");
      break;
    case Optimizer::adam8bit:
      no.add("training.optimizer", "adam8bit", "DeepSpeed's config optimizers have no 8-bit Adam");
      break;
  }
  if ((t.optimizer == Optimizer::sgd || t.optimizer == Optimizer::sgd_momentum) && p.zero >= 1)
    c["zero_allow_untested_optimizer"] = true;

  if (t.recompute == Recompute::selective)
    no.add("training.recompute", "selective",
           "DeepSpeed checkpoints whole layers (activation_checkpointing); it has no attention-core-only "
           "recompute. Use none or full");
  if (t.recompute == Recompute::full) {
    // Configures deepspeed.checkpointing; the model still wraps each layer (see the notes).
    c["activation_checkpointing"] = {{"partition_activations", false},
                                     {"cpu_checkpointing", false},
                                     {"contiguous_memory_optimization", false},
                                     {"synchronize_checkpoint_boundary", false}};
    if (p.pp > 1) c["pipeline"] = {{"activation_checkpoint_interval", 1}};  // runtime/config.py pipeline section
    r.notes.push_back("recompute full: checkpoint every transformer layer in the model "
                      "(Transformers: model.gradient_checkpointing_enable(); else deepspeed.checkpointing.checkpoint)");
  }
  if (p.tp > 1) {
    c["tensor_parallel"] = {{"autotp_size", p.tp}};  // AutoTP training; ZeRO stages 0-3
    if (p.tp_comm_overlap) c["tensor_parallel"]["tp_overlap_comm"] = true;
    r.notes.push_back("AutoTP shards the model's linear layers from its Transformers tp_plan or a "
                      "tensor_parallel.preset_model (llama, mixtral, qwen2, deepseek_v2, ...)");
  } else if (p.tp_comm_overlap) {
    r.notes.push_back("parallel.tp_comm_overlap has nothing to overlap with tp = 1; no key written");
  }
  if (p.ep > 1) {
    c["expert_parallel"] = {{"enabled", true}, {"autoep_size", p.ep}};
    r.notes.push_back("AutoEP replaces the MoE layers of a Transformers model (Transformers >= 5.0, presets "
                      "mixtral, qwen3_moe, deepseek_v2, deepseek_v3)");
  }
  if (p.pp > 1) {
    const std::string layer = detail::hf_decoder_layer_class(detail::hf_model_type(plan.model));
    r.notes.push_back(fmt::format(
        "pipeline: build the model as deepspeed.pipe.PipelineModule(layers=[embedding, the {} decoder layers, final "
        "norm + head], num_stages={}, partition_method=\"type:{}\"): the regex weighs only the decoder layers, so "
        "each stage gets {} of them, the embedding stays on stage 0 and the head on stage {} as the plan assumes; "
        "the default \"parameters\" balances parameter counts with the embedding and head included",
        plan.model.layers, p.pp, layer.empty() ? "<class name of your decoder layers>" : layer,
        plan.model.layers / p.pp, p.pp - 1));
  }
  no.throw_if_any();

  if (t.lora) r.notes.push_back(detail::peft_note(*t.lora));
  r.notes.push_back(t.flash_attention ? "the plan assumes fused attention: load the model with "
                                        "attn_implementation=\"flash_attention_2\" or \"sdpa\""
                                      : "the plan keeps the attention scores: attn_implementation=\"eager\"");
  if (p.tp > 1) {
    r.notes.push_back(fmt::format(
        "train_batch_size is {} = micro-batch {} x {} accumulation steps x {} ranks: DeepSpeed counts all dp {} x tp {} "
        "ranks as data parallel (runtime/config.py, no mpu with AutoTP), while the {} ranks of a tensor-parallel group "
        "read the same sequences, so each step trains the plan's {} sequences; DeepSpeed's sample counters and "
        "throughput count each of them {} times",
        c["train_batch_size"].get<long long>(), t.micro_batch, plan.micro_batches(), config_world, p.dp, p.tp, p.tp,
        t.global_batch, p.tp));
    r.notes.push_back("data: shard the dataset by data-parallel rank (deepspeed.utils.groups.get_data_parallel_rank() "
                      "among get_data_parallel_world_size() ranks), not by global rank, so a tensor-parallel group sees "
                      "identical batches (DeepSpeed checks this at the first forward)");
  }
  const ClusterSpec& cl = plan.cluster;
  const int per_node = std::min(cl.gpus, cl.gpus_per_node);
  if (cl.nodes() == 1) {
    r.notes.push_back(fmt::format("launch: deepspeed --num_nodes 1 --num_gpus {} train.py --deepspeed --deepspeed_config "
                                  "ds_config.json (learning rate and scheduler are not in the plan)",
                                  per_node));
  } else {
    // launcher/runner.py: the nodes come from the hostfile (default /job/hostfile, "worker-0 slots=4" lines);
    // without it --num_nodes > 1 stops with "Num nodes is >1 but no extra nodes available via hostfile".
    r.notes.push_back(fmt::format("launch, once, from the first node (the launcher starts the others over passwordless "
                                  "ssh): deepspeed --hostfile hostfile --num_nodes {} --num_gpus {} train.py --deepspeed "
                                  "--deepspeed_config ds_config.json (learning rate and scheduler are not in the plan)",
                                  cl.nodes(), per_node));
    r.notes.push_back(fmt::format("hostfile: {} lines, one per node, \"<hostname> slots={}\"", cl.nodes(), per_node));
  }
  r.text = c.dump(2) + "\n";
  return r;
}

}  // namespace paraplan::planner
