#pragma once
// Megatron-LM: NVIDIA/Megatron-LM core_v0.19.0 (5be9626709af). The flags are what pretrain_gpt.py's parser
// knows: literal add_argument calls in megatron/training/arguments.py, and flags that ArgumentGroupFactory
// (megatron/training/argument_utils.py) generates as --field-name from dataclass fields — bool -> store_true
// (store_false under argparse_meta arg_names), Literal -> choices, Enum -> member names. Only the flags the
// exporter can write are listed; an export with any other flag fails until that flag is checked here too.
#include <algorithm>

#include "config_parsers.hpp"
#include "export_check_common.hpp"

namespace exportcheck {

namespace megatron_detail {

enum class Arg { sw, integer, number, text };
struct FlagSpec {
  Arg arg;
  std::set<std::string> choices;  // empty: any value of the type
};

inline const std::map<std::string, FlagSpec>& flags() {
  static const std::map<std::string, FlagSpec> f{
      // arguments.py literal add_argument(...): line numbers at core_v0.19.0
      {"--accumulate-allreduce-grads-in-fp32", {Arg::sw, {}}},      // 2921 store_true
      {"--grad-reduce-in-bf16", {Arg::sw, {}}},                     // 2905
      {"--group-query-attention", {Arg::sw, {}}},                   // 2299
      {"--window-size", {Arg::text, {}}},                           // 2301 tuple_type "L,R"
      {"--swiglu", {Arg::sw, {}}},                                  // 2367
      {"--untie-embeddings-and-output-weights", {Arg::sw, {}}},     // 2377
      {"--use-distributed-optimizer", {Arg::sw, {}}},               // 2997
      {"--no-overlap-p2p-communication", {Arg::sw, {}}},            // 2965 store_false, dest overlap_p2p_comm
      {"--optimizer-cpu-offload", {Arg::sw, {}}},                   // 2781
      {"--use-precision-aware-optimizer", {Arg::sw, {}}},           // 3500
      {"--overlap-grad-reduce", {Arg::sw, {}}},                     // 2968
      {"--overlap-param-gather", {Arg::sw, {}}},                    // 2989
      {"--decoder-first-pipeline-num-layers", {Arg::integer, {}}},  // 2942
      {"--decoder-last-pipeline-num-layers", {Arg::integer, {}}},   // 2946
      {"--num-virtual-stages-per-pipeline-rank", {Arg::integer, {}}},  // 2963
      {"--pipeline-model-parallel-layout", {Arg::text, {}}},        // 2950
      {"--make-vocab-size-divisible-by", {Arg::integer, {}}},       // 2358
      {"--max-position-embeddings", {Arg::integer, {}}},            // 2311
      {"--seq-length", {Arg::integer, {}}},                         // 3138
      {"--num-experts", {Arg::integer, {}}},                        // 3351
      {"--moe-layer-freq", {Arg::text, {}}},                        // 3353 moe_freq_type
      {"--q-lora-rank", {Arg::integer, {}}},                        // 3381
      {"--kv-lora-rank", {Arg::integer, {}}},                       // 3383
      {"--qk-head-dim", {Arg::integer, {}}},                        // 3385
      {"--qk-pos-emb-head-dim", {Arg::integer, {}}},                // 3387
      {"--v-head-dim", {Arg::integer, {}}},                         // 3389
      {"--sgd-momentum", {Arg::number, {}}},                        // 2516 type=float
      {"--position-embedding-type", {Arg::text, {"learned_absolute", "rope", "yarn", "mrope", "relative", "none"}}},  // 2314
      {"--optimizer", {Arg::text, {"adam", "sgd", "muon", "dist_muon", "lion", "soap", "adaptive_muon"}}},  // 2776
      {"--data-parallel-sharding-strategy", {Arg::text, {"no_shard", "optim", "optim_grads", "optim_grads_params"}}},  // 3023
      // ModelParallelConfig (megatron/core/model_parallel_config.py): field line numbers
      {"--tensor-model-parallel-size", {Arg::integer, {}}},    // 55
      {"--pipeline-model-parallel-size", {Arg::integer, {}}},  // 83
      {"--sequence-parallel", {Arg::sw, {}}},                  // 94 bool = False
      {"--context-parallel-size", {Arg::integer, {}}},         // 100
      {"--expert-model-parallel-size", {Arg::integer, {}}},    // 127
      {"--fp16", {Arg::sw, {}}},                               // 177
      {"--bf16", {Arg::sw, {}}},                               // 180
      {"--tp-comm-overlap", {Arg::sw, {}}},                    // 265
      {"--overlap-moe-expert-parallel-comm", {Arg::sw, {}}},   // 343 bool = False
      // TransformerConfig (megatron/core/transformer/transformer_config.py), not in arguments.py's exclude list
      {"--num-layers", {Arg::integer, {}}},               // 65
      {"--hidden-size", {Arg::integer, {}}},              // 138
      {"--num-attention-heads", {Arg::integer, {}}},      // 141
      {"--attention-backend", {Arg::text, {"flash", "fused", "unfused", "local", "auto"}}},  // 144 AttnBackend (enums.py)
      {"--num-query-groups", {Arg::integer, {}}},         // 168
      {"--ffn-hidden-size", {Arg::integer, {}}},          // 173
      {"--kv-channels", {Arg::integer, {}}},              // 177
      {"--hidden-dropout", {Arg::number, {}}},            // 181
      {"--attention-dropout", {Arg::number, {}}},         // 184
      {"--disable-bias-linear", {Arg::sw, {}}},           // 205 add_bias_linear, arg_names
      {"--add-qkv-bias", {Arg::sw, {}}},                  // 211
      {"--normalization", {Arg::text, {"LayerNorm", "RMSNorm"}}},  // 249 Literal
      {"--qk-layernorm", {Arg::sw, {}}},                  // 252 bool = False
      {"--multi-latent-attention", {Arg::sw, {}}},        // 281
      {"--recompute-granularity", {Arg::text, {"full", "selective"}}},  // 518 Literal
      {"--recompute-method", {Arg::text, {"uniform", "block"}}},        // 529 Literal
      {"--recompute-num-layers", {Arg::integer, {}}},     // 537
      {"--fp8-format", {Arg::text, {"e4m3", "hybrid"}}},  // 566 fp8, arg_names ["--fp8-format"]
      {"--moe-shared-expert-intermediate-size", {Arg::integer, {}}},  // 680
      {"--moe-ffn-hidden-size", {Arg::integer, {}}},      // 719
      {"--moe-router-topk", {Arg::integer, {}}},          // 739
      {"--moe-grouped-gemm", {Arg::sw, {}}},              // 829 bool = False
      {"--moe-token-dispatcher-type", {Arg::text, {"allgather", "alltoall", "flex"}}},  // 862 Literal
      {"--moe-permute-fusion", {Arg::sw, {}}},            // 912 bool = False
      {"--moe-router-fusion", {Arg::sw, {}}},             // 915 bool = False
      // TrainingConfig / CheckpointConfig (megatron/training/config/training_config.py), DistributedInitConfig
      // (megatron/training/config/common_config.py)
      {"--micro-batch-size", {Arg::integer, {}}},   // training_config.py 11
      {"--global-batch-size", {Arg::integer, {}}},  // training_config.py 15
      {"--ckpt-format", {Arg::text, {"torch", "torch_dist", "torch_dcp", "fsdp_dtensor"}}},  // training_config.py 486
      {"--use-megatron-fsdp", {Arg::sw, {}}},       // common_config.py 92
  };
  return f;
}

// --pipeline-model-parallel-layout as pipeline_parallel_layer_layout.py parse_str_to_list reads it: "(x)*n" and
// "c*n" unrolled, stages split by '|', characters E, L, t, m. Returns layers per stage as strings, or {} when
// a character is unknown.
inline std::vector<std::string> layout_stages(std::string s) {
  std::string flat;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i + 2 < s.size() && s[i + 1] == '*' && std::isdigit(static_cast<unsigned char>(s[i + 2]))) {
      size_t j = i + 2;
      int n = 0;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) n = n * 10 + (s[j++] - '0');
      flat.append(static_cast<size_t>(n), s[i]);
      i = j - 1;
    } else if (s[i] != ',') {
      flat += s[i];
    }
  }
  std::vector<std::string> stages(1);
  for (char c : flat) {
    if (c == '|') stages.emplace_back();
    else if (std::string("ELtm").find(c) != std::string::npos) stages.back() += c;
    else return {};
  }
  return stages;
}

}  // namespace megatron_detail

inline std::vector<std::string> check_megatron(const std::string& text) {
  using namespace megatron_detail;
  Problems out;
  cfgtest::Flags f;
  if (auto bad = parse_or_problem(f, cfgtest::parse_megatron, text,
                                  "megatron: the MEGATRON_ARGS array does not parse");
      !bad.empty())
    return bad;
  for (const auto& [name, value] : f.values) {
    const auto it = flags().find(name);
    if (it == flags().end()) {
      out.require(false, "megatron: " + name + " is not a flag of pretrain_gpt.py (core_v0.19.0)");
      continue;
    }
    const FlagSpec& spec = it->second;
    const bool typed = spec.arg == Arg::sw ? value.empty()
                       : spec.arg == Arg::integer ? whole(value) >= 0
                       : spec.arg == Arg::number  ? is_float(value)
                                                  : !value.empty();
    out.require(typed, "megatron: " + name + " '" + value + "' is not what argparse takes there");
    out.require(spec.choices.empty() || spec.choices.count(value), "megatron: " + name + " '" + value + "' is not one of its choices");
  }
  auto num = [&](const std::string& flag, long long dflt) { return f.has(flag) ? whole(f.at(flag)) : dflt; };
  const long long tp = num("--tensor-model-parallel-size", 1), pp = num("--pipeline-model-parallel-size", 1),
                  cp = num("--context-parallel-size", 1), ep = num("--expert-model-parallel-size", 1);
  const long long layers = num("--num-layers", -1), micro = num("--micro-batch-size", 1),
                  global = num("--global-batch-size", -1);
  const TorchrunLine launch = check_torchrun(commented_command(text, "torchrun"), out);
  out.require(launch.script == "pretrain_gpt.py", "megatron: the launch line does not run pretrain_gpt.py");
  const long long world = launch.world;
  if (world <= 0 || tp <= 0 || pp <= 0 || cp <= 0 || ep <= 0) return out.list;
  // arguments.py 430: world size divisible by tp x pp x cp; 446: data_parallel_size = world / (tp pp cp).
  out.require(world % (tp * pp * cp) == 0, "megatron: world size not divisible by tp x pp x cp (arguments.py 430)");
  const long long dp = world / (tp * pp * cp);
  // core/num_microbatches_calculator.py 381: global batch divisible by micro batch x data-parallel size.
  out.require(global > 0 && global % (micro * dp) == 0,
              "megatron: --global-batch-size not divisible by --micro-batch-size x dp (num_microbatches_calculator.py 381)");
  // parallel_state.py 881: world divisible by expert-tensor x expert x pipeline sizes (etp defaults to tp,
  // arguments.py 569-570); arguments.py 1602: experts divisible by ep.
  out.require(world % (tp * ep * pp) == 0, "megatron: world size not divisible by etp x ep x pp (parallel_state.py 881)");
  if (ep > 1) out.require(num("--num-experts", -1) > 0 && num("--num-experts", -1) % ep == 0, "megatron: --num-experts not a multiple of ep (arguments.py 1602)");
  // transformer_config.py 1323 and 1339: heads a multiple of tp; query groups a multiple or divisor of tp.
  out.require(num("--num-attention-heads", -1) > 0 && num("--num-attention-heads", -1) % tp == 0,
              "megatron: --num-attention-heads not a multiple of tp (transformer_config.py 1323)");
  const long long groups = num("--num-query-groups", num("--num-attention-heads", 1));
  out.require(groups > 0 && (groups % tp == 0 || tp % groups == 0),
              "megatron: --num-query-groups neither a multiple nor a divisor of tp (transformer_config.py 1339)");
  out.require(f.has("--group-query-attention") == f.has("--num-query-groups"),
              "megatron: --num-query-groups is read only with --group-query-attention (arguments.py 2299)");
  // Pipeline split: arguments.py 895-963, transformer_block.py get_num_layers_to_build, layout validate_layer_layout.
  const bool layout = f.has("--pipeline-model-parallel-layout"), vstages = f.has("--num-virtual-stages-per-pipeline-rank"),
             first = f.has("--decoder-first-pipeline-num-layers"), last = f.has("--decoder-last-pipeline-num-layers");
  out.require(!(layout && vstages), "megatron: layout and --num-virtual-stages-per-pipeline-rank together (arguments.py 895)");
  long long vpp = vstages ? num("--num-virtual-stages-per-pipeline-rank", 1) : 1;
  if (layout) {
    const std::vector<std::string> st = layout_stages(f.at("--pipeline-model-parallel-layout"));
    std::string all;
    for (const auto& s : st) all += s;
    out.require(!st.empty() && st.size() % static_cast<size_t>(pp) == 0, "megatron: layout stages not a multiple of pp (arguments.py 911)");
    out.require(!all.empty() && all.front() == 'E' && all.back() == 'L' && std::count(all.begin(), all.end(), 'E') == 1 &&
                    std::count(all.begin(), all.end(), 'L') == 1,
                "megatron: layout must start with E and end with L, once each (validate_layer_layout)");
    out.require(std::count(all.begin(), all.end(), 't') == layers, "megatron: layout's t count is not --num-layers (validate_layer_layout)");
    if (!st.empty()) vpp = static_cast<long long>(st.size()) / pp;
  } else if (first || last) {
    const long long a = first ? num("--decoder-first-pipeline-num-layers", -1) : 0, z = last ? num("--decoder-last-pipeline-num-layers", -1) : 0;
    const long long middle = pp - (first ? 1 : 0) - (last ? 1 : 0), rest = layers - a - z;
    out.require(a >= 0 && z >= 0 && (middle > 0 ? rest > 0 && rest % middle == 0 : rest == 0),
                "megatron: layers left for the middle stages do not divide evenly (transformer_block.py 125)");
  } else {
    out.require(layers > 0 && layers % (pp * vpp) == 0,
                "megatron: --num-layers not divisible by pp x virtual stages (transformer_block.py get_num_layers_to_build)");
  }
  // schedules.py 1133-1153: interleaving groups micro-batches by pp (model_parallel_config.py 567), so the
  // micro-batch count must be a multiple of pp.
  if (vpp > 1 && global > 0) {
    const long long m = global / (micro * dp);
    out.require(m >= pp && m % pp == 0, "megatron: interleaved schedule needs micro-batches a multiple of pp (schedules.py 1133-1153)");
  }
  // arguments.py 990-995, 1385-1386, 1410, 1803.
  if (f.has("--overlap-param-gather"))
    out.require((f.has("--use-distributed-optimizer") || f.has("--use-megatron-fsdp")) && f.has("--overlap-grad-reduce"),
                "megatron: --overlap-param-gather needs the distributed optimizer and --overlap-grad-reduce (arguments.py 990)");
  if (f.has("--recompute-granularity") && f.at("--recompute-granularity") == "selective")
    out.require(!f.has("--recompute-method"), "megatron: selective recompute takes no --recompute-method (arguments.py 1385)");
  if (f.has("--tp-comm-overlap")) out.require(f.has("--sequence-parallel"), "megatron: --tp-comm-overlap needs --sequence-parallel (arguments.py 1410)");
  if (f.has("--optimizer-cpu-offload"))
    out.require(f.has("--use-precision-aware-optimizer"), "megatron: --optimizer-cpu-offload needs --use-precision-aware-optimizer (arguments.py 1803)");
  // CUDA_DEVICE_MAX_CONNECTIONS as the sourced file leaves it: arguments.py 1143 (Megatron-FSDP: not "1") and
  // 1413-1439 (tp or cp > 1 without FSDP on compute capability < 10: exactly "1").
  const bool fsdp = f.has("--use-megatron-fsdp");
  const bool exports_one = text.find("\nexport CUDA_DEVICE_MAX_CONNECTIONS=1\n") != std::string::npos;
  const bool unsets = text.find("\nunset CUDA_DEVICE_MAX_CONNECTIONS\n") != std::string::npos;
  if (fsdp) {
    out.require(f.has("--ckpt-format") && f.at("--ckpt-format") == "fsdp_dtensor", "megatron: Megatron-FSDP needs --ckpt-format fsdp_dtensor (arguments.py 1146)");
    out.require(!exports_one, "megatron: Megatron-FSDP asserts CUDA_DEVICE_MAX_CONNECTIONS unset or > 1 (arguments.py 1143)");
  } else if (f.has("--overlap-moe-expert-parallel-comm")) {
    // arguments.py 1426: only a warning with tp or cp > 1; the overlap itself needs more than one connection
    // (megatron/core/transformer/moe/README.md, "Requirements for EP A2A Overlap").
    out.require(!exports_one, "megatron: the MoE all-to-all overlap needs CUDA_DEVICE_MAX_CONNECTIONS > 1 (moe/README.md)");
  } else if (tp > 1 || cp > 1) {
    out.require(exports_one && !unsets, "megatron: tp or cp > 1 asserts CUDA_DEVICE_MAX_CONNECTIONS=1 before Blackwell (arguments.py 1437)");
  }
  // transformer_config.py __post_init__ (overlap_moe_expert_parallel_comm): expert parallelism, a virtual
  // pipeline when pp > 1, no full recompute, bf16 or fp16, the alltoall or flex dispatcher.
  if (f.has("--overlap-moe-expert-parallel-comm")) {
    out.require(num("--expert-model-parallel-size", 1) > 1, "megatron: the MoE all-to-all overlap needs --expert-model-parallel-size > 1");
    out.require(num("--pipeline-model-parallel-size", 1) == 1 || f.has("--num-virtual-stages-per-pipeline-rank") ||
                    f.has("--pipeline-model-parallel-layout"),
                "megatron: the MoE all-to-all overlap needs a virtual pipeline when pp > 1");
    out.require(!(f.has("--recompute-granularity") && f.at("--recompute-granularity") == "full"),
                "megatron: the MoE all-to-all overlap refuses full recompute");
    out.require(f.has("--bf16") || f.has("--fp16"), "megatron: the MoE all-to-all overlap needs --bf16 or --fp16");
    out.require(f.has("--moe-token-dispatcher-type") && f.at("--moe-token-dispatcher-type") != "allgather",
                "megatron: the MoE all-to-all overlap needs the alltoall or flex dispatcher");
  }
  return out.list;
}

}  // namespace exportcheck
