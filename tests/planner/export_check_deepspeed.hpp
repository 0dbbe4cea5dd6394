#pragma once
// DeepSpeed: deepspeedai/DeepSpeed v0.19.5 (cf44300453eb). The config's keys and types (the pydantic sections
// forbid unknown keys: runtime/config_utils.py DeepSpeedConfigModel extra="forbid", line 110), the launcher's
// flags (launcher/runner.py parse_args) and the rules deepspeed.initialize asserts. The world size comes from
// the launch note (deepspeed --num_nodes N --num_gpus G), a PipelineModule from the pipeline note.
#include <nlohmann/json.hpp>

#include "export_check_common.hpp"

namespace exportcheck {

namespace deepspeed_detail {

using nlohmann::json;

// Keys of a section and the JSON type each takes ('b' bool, 'i' integer, 's' string, 'o' object).
using Schema = std::map<std::string, char>;

inline void keys(Problems& out, const json& section, const std::string& where, const Schema& schema) {
  if (!section.is_object()) {
    out.require(false, "deepspeed: " + where + " is not an object");
    return;
  }
  for (const auto& [k, v] : section.items()) {
    const auto it = schema.find(k);
    if (it == schema.end()) {
      out.require(false, "deepspeed: unknown key " + where + "." + k);
      continue;
    }
    const char t = it->second;
    const bool ok = t == 'b' ? v.is_boolean() : t == 'i' ? v.is_number_integer() : t == 's' ? v.is_string() : v.is_object();
    out.require(ok, "deepspeed: " + where + "." + k + " has the wrong type");
  }
}

// launcher/runner.py parse_args (lines 53-225): flags with a value, then switches; --num_accelerators and
// --num_gpus are one option.
inline const std::set<std::string>& runner_valued() {
  static const std::set<std::string> s{"-H", "--hostfile", "-i", "--include", "-e", "--exclude", "--num_nodes",
                                       "--min_elastic_nodes", "--max_elastic_nodes", "--num_gpus", "--num_accelerators",
                                       "--master_port", "--master_addr", "--node_rank", "--launcher", "--launcher_args",
                                       "--bind_core_list", "--ssh_port", "--venv_script", "--log_level"};
  return s;
}
inline const std::set<std::string>& runner_switches() {
  static const std::set<std::string> s{"--module", "--no_python", "--no_local_rank", "--no_ssh", "--no_ssh_check",
                                       "--force_multi", "--save_pid", "--enable_each_rank_log", "--autotuning",
                                       "--elastic_training", "--bind_cores_to_rank", "-q"};
  return s;
}

}  // namespace deepspeed_detail

inline std::vector<std::string> check_deepspeed(const std::string& text, const std::vector<std::string>& notes) {
  using namespace deepspeed_detail;
  Problems out;
  json c;
  if (auto bad = parse_or_problem(c, [](const std::string& s) { return json::parse(s); }, text,
                                  "deepspeed: the config is not JSON");
      !bad.empty())
    return bad;
  // Top level: runtime/constants.py (batch keys 19-108, bf16 134, fp16 176, data_types 484, optimizer 61,
  // zero_allow_untested_optimizer 75), zero/config.py, activation_checkpointing/config.py 45, config.py
  // get_pipeline_config 417, tensor_parallel (config-json.md "Tensor Parallel"), expert_parallel (config-json.md 873).
  keys(out, c, "config",
       {{"train_batch_size", 'i'}, {"train_micro_batch_size_per_gpu", 'i'}, {"gradient_accumulation_steps", 'i'},
        {"bf16", 'o'}, {"fp16", 'o'}, {"data_types", 'o'}, {"zero_optimization", 'o'}, {"optimizer", 'o'},
        {"zero_allow_untested_optimizer", 'b'}, {"activation_checkpointing", 'o'}, {"pipeline", 'o'},
        {"tensor_parallel", 'o'}, {"expert_parallel", 'o'}});
  if (c.contains("bf16")) keys(out, c["bf16"], "bf16", {{"enabled", 'b'}});  // precision_config.py 46
  if (c.contains("fp16")) keys(out, c["fp16"], "fp16", {{"enabled", 'b'}});  // precision_config.py 105
  if (c.contains("data_types")) keys(out, c["data_types"], "data_types", {{"grad_accum_dtype", 's'}});
  const json zero = get_or(c, "zero_optimization", json::object());
  // zero/config.py DeepSpeedZeroConfig: stage 95, contiguous_gradients 102, overlap_comm 138, offload_param 157,
  // offload_optimizer 164; offload_config.py: device in {none, cpu, nvme} (OffloadDeviceEnum, line 14).
  keys(out, zero, "zero_optimization",
       {{"stage", 'i'}, {"overlap_comm", 'b'}, {"contiguous_gradients", 'b'}, {"offload_optimizer", 'o'}, {"offload_param", 'o'}});
  for (const char* off : {"offload_optimizer", "offload_param"})
    if (zero.contains(off)) {
      keys(out, zero[off], std::string("zero_optimization.") + off, {{"device", 's'}});
      const std::string d = get_or(zero[off], "device", "none");
      out.require(d == "none" || d == "cpu" || d == "nvme", "deepspeed: offload device '" + d + "' (OffloadDeviceEnum)");
    }
  const long long stage = get_or(zero, "stage", 0);
  out.require(stage >= 0 && stage <= 3, "deepspeed: zero_optimization.stage outside 0..3 (ZeroStageEnum)");
  // config-json.md line 550: offload_param is "Valid only with stage 3".
  if (zero.contains("offload_param")) out.require(stage == 3, "deepspeed: offload_param needs ZeRO stage 3 (config-json.md 550)");
  if (c.contains("optimizer")) keys(out, c["optimizer"], "optimizer", {{"type", 's'}, {"params", 'o'}});
  if (c.contains("activation_checkpointing"))  // activation_checkpointing/config.py 27-42
    keys(out, c["activation_checkpointing"], "activation_checkpointing",
         {{"partition_activations", 'b'}, {"number_checkpoints", 'i'}, {"contiguous_memory_optimization", 'b'},
          {"synchronize_checkpoint_boundary", 'b'}, {"profile", 'b'}, {"cpu_checkpointing", 'b'}});
  if (c.contains("pipeline"))  // config.py get_pipeline_config 419-426
    keys(out, c["pipeline"], "pipeline",
         {{"stages", 's'}, {"partition", 's'}, {"seed_layers", 'b'}, {"activation_checkpoint_interval", 'i'},
          {"pipe_partitioned", 'b'}, {"grad_partitioned", 'b'}});
  if (c.contains("tensor_parallel"))  // tensor_parallel/config.py TPTrainingConfig 45, 50
    keys(out, c["tensor_parallel"], "tensor_parallel", {{"autotp_size", 'i'}, {"tp_overlap_comm", 'b'}, {"preset_model", 's'}});
  if (c.contains("expert_parallel"))  // module_inject/auto_ep_config.py parse_autoep_config 47-49
    keys(out, c["expert_parallel"], "expert_parallel", {{"enabled", 'b'}, {"autoep_size", 'i'}, {"expert_tensor_parallel_size", 'i'}});

  // The launch note: deepspeed [flags] train.py ...
  std::vector<std::string> launch;
  bool pipeline = false;
  long long stages = 1;
  for (const auto& n : notes) {
    const size_t at = n.find("deepspeed --");
    if (launch.empty() && at != std::string::npos) launch = words_of(n.substr(at));
    if (n.rfind("pipeline: ", 0) == 0) {
      pipeline = true;
      const size_t k = n.find("num_stages=");
      std::string digits;
      for (size_t j = k == std::string::npos ? n.size() : k + 11; j < n.size() && std::isdigit(static_cast<unsigned char>(n[j])); ++j)
        digits += n[j];
      stages = whole(digits);
      // pipe/module.py _partition_layers: the default "parameters" would not keep the plan's split.
      out.require(n.find("partition_method=\"type:") != std::string::npos, "deepspeed: the pipeline note gives no type: partition_method");
    }
  }
  std::map<std::string, std::string> opt;
  size_t i = 1;
  for (; i < launch.size() && launch[i].rfind("-", 0) == 0; ++i) {
    if (runner_switches().count(launch[i])) continue;
    if (runner_valued().count(launch[i]) && i + 1 < launch.size()) {
      opt[launch[i]] = launch[i + 1];
      ++i;
      continue;
    }
    out.require(false, "deepspeed launcher: unrecognized argument " + launch[i] + " (runner.py parse_args)");
  }
  out.require(!launch.empty() && i < launch.size() && launch[i] == "train.py", "deepspeed: no launch note running train.py");
  const long long nodes = opt.count("--num_nodes") ? whole(opt["--num_nodes"]) : -1;
  const long long per_node = opt.count("--num_gpus") ? whole(opt["--num_gpus"]) : -1;
  out.require(nodes >= 1 && per_node >= 1, "deepspeed: the launch note must give --num_nodes and --num_gpus");
  // runner.py 467-477: without a hostfile the pool is localhost only, and --num_nodes > 1 raises.
  if (nodes > 1) out.require(opt.count("--hostfile") || opt.count("-H"), "deepspeed: --num_nodes > 1 without --hostfile (runner.py 477)");
  if (nodes < 1 || per_node < 1 || stages < 1) return out.list;
  const long long world = nodes * per_node;

  // runtime/config.py 697-715: world_size is the mpu's data-parallel size (PipelineModule: world / stages),
  // else every rank; 924: train_batch_size == micro x gradient_accumulation_steps x world_size.
  const long long ds_world = pipeline ? world / stages : world;
  const long long train = get_or(c, "train_batch_size", -1LL), micro = get_or(c, "train_micro_batch_size_per_gpu", -1LL),
                  gas = get_or(c, "gradient_accumulation_steps", -1LL);
  out.require(!pipeline || world % stages == 0, "deepspeed: world size not divisible by the pipeline stages");
  out.require(train > 0 && micro > 0 && gas > 0 && train == micro * gas * ds_world,
              "deepspeed: train_batch_size != micro x gradient_accumulation_steps x world_size (runtime/config.py 924)");
  // pipe/engine.py 76-77: ZeRO-2 and -3 are incompatible with pipeline parallelism.
  if (pipeline) out.require(stage < 2, "deepspeed: ZeRO stage >= 2 with a PipelineModule (pipe/engine.py 77)");
  // engine.py 1939-1946: ZeRO with an optimizer outside ZERO_SUPPORTED_OPTIMIZERS (zero/utils.py 45) needs
  // zero_allow_untested_optimizer; config "Adam"/"AdamW" build (CPU/Fused) Adam, which are in it.
  const std::string type = c.contains("optimizer") ? get_or(c["optimizer"], "type", "") : "";
  if (stage >= 1 && !type.empty() && type != "Adam" && type != "AdamW")
    out.require(get_or(c, "zero_allow_untested_optimizer", false), "deepspeed: ZeRO with an untested optimizer (engine.py 1946)");
  // engine.py 1967-1977: without ZeRO the model dtype and grad_accum_dtype must agree.
  const std::string model_dtype = c.contains("bf16") && get_or(c["bf16"], "enabled", false)   ? "bf16"
                                  : c.contains("fp16") && get_or(c["fp16"], "enabled", false) ? "fp16"
                                                                                            : "fp32";
  const std::string grad_dtype = c.contains("data_types") ? get_or(c["data_types"], "grad_accum_dtype", model_dtype) : model_dtype;
  out.require(grad_dtype == "fp32" || grad_dtype == "fp16" || grad_dtype == "bf16", "deepspeed: grad_accum_dtype '" + grad_dtype + "'");
  if (stage == 0) out.require(grad_dtype == model_dtype, "deepspeed: without ZeRO, grad_accum_dtype must be the model dtype (engine.py 1977)");
  // AutoTP: autotp_size divides the ranks; AutoEP: ep x etp divides the stage (auto_ep_folding.py 104-111), and
  // not with AutoTP (config-json.md 1094).
  const long long autotp = c.contains("tensor_parallel") ? get_or(c["tensor_parallel"], "autotp_size", 0LL) : 0;
  if (autotp > 1) out.require(world % autotp == 0, "deepspeed: autotp_size does not divide the world size");
  if (c.contains("expert_parallel") && get_or(c["expert_parallel"], "enabled", false)) {
    const long long ep = get_or(c["expert_parallel"], "autoep_size", 1LL);
    out.require(ep >= 1 && (world / stages) % ep == 0, "deepspeed: autoep_size does not divide the stage (auto_ep_folding.py 111)");
    out.require(autotp <= 1, "deepspeed: AutoEP with AutoTP (config-json.md 1094)");
  }
  return out.list;
}

}  // namespace exportcheck
