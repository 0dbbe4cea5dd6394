#pragma once
// torchtitan: pytorch/torchtitan v0.2.2 (73a0e6979dd1). Sections, keys and types of the job config
// (torchtitan/config/job_config.py dataclasses; line numbers at v0.2.2), and the rules the trainer asserts:
// the parallel degrees multiply to the world size (distributed/parallel_dims.py), the batch divides
// (train.py), the pipeline split fits the schedule (distributed/pipeline_parallel.py). The world size comes
// from the header's launch line (NGPU=N ./run_train.sh, or torchrun).
#include "config_parsers.hpp"
#include "export_check_common.hpp"

namespace exportcheck {

namespace torchtitan_detail {

using nlohmann::json;

// Field -> 'i' int, 'b' bool, 's' str, 'S' list[str], 'P' list[list[str]], with Literal choices if any.
struct Field {
  char type;
  std::set<std::string> choices;
};
using Section = std::map<std::string, Field>;

inline const std::map<std::string, Section>& schema() {
  static const std::map<std::string, Section> s{
      // class Model (100-126)
      {"model", {{"name", {'s', {}}}, {"flavor", {'s', {}}}, {"hf_assets_path", {'s', {}}}, {"converters", {'S', {}}}}},
      // class Optimizer (134-160); components/optimizer.py builds {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
      {"optimizer", {{"name", {'s', {"Adam", "AdamW"}}}}},
      // class Training (243-307)
      {"training",
       {{"local_batch_size", {'i', {}}}, {"global_batch_size", {'i', {}}}, {"seq_len", {'i', {}}}, {"steps", {'i', {}}},
        {"dataset", {'s', {}}}, {"enable_cpu_offload", {'b', {}}},
        {"mixed_precision_param", {'s', {"bfloat16", "float32"}}},  // 282 Literal
        {"mixed_precision_reduce", {'s', {"float32"}}}}},          // 290 Literal
      // class Parallelism (312-474)
      {"parallelism",
       {{"data_parallel_replicate_degree", {'i', {}}}, {"data_parallel_shard_degree", {'i', {}}},
        {"fsdp_reshard_after_forward", {'s', {"default", "always", "never"}}},  // 336 Literal
        {"tensor_parallel_degree", {'i', {}}}, {"enable_async_tensor_parallel", {'b', {}}},
        {"pipeline_parallel_degree", {'i', {}}}, {"module_fqns_per_model_part", {'P', {}}},
        // 396: a name get_schedule_class knows (torch/distributed/pipelining/schedules.py)
        {"pipeline_parallel_schedule",
         {'s', {"1F1B", "GPipe", "Interleaved1F1B", "LoopedBFS", "InterleavedZeroBubble", "ZBVZeroBubble", "DualPipeV"}}},
        {"pipeline_parallel_microbatch_size", {'i', {}}}, {"context_parallel_degree", {'i', {}}},
        {"context_parallel_rotate_method", {'s', {"allgather", "alltoall"}}},  // 446 Literal
        {"expert_parallel_degree", {'i', {}}}, {"expert_tensor_parallel_degree", {'i', {}}}}},
      // class ActivationCheckpoint (651-713)
      {"activation_checkpoint", {{"mode", {'s', {"selective", "full", "memory_budget", "none"}}}}},  // 652 Literal
      // class Compile (721-727)
      {"compile", {{"enable", {'b', {}}}, {"components", {'S', {}}}, {"backend", {'s', {}}}}},
  };
  return s;
}

inline bool typed(const json& v, char t) {
  auto strings = [](const json& a) {
    if (!a.is_array()) return false;
    for (const auto& x : a)
      if (!x.is_string()) return false;
    return true;
  };
  switch (t) {
    case 'i': return v.is_number_integer();
    case 'b': return v.is_boolean();
    case 's': return v.is_string();
    case 'S': return strings(v);
    default:
      if (!v.is_array()) return false;
      for (const auto& x : v)
        if (!strings(x)) return false;
      return true;
  }
}

}  // namespace torchtitan_detail

inline std::vector<std::string> check_torchtitan(const std::string& text) {
  using namespace torchtitan_detail;
  Problems out;
  json t;
  if (auto bad = parse_or_problem(t, cfgtest::parse_toml, text, "torchtitan: the TOML does not parse"); !bad.empty())
    return bad;
  for (const auto& [sec, body] : t.items()) {
    const auto s = schema().find(sec);
    if (s == schema().end() || !body.is_object()) {
      out.require(false, "torchtitan: unknown section [" + sec + "] (job_config.py JobConfig)");
      continue;
    }
    for (const auto& [k, v] : body.items()) {
      const auto f = s->second.find(k);
      if (f == s->second.end()) {
        out.require(false, "torchtitan: unknown key " + sec + "." + k);
        continue;
      }
      out.require(typed(v, f->second.type), "torchtitan: " + sec + "." + k + " has the wrong type");
      if (v.is_string()) out.require(f->second.choices.empty() || f->second.choices.count(v.get<std::string>()),
                                     "torchtitan: " + sec + "." + k + " = " + v.get<std::string>() + " is not a choice");
    }
  }
  // World size from the launch line in the header.
  long long world = -1;
  const std::vector<std::string> ngpu = commented_command(text, "Run:");
  for (const auto& w : ngpu)
    if (w.rfind("NGPU=", 0) == 0) world = whole(w.substr(5));
  if (world < 0) {
    const TorchrunLine l = check_torchrun(commented_command(text, "torchrun"), out);
    out.require(l.switches.count("-m") && l.script == "torchtitan.train", "torchtitan: the launch line does not run -m torchtitan.train");
    world = l.world;
  }
  out.require(world > 0, "torchtitan: no launch line with the number of GPUs");
  const json par = get_or(t, "parallelism", json::object()), tr = get_or(t, "training", json::object());
  // Defaults: job_config.py 313 (1), 324 (-1: the rest of the world), 351, 360, 428, 454, 464.
  const long long rep = get_or(par, "data_parallel_replicate_degree", 1LL), shard = get_or(par, "data_parallel_shard_degree", -1LL),
                  tp = get_or(par, "tensor_parallel_degree", 1LL), pp = get_or(par, "pipeline_parallel_degree", 1LL),
                  cp = get_or(par, "context_parallel_degree", 1LL), ep = get_or(par, "expert_parallel_degree", 1LL),
                  etp = get_or(par, "expert_tensor_parallel_degree", 1LL);
  if (world <= 0 || rep < 1 || tp < 1 || pp < 1 || cp < 1 || ep < 1 || etp < 1 || (shard < 1 && shard != -1))
    return out.list;
  // parallel_dims.py 47-56: dp_shard -1 takes the rest; dp_replicate x dp_shard x cp x tp x pp == WORLD_SIZE.
  const long long dp_shard = shard == -1 ? world / (rep * cp * tp * pp) : shard;
  out.require(dp_shard >= 1 && rep * dp_shard * cp * tp * pp == world,
              "torchtitan: dp_replicate x dp_shard x cp x tp x pp != WORLD_SIZE (parallel_dims.py 53)");
  // parallel_dims.py 58-59 and 138: etp is 1 or tp; ep x etp divides dp_shard x cp x tp (the efsdp mesh).
  if (ep > 1) {
    out.require(etp == tp || etp == 1, "torchtitan: expert_tensor_parallel_degree must be 1 or tp (parallel_dims.py 59)");
    out.require((dp_shard * cp * tp) % (etp * ep) == 0, "torchtitan: ep x etp does not divide dp_shard x cp x tp (parallel_dims.py 138)");
  }
  // train.py 196-215: global batch a multiple of local batch x (dp_replicate x dp_shard).
  const long long local = get_or(tr, "local_batch_size", 8LL), global = get_or(tr, "global_batch_size", -1LL);
  const long long batch_degree = rep * dp_shard;
  out.require(local > 0 && (global < 0 || global % (local * batch_degree) == 0),
              "torchtitan: global_batch_size not a multiple of local_batch_size x dp degree (train.py 202)");
  if (pp > 1) {
    // pipeline_parallel.py 186-194: local batch divisible by the micro-batch size.
    const long long micro = get_or(par, "pipeline_parallel_microbatch_size", 1LL);
    out.require(micro > 0 && local % micro == 0, "torchtitan: local_batch_size not divisible by the microbatch size (pipeline_parallel.py 189)");
    const std::string sched = get_or(par, "pipeline_parallel_schedule", "1F1B");
    const bool single = sched == "1F1B" || sched == "GPipe", v_shape = sched == "ZBVZeroBubble" || sched == "DualPipeV";
    if (par.contains("module_fqns_per_model_part") && par["module_fqns_per_model_part"].is_array()) {
      const json& parts = par["module_fqns_per_model_part"];
      const long long n = static_cast<long long>(parts.size());
      // pipeline_parallel.py 455-464: stages evenly over pp, 2 per rank for V schedules; a single-stage
      // schedule builds stages[0] only (205), so it takes one per rank.
      out.require(n % pp == 0, "torchtitan: model parts not divisible by pp (pipeline_parallel.py 456)");
      out.require(!single || n == pp, "torchtitan: a single-stage schedule takes one model part per rank (pipeline_parallel.py 205)");
      out.require(!v_shape || n == 2 * pp, "torchtitan: V schedules take 2 model parts per rank (pipeline_parallel.py 463)");
      out.require(single || n >= 2 * pp, "torchtitan: multi-stage schedules need at least 2 parts per rank (pipeline_parallel.py 104)");
      // Every module once, in model order: tok_embeddings, layers.0.., norm, output (generate_llm_fqn_per_model_part).
      std::vector<std::string> flat;
      for (const auto& p : parts)
        for (const auto& m : p) flat.push_back(m.get<std::string>());
      bool ordered = flat.size() >= 3 && flat.front() == "tok_embeddings" && flat[flat.size() - 2] == "norm" && flat.back() == "output";
      for (size_t k = 1; ordered && k + 2 < flat.size(); ++k) ordered = flat[k] == "layers." + std::to_string(k - 1);
      out.require(ordered, "torchtitan: module_fqns_per_model_part does not list the modules once in model order");
      for (const auto& p : parts) out.require(!p.empty(), "torchtitan: an empty model part");
    }
  }
  // distributed/tensor_parallel.py 20-22: async TP needs compile.enable and "model" in compile.components.
  if (get_or(par, "enable_async_tensor_parallel", false)) {
    const json comp = get_or(t, "compile", json::object());
    bool model = false;
    for (const auto& x : get_or(comp, "components", json::array({"model", "loss"}))) model = model || x == "model";
    out.require(get_or(comp, "enable", false) && model, "torchtitan: async TP needs [compile] enable with \"model\" (tensor_parallel.py 20)");
  }
  return out.list;
}

}  // namespace exportcheck
