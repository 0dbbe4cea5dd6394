#pragma once
// accelerate: huggingface/accelerate v1.14.0 (beb0672aa844). Top-level keys are ClusterConfig's fields (the
// loader rejects others: src/accelerate/commands/config/config_args.py 154-157); the keys of fsdp_config,
// fp8_config, dynamo_config and parallelism_config become `accelerate launch` options (commands/launch.py
// 1259-1270: fsdp_x -> --fsdp_x, fp8_config.x -> --fp8_x, dynamo_config.x -> --dynamo_x), so they must be
// options launch.py defines. Values from utils/constants.py; rules from utils/dataclasses.py
// FullyShardedDataParallelPlugin, parallelism_config.py and utils/launch.py.
#include "config_parsers.hpp"
#include "export_check_common.hpp"

namespace exportcheck {

namespace accelerate_detail {

using nlohmann::json;

// config_args.py BaseConfig (77-81) and ClusterConfig (180-217): key -> 'i', 'b', 's' or 'o' (a mapping).
inline const std::map<std::string, char>& top_level() {
  static const std::map<std::string, char> k{
      {"compute_environment", 's'}, {"distributed_type", 's'}, {"mixed_precision", 's'}, {"use_cpu", 'b'},
      {"debug", 'b'}, {"num_processes", 'i'}, {"machine_rank", 'i'}, {"num_machines", 'i'}, {"gpu_ids", 's'},
      {"main_process_ip", 's'}, {"main_process_port", 'i'}, {"rdzv_backend", 's'}, {"same_network", 'b'},
      {"main_training_function", 's'}, {"enable_cpu_affinity", 'b'}, {"fp8_config", 'o'}, {"deepspeed_config", 'o'},
      {"fsdp_config", 'o'}, {"parallelism_config", 'o'}, {"megatron_lm_config", 'o'}, {"mpirun_config", 'o'},
      {"downcast_bf16", 's'}, {"dynamo_config", 'o'}};
  return k;
}

// commands/launch.py options reached through the config's mappings (line numbers at v1.14.0).
inline const std::map<std::string, std::set<std::string>>& launch_options() {
  static const std::map<std::string, std::set<std::string>> o{
      {"fsdp_config",  // 514-600
       {"fsdp_version", "fsdp_offload_params", "fsdp_min_num_params", "fsdp_sharding_strategy", "fsdp_reshard_after_forward",
        "fsdp_auto_wrap_policy", "fsdp_transformer_layer_cls_to_wrap", "fsdp_backward_prefetch", "fsdp_state_dict_type",
        "fsdp_forward_prefetch", "fsdp_use_orig_params", "fsdp_cpu_ram_efficient_loading", "fsdp_sync_module_states",
        "fsdp_activation_checkpointing"}},
      {"fp8_config",  // 786-849, keys given without the fp8_ prefix
       {"backend", "use_autocast_during_eval", "margin", "interval", "format", "amax_history_len", "amax_compute_algo",
        "override_linear_precision", "opt_level", "enable_fsdp_float8_all_gather", "pad_inner_dim"}},
      {"dynamo_config",  // 217-243
       {"dynamo_backend", "dynamo_mode", "dynamo_use_fullgraph", "dynamo_use_dynamic", "dynamo_use_regional_compilation"}},
      {"parallelism_config",  // 900-972
       {"parallelism_config_dp_replicate_size", "parallelism_config_dp_shard_size", "parallelism_config_tp_size",
        "parallelism_config_cp_size", "parallelism_config_cp_backend", "parallelism_config_cp_comm_strategy",
        "parallelism_config_sp_size", "parallelism_config_sp_backend", "parallelism_config_sp_seq_length",
        "parallelism_config_sp_seq_length_is_variable", "parallelism_config_sp_attn_implementation"}}};
  return o;
}

}  // namespace accelerate_detail

inline std::vector<std::string> check_accelerate(const std::string& text) {
  using namespace accelerate_detail;
  Problems out;
  json y;
  if (auto bad = parse_or_problem(y, cfgtest::parse_yaml, text, "accelerate: the YAML does not parse"); !bad.empty())
    return bad;
  for (const auto& [k, v] : y.items()) {
    const auto it = top_level().find(k);
    if (it == top_level().end()) {
      out.require(false, "accelerate: unknown key " + k + " (config_args.py rejects it)");
      continue;
    }
    const char t = it->second;
    out.require(t == 'i' ? v.is_number_integer() : t == 'b' ? v.is_boolean() : t == 's' ? v.is_string() : v.is_object(),
                "accelerate: " + k + " has the wrong type");
    if (t == 'o' && v.is_object() && launch_options().count(k))
      for (const auto& [sub, x] : v.items())
        out.require(launch_options().at(k).count(sub), "accelerate: " + k + "." + sub + " is not an accelerate launch option");
  }
  const json f = get_or(y, "fsdp_config", json::object()), pc = get_or(y, "parallelism_config", json::object());
  // utils/constants.py and launch.py choices.
  out.require(get_or(y, "distributed_type", "") == "FSDP" || !y.contains("fsdp_config"), "accelerate: fsdp_config without distributed_type FSDP");
  const std::string mp = get_or(y, "mixed_precision", "no");
  out.require(mp == "no" || mp == "fp16" || mp == "bf16" || mp == "fp8", "accelerate: mixed_precision '" + mp + "'");
  const long long version = get_or(f, "fsdp_version", 1LL);
  out.require(version == 1 || version == 2, "accelerate: fsdp_version must be 1 or 2");
  // dataclasses.py 1855-1873: FSDP2 takes reshard_after_forward as a bool, FSDP1 as a ShardingStrategy name
  // (constants.py 38 FSDP_SHARDING_STRATEGY).
  static const std::set<std::string> strategies{"FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD", "HYBRID_SHARD_ZERO2"};
  if (f.contains("fsdp_reshard_after_forward")) {
    const json& r = f["fsdp_reshard_after_forward"];
    if (version == 2) out.require(r.is_boolean(), "accelerate: FSDP2 needs fsdp_reshard_after_forward true/false (dataclasses.py 1867)");
    else out.require(r.is_string() && strategies.count(r.get<std::string>()), "accelerate: FSDP1 reshard_after_forward must be a strategy name (dataclasses.py 1871)");
  }
  if (f.contains("fsdp_sharding_strategy"))
    out.require(f["fsdp_sharding_strategy"].is_string() && strategies.count(f["fsdp_sharding_strategy"].get<std::string>()),
                "accelerate: fsdp_sharding_strategy not in FSDP_SHARDING_STRATEGY (constants.py 38)");
  if (f.contains("fsdp_auto_wrap_policy"))  // constants.py 39
    out.require(f["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP" || f["fsdp_auto_wrap_policy"] == "SIZE_BASED_WRAP" ||
                    f["fsdp_auto_wrap_policy"] == "NO_WRAP",
                "accelerate: fsdp_auto_wrap_policy not in FSDP_AUTO_WRAP_POLICY (constants.py 39)");
  if (f.contains("fsdp_state_dict_type"))  // constants.py 41-42
    out.require(f["fsdp_state_dict_type"] == "SHARDED_STATE_DICT" || f["fsdp_state_dict_type"] == "FULL_STATE_DICT" ||
                    (version == 1 && f["fsdp_state_dict_type"] == "LOCAL_STATE_DICT"),
                "accelerate: fsdp_state_dict_type not allowed for this FSDP version (constants.py 41-42)");
  // utils/launch.py 306-307: CPU-RAM-efficient loading needs sync_module_states.
  if (get_or(f, "fsdp_cpu_ram_efficient_loading", false))
    out.require(get_or(f, "fsdp_sync_module_states", false), "accelerate: cpu_ram_efficient_loading without sync_module_states (utils/launch.py 306)");
  // accelerator.py 524: torchao FP8 with FSDP2 and cpu_ram_efficient_loading is not supported.
  if (y.contains("fp8_config") && get_or(y["fp8_config"], "backend", "") == "AO" && version == 2)
    out.require(!get_or(f, "fsdp_cpu_ram_efficient_loading", false), "accelerate: torchao FP8 with cpu_ram_efficient_loading (accelerator.py 524)");
  // Processes: utils/launch.py 113/217 gives each machine num_processes // num_machines.
  const long long procs = get_or(y, "num_processes", -1LL), machines = get_or(y, "num_machines", 1LL);
  out.require(procs >= 1 && machines >= 1 && procs % machines == 0,
              "accelerate: num_processes must be a whole multiple of num_machines (utils/launch.py 217)");
  if (!pc.empty()) {
    // launch.py 1205: a parallelism config needs FSDP2.
    out.require(version == 2, "accelerate: parallelism_config needs fsdp_version 2 (launch.py 1205)");
    const long long rep = get_or(pc, "parallelism_config_dp_replicate_size", 1LL), shard = get_or(pc, "parallelism_config_dp_shard_size", 1LL),
                    tp = get_or(pc, "parallelism_config_tp_size", 1LL), cp = get_or(pc, "parallelism_config_cp_size", 1LL);
    // parallelism_config.py 168 total_size and 372: it must equal the number of processes; 336: tp/cp with pure
    // replication is invalid.
    out.require(rep * shard * tp * cp == procs, "accelerate: parallelism sizes do not multiply to num_processes (parallelism_config.py 372)");
    out.require(!((tp > 1 || cp > 1) && rep > 1 && shard == 1), "accelerate: tp/cp with dp_replicate only (parallelism_config.py 336)");
    if (pc.contains("parallelism_config_cp_comm_strategy"))  // utils/dataclasses.py 2227
      out.require(pc["parallelism_config_cp_comm_strategy"] == "alltoall" || pc["parallelism_config_cp_comm_strategy"] == "allgather",
                  "accelerate: cp_comm_strategy must be alltoall or allgather");
  }
  return out.list;
}

}  // namespace exportcheck
