// The plan format (docs/plan-format.md): parse with every default filled in, write back normalized.
#include "paraplan/plan_io.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "enums.hpp"
#include "json_reader.hpp"
#include "model_rules.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/limits.hpp"
#include "paraplan/params.hpp"
#include "paraplan/presets.hpp"

namespace paraplan::planner {

using detail::ObjectReader;
using detail::show;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& path, const std::string& field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PlanError(field, "\"" + path + "\"", "file cannot be read (does it exist?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using F = detail::ModelField;

int64_t dim(ObjectReader& r, const char* key, F f, int64_t fallback) {
  return detail::read_dimension(r.raw(key), f, r.field(key), fallback, r.errors());
}

std::optional<MoeSpec> read_moe(ObjectReader& r) {
  const json* v = r.raw("moe");
  if (!v || v->is_null()) return std::nullopt;
  ObjectReader m(*v, r.field("moe"), r.errors(),
                 {"experts", "top_k", "ffn_hidden", "shared_experts", "dense_layers"});
  MoeSpec e;
  e.experts = static_cast<int>(dim(m, "experts", F::moe_experts, e.experts));
  e.top_k = static_cast<int>(dim(m, "top_k", F::moe_top_k, e.top_k));
  e.ffn_hidden = dim(m, "ffn_hidden", F::moe_ffn_hidden, e.ffn_hidden);
  e.shared_experts = static_cast<int>(dim(m, "shared_experts", F::moe_shared_experts, e.shared_experts));
  e.dense_layers = static_cast<int>(dim(m, "dense_layers", F::moe_dense_layers, e.dense_layers));
  for (const char* k : {"experts", "top_k", "ffn_hidden"})
    if (!m.has(k)) r.errors().add(m.field(k), "", "is required for a MoE model");
  return e;
}

std::optional<MlaSpec> read_mla(ObjectReader& r) {
  const json* v = r.raw("mla");
  if (!v || v->is_null()) return std::nullopt;
  ObjectReader m(*v, r.field("mla"), r.errors(),
                 {"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"});
  MlaSpec a;
  a.q_lora_rank = dim(m, "q_lora_rank", F::mla_q_lora_rank, a.q_lora_rank);
  a.kv_lora_rank = dim(m, "kv_lora_rank", F::mla_kv_lora_rank, a.kv_lora_rank);
  a.qk_nope_head_dim = dim(m, "qk_nope_head_dim", F::mla_qk_nope_head_dim, a.qk_nope_head_dim);
  a.qk_rope_head_dim = dim(m, "qk_rope_head_dim", F::mla_qk_rope_head_dim, a.qk_rope_head_dim);
  a.v_head_dim = dim(m, "v_head_dim", F::mla_v_head_dim, a.v_head_dim);
  for (const char* k : {"kv_lora_rank", "qk_nope_head_dim", "v_head_dim"})
    if (!m.has(k)) r.errors().add(m.field(k), "", "is required for multi-head latent attention");
  return a;
}

// An inline model's field names, as plan files and model presets spell them.
std::string inline_key(F f) {
  switch (f) {
    case F::layers: return "layers";
    case F::hidden: return "hidden";
    case F::heads: return "heads";
    case F::kv_heads: return "kv_heads";
    case F::head_dim: return "head_dim";
    case F::ffn_hidden: return "ffn_hidden";
    case F::vocab: return "vocab";
    case F::max_seq_len: return "max_seq_len";
    case F::sliding_window: return "sliding_window";
    case F::moe_experts: return "moe.experts";
    case F::moe_top_k: return "moe.top_k";
    case F::moe_ffn_hidden: return "moe.ffn_hidden";
    case F::moe_shared_experts: return "moe.shared_experts";
    case F::moe_dense_layers: return "moe.dense_layers";
    case F::mla_q_lora_rank: return "mla.q_lora_rank";
    case F::mla_kv_lora_rank: return "mla.kv_lora_rank";
    case F::mla_qk_nope_head_dim: return "mla.qk_nope_head_dim";
    case F::mla_qk_rope_head_dim: return "mla.qk_rope_head_dim";
    case F::mla_v_head_dim: return "mla.v_head_dim";
  }
  return "?";
}

// `paraplan models --json` prints each preset's parameter counts beside its dimensions; read back, they
// must still be the counts of those dimensions (a count left behind after editing one would mislead).
void check_printed_count(ObjectReader& r, const char* key, int64_t actual) {
  const json* v = r.raw(key);
  if (!v || v->is_null()) return;
  if (!v->is_number_integer() || v->get<int64_t>() != actual)
    r.errors().add(r.field(key), show(*v),
                   "must equal the parameter count of the model's dimensions (" + std::to_string(actual) +
                       "), as `paraplan models --json` prints it; remove it after changing a dimension");
}

}  // namespace

ModelSpec model_from_json(const json& j, const std::string& field, const std::string& base_dir, Violations& errors) {
  if (j.is_string()) return model_preset(j.get<std::string>(), field);
  if (j.is_object() && j.contains("hf_config")) {
    ObjectReader r(j, field, errors, {"hf_config"});
    const std::string path = r.string("hf_config", "");
    fs::path p(path);
    if (p.is_relative()) p = fs::path(base_dir) / p;
    const std::string text = read_file(p.string(), field + ".hf_config");
    const json cfg = parse_json_text(text, p.string());
    ModelSpec m = model_from_hf_config(cfg, p.string(), errors);
    m.hf_config = fs::absolute(p).lexically_normal().string();  // stays valid wherever the plan is written
    return m;
  }
  // "id", "params" and "active_params" are what `paraplan models --json` adds to a preset's fields.
  ObjectReader r(j, field, errors,
                 {"name", "layers", "hidden", "heads", "kv_heads", "head_dim", "ffn_hidden", "vocab",
                  "activation", "norm", "tied_embeddings", "bias", "position_embedding", "max_seq_len",
                  "sliding_window", "qk_norm", "moe", "mla", "id", "params", "active_params", "source", "description"});
  const size_t errors_before = errors.list().size();
  ModelSpec m;  // defaults: the struct's initialisers; kv_heads and head_dim derive from heads
  m.name = r.string("name", "custom");
  r.string("id", "");
  r.string("source", "");
  r.string("description", "");
  m.layers = static_cast<int>(dim(r, "layers", F::layers, m.layers));
  m.hidden = dim(r, "hidden", F::hidden, m.hidden);
  m.heads = static_cast<int>(dim(r, "heads", F::heads, m.heads));
  m.kv_heads = static_cast<int>(dim(r, "kv_heads", F::kv_heads, m.heads));
  m.head_dim = dim(r, "head_dim", F::head_dim, m.heads > 0 ? m.hidden / m.heads : 0);
  m.ffn_hidden = dim(r, "ffn_hidden", F::ffn_hidden, m.ffn_hidden);
  m.vocab = dim(r, "vocab", F::vocab, m.vocab);
  m.activation = r.enumeration("activation", m.activation, detail::kActivations);
  m.norm = r.enumeration("norm", m.norm, detail::kNorms);
  m.tied_embeddings = r.boolean("tied_embeddings", m.tied_embeddings);
  m.bias = r.enumeration("bias", m.bias, detail::kBiases);
  m.position_embedding = r.enumeration("position_embedding", m.position_embedding, detail::kPositions);
  m.max_seq_len = dim(r, "max_seq_len", F::max_seq_len, m.max_seq_len);
  m.sliding_window = dim(r, "sliding_window", F::sliding_window, m.sliding_window);
  m.qk_norm = r.boolean("qk_norm", m.qk_norm);
  m.moe = read_moe(r);
  m.mla = read_mla(r);
  if (j.is_object())
    for (const char* k : {"layers", "hidden", "heads", "ffn_hidden", "vocab"})
      if (!r.has(k)) errors.add(r.field(k), "", "is required for an inline model");
  if (m.heads > 0 && m.hidden % m.heads != 0 && !r.has("head_dim"))
    errors.add(r.field("head_dim"), "", "must be given when hidden (" + std::to_string(m.hidden) +
                                            ") is not divisible by heads (" + std::to_string(m.heads) + ")");
  detail::check_model(m, {field, field + ".", inline_key}, errors);
  if (errors.list().size() == errors_before) {  // the counts need a whole model within the limits
    const ParamCount c = count_params(m);
    check_printed_count(r, "params", c.total);
    check_printed_count(r, "active_params", c.active);
  }
  return m;
}

GpuSpec gpu_from_json(const json& j, const std::string& field, Violations& errors) {
  if (j.is_string()) return hardware_preset(j.get<std::string>(), field);
  ObjectReader r(j, field, errors,
                 {"id", "name", "is_cpu", "memory_bytes", "peak_flops", "hbm_bytes_per_s", "sm_count", "intra_node_bytes_per_s",
                  "inter_node_bytes_per_s", "host_link_bytes_per_s", "host_memory_bytes_per_s", "nvlink_tray_gpus",
                  "nvlink_domain_trays", "efficiency", "sources",
                  "source", "description"});
  GpuSpec g;
  g.id = r.string("id", "custom");
  g.name = r.string("name", g.id);
  g.custom = true;
  g.is_cpu = r.boolean("is_cpu", g.is_cpu);
  r.string("source", "");  // `paraplan hardware --json` joins a preset's "sources" into one string
  r.string("description", "");
  g.memory_bytes = r.number("memory_bytes", g.memory_bytes, 1, 1e15);
  if (const json* pf = r.raw("peak_flops")) {
    ObjectReader p(*pf, r.field("peak_flops"), errors, {"fp32", "tf32", "bf16", "fp16", "fp8"});
    g.peak_fp32_flops = p.number("fp32", g.peak_fp32_flops, 0, 1e18);
    g.peak_tf32_flops = p.number("tf32", g.peak_tf32_flops, 0, 1e18);
    g.peak_bf16_flops = p.number("bf16", g.peak_bf16_flops, 0, 1e18);
    g.peak_fp16_flops = p.number("fp16", g.peak_fp16_flops, 0, 1e18);
    g.peak_fp8_flops = p.number("fp8", g.peak_fp8_flops, 0, 1e18);
  }
  g.hbm_bytes_per_s = r.number("hbm_bytes_per_s", g.hbm_bytes_per_s, 0, 1e15);
  g.sm_count = static_cast<int>(r.integer("sm_count", g.sm_count, 0, 1 << 16));
  g.intra_node_bytes_per_s = r.number("intra_node_bytes_per_s", g.intra_node_bytes_per_s, 0, 1e15);
  g.inter_node_bytes_per_s = r.number("inter_node_bytes_per_s", g.inter_node_bytes_per_s, 0, 1e15);
  g.host_link_bytes_per_s = r.number("host_link_bytes_per_s", g.host_link_bytes_per_s, 0, 1e15);
  g.host_memory_bytes_per_s = r.number("host_memory_bytes_per_s", g.host_memory_bytes_per_s, 0, 1e15);
  g.nvlink_tray_gpus = static_cast<int>(r.integer("nvlink_tray_gpus", g.nvlink_tray_gpus, 0, 1 << 10));
  g.nvlink_domain_trays = static_cast<int>(r.integer("nvlink_domain_trays", g.nvlink_domain_trays, 0, 1 << 10));
  if ((g.nvlink_tray_gpus > 0) != (g.nvlink_domain_trays > 0)) {  // one alone would be ignored
    const char* given = g.nvlink_tray_gpus > 0 ? "nvlink_tray_gpus" : "nvlink_domain_trays";
    errors.add(r.field(given), std::to_string(g.nvlink_tray_gpus > 0 ? g.nvlink_tray_gpus : g.nvlink_domain_trays),
               "describes a rack-scale NVLink domain only with both nvlink_tray_gpus and nvlink_domain_trays");
  }
  if (const json* ef = r.raw("efficiency"); ef && !ef->is_null()) {
    std::vector<std::string> names;
    for (const EfficiencyField& f : efficiency_fields()) names.push_back(f.name);
    ObjectReader e(*ef, r.field("efficiency"), errors, names);
    for (const EfficiencyField& f : efficiency_fields())
      g.efficiency.*(f.member) = e.number(f.name, g.efficiency.*(f.member), f.min, f.max);
  }
  for (const char* k : {"memory_bytes", "peak_flops", "hbm_bytes_per_s"})
    if (!r.has(k)) errors.add(r.field(k), "", "is required for a custom GPU");
  return g;
}

json parse_json_text(const std::string& text, const std::string& origin) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into line:column so the user can find the mistake.
    size_t line = 1, col = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
    }
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw PlanError(origin, "", "malformed JSON at line " + std::to_string(line) + ", column " +
                                    std::to_string(col) + ": " + what);
  } catch (const json::out_of_range& e) {
    // A number past a double's range (1e400): nlohmann reports it as out_of_range.406, without a position.
    std::string what = e.what();
    const auto pos = what.find("number overflow");
    throw PlanError(origin, "", "malformed JSON: " + (pos == std::string::npos ? what : what.substr(pos)) +
                                    " (beyond the range of a double)");
  }
}

void apply_override(json& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw PlanError("--set", "\"" + assignment + "\"", "must look like section.field=value, e.g. parallel.tp=4");
  const std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::exception&) {  // parse_error, or out_of_range for 1e400
    value = text;  // a bare word such as bf16 or h100-sxm-80gb
  }
  json* node = &doc;
  std::string walked;
  size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    walked += (walked.empty() ? "" : ".") + key;
    if (key.empty()) throw PlanError("--set", "\"" + assignment + "\"", "has an empty field name");
    if (dot == std::string::npos) {
      (*node)[key] = value;
      return;
    }
    json& next = (*node)[key];
    if (next.is_null()) next = json::object();
    if (!next.is_object())
      throw PlanError(walked, show(next), "is not an object, so --set " + path + " cannot reach into it");
    node = &next;
    start = dot + 1;
  }
}

// Every default is the struct's initialiser: each section is read into a default-constructed struct and
// a missing field keeps its value. The only defaults written here are those that depend on another
// field or on a preset, which no initialiser can express: cluster.gpu (the h100-sxm-80gb preset),
// cluster.calibration ("none" on CPU workers, else "published"), cluster.gpus_per_node (all the CPU
// workers of a plan on one machine; default_gpus_per_node), parallel.dp (gpus / (tp pp cp)), cluster.gpus
// (dp tp pp cp), parallel.virtual_stages (2 under zbv), training.global_batch (dp x micro_batch), training.lora.alpha
// (2 x rank), model.kv_heads (heads) and model.head_dim (hidden / heads).
Plan plan_from_json(const json& doc, const std::string& base_dir) {
  Violations errors;
  ObjectReader top(doc, "", errors, {"model", "training", "parallel", "cluster", "description"});
  Plan plan;
  const json empty = json::object();
  auto section = [&](const char* k) -> const json& {
    const json* v = top.raw(k);
    return v ? *v : empty;
  };
  if (!top.has("model")) {
    errors.add("model", "", "is required: a preset id (see `paraplan models`), an inline object or {\"hf_config\": path}");
  } else {
    plan.model = model_from_json(section("model"), "model", base_dir, errors);
    if (section("model").is_string()) plan.model.preset = section("model").get<std::string>();
  }

  // cluster first: parallel defaults depend on the GPU count.
  ObjectReader cl(section("cluster"), "cluster", errors,
                  {"gpu", "gpus", "gpus_per_node", "cuda_context_bytes", "nccl_bytes_per_communicator",
                   "allocator_headroom", "mesh_order", "price_per_gpu_hour", "calibration"});
  const json* gpu = cl.raw("gpu");
  plan.cluster.gpu = gpu ? gpu_from_json(*gpu, "cluster.gpu", errors) : hardware_preset("h100-sxm-80gb");
  if (cl.has("cuda_context_bytes")) plan.cluster.cuda_context_bytes = cl.number("cuda_context_bytes", 0, 0, 1e12);
  if (cl.has("nccl_bytes_per_communicator"))
    plan.cluster.nccl_bytes_per_communicator = cl.number("nccl_bytes_per_communicator", 0, 0, 1e12);
  if (cl.has("allocator_headroom")) plan.cluster.allocator_headroom = cl.number("allocator_headroom", 0, 0, 0.9);
  plan.cluster.price_per_gpu_hour = cl.number("price_per_gpu_hour", plan.cluster.price_per_gpu_hour, 0, 1e6);
  plan.cluster.calibration = load_calibration(cl.string("calibration", plan.cluster.gpu.is_cpu ? "none" : "published"),
                                              "cluster.calibration", base_dir);
  if (const json* mo = cl.raw("mesh_order"); mo && !mo->is_null()) {
    // "ep" may be written where expert groups are folded (Megatron-Core's order "tp-cp-ep-dp-pp"): right
    // after the inner of cp and dp, whose ranks the expert groups take (comm.cpp); it adds no placement.
    const std::vector<std::pair<std::string, Axis>> axes{
        {"tp", Axis::tp}, {"cp", Axis::cp}, {"dp", Axis::dp}, {"pp", Axis::pp}};
    std::vector<Axis> order;
    bool ok = mo->is_array() && (mo->size() == 4 || mo->size() == 5);
    bool ep_ok = true;
    int ep_at = -1;
    if (ok)
      for (const json& x : *mo) {
        if (x.is_string() && x.get<std::string>() == "ep" && ep_at < 0) {
          ep_at = static_cast<int>(order.size());
          continue;
        }
        bool found = false;
        for (const auto& [name, axis] : axes)
          if (x.is_string() && x.get<std::string>() == name &&
              std::find(order.begin(), order.end(), axis) == order.end()) {
            order.push_back(axis);
            found = true;
          }
        ok = ok && found;
      }
    ok = ok && order.size() == 4;
    if (ok && ep_at >= 0) {
      const auto pos = [&](Axis a) { return static_cast<int>(std::find(order.begin(), order.end(), a) - order.begin()); };
      ep_ok = ep_at == std::min(pos(Axis::cp), pos(Axis::dp)) + 1;
    }
    if (ok && ep_ok)
      plan.cluster.mesh_order = order;
    else if (ok)
      errors.add("cluster.mesh_order", show(*mo),
                 "\"ep\" must follow the inner of cp and dp: expert-parallel groups are folded from the cp x dp "
                 "ranks, inner first (e.g. [\"tp\",\"cp\",\"ep\",\"dp\",\"pp\"])");
    else
      errors.add("cluster.mesh_order", show(*mo),
                 "must list tp, cp, dp and pp once each, innermost (consecutive ranks) first, e.g. "
                 "[\"tp\",\"cp\",\"dp\",\"pp\"]; \"ep\" may follow the inner of cp and dp, where expert "
                 "groups are folded from the cp x dp ranks");
  }

  ObjectReader pr(section("parallel"), "parallel", errors,
                  {"dp", "tp", "pp", "cp", "ep", "zero", "sequence_parallel", "pp_schedule", "virtual_stages",
                   "layer_split", "tp_comm_overlap", "ep_comm_overlap", "dp_overlap", "pp_comm_overlap"});
  auto& par = plan.parallel;
  par.tp = static_cast<int>(pr.integer("tp", par.tp, 1, limits::kDegree));
  par.pp = static_cast<int>(pr.integer("pp", par.pp, 1, limits::kDegree));
  par.cp = static_cast<int>(pr.integer("cp", par.cp, 1, limits::kDegree));
  par.ep = static_cast<int>(pr.integer("ep", par.ep, 1, limits::kDegree));
  const int64_t mp = static_cast<int64_t>(par.tp) * par.pp * par.cp;  // < 2^60
  // dp defaults to what the cluster leaves over; gpus defaults to the product of the degrees.
  const bool has_gpus = cl.has("gpus");
  const int64_t gpus_given = cl.integer("gpus", 1, 1, limits::kGpus);
  const int64_t dp_default = has_gpus && gpus_given % mp == 0 ? gpus_given / mp : par.dp;
  par.dp = static_cast<int>(pr.integer("dp", dp_default, 1, limits::kGpus));
  if (has_gpus) {
    plan.cluster.gpus = static_cast<int>(gpus_given);
  } else if (static_cast<double>(par.dp) * static_cast<double>(mp) <= static_cast<double>(limits::kGpus)) {
    plan.cluster.gpus = static_cast<int>(par.dp * mp);
  } else {
    errors.add("cluster.gpus", "", "defaults to dp*tp*pp*cp = " + std::to_string(par.dp) + "*" + std::to_string(par.tp) +
                                       "*" + std::to_string(par.pp) + "*" + std::to_string(par.cp) + ", which must be <= " +
                                       std::to_string(limits::kGpus));
  }
  // CPU workers run on one machine unless told otherwise; GPU nodes hold 8 (HGX/DGX); a rack-scale
  // NVLink domain the part of it the job holds (hardware.hpp default_gpus_per_node).
  plan.cluster.gpus_per_node = static_cast<int>(
      cl.integer("gpus_per_node", default_gpus_per_node(plan.cluster.gpu, plan.cluster.gpus), 1, 1 << 16));
  par.zero = static_cast<int>(pr.integer("zero", par.zero, 0, 3));
  par.sequence_parallel = pr.boolean("sequence_parallel", par.sequence_parallel);
  par.tp_comm_overlap = pr.boolean("tp_comm_overlap", par.tp_comm_overlap);
  par.ep_comm_overlap = pr.boolean("ep_comm_overlap", par.ep_comm_overlap);
  par.dp_overlap = pr.boolean("dp_overlap", par.dp_overlap);
  par.pp_comm_overlap = pr.boolean("pp_comm_overlap", par.pp_comm_overlap);
  par.pp_schedule = pr.enumeration("pp_schedule", par.pp_schedule, detail::kSchedules);
  par.virtual_stages = static_cast<int>(
      pr.integer("virtual_stages", par.pp_schedule == PipelineSchedule::zbv ? 2 : par.virtual_stages, 1, 1 << 16));
  if (const json* ls = pr.raw("layer_split"); ls && !ls->is_null()) {
    if (!ls->is_array()) {
      errors.add("parallel.layer_split", show(*ls), "must be a list of layers per model chunk");
    } else {
      for (size_t i = 0; i < ls->size(); ++i) {
        const json& x = (*ls)[i];
        if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > (1 << 20))
          errors.add("parallel.layer_split[" + std::to_string(i) + "]", show(x), "must be an integer >= 1");
        else
          par.layer_split.push_back(x.get<int>());
      }
    }
  }

  ObjectReader tr(section("training"), "training", errors,
                  {"seq_len", "micro_batch", "global_batch", "precision", "grad_dtype", "optimizer", "recompute",
                   "flash_attention", "lora", "offload", "dropout", "framework", "cross_entropy"});
  auto& t = plan.training;
  t.seq_len = tr.integer("seq_len", t.seq_len, 1, limits::kSeqLen);
  t.micro_batch = static_cast<int>(tr.integer("micro_batch", t.micro_batch, 1, limits::kDegree));
  t.global_batch = tr.integer("global_batch", static_cast<int64_t>(par.dp) * t.micro_batch, 1, limits::kGlobalBatch);
  t.precision = tr.enumeration("precision", t.precision, detail::kPrecisions);
  t.grad_dtype = tr.enumeration("grad_dtype", t.grad_dtype, detail::kGradDtypes);
  t.optimizer = tr.enumeration("optimizer", t.optimizer, detail::kOptimizers);
  t.recompute = tr.enumeration("recompute", t.recompute, detail::kRecomputes);
  t.flash_attention = tr.boolean("flash_attention", t.flash_attention);
  t.offload = tr.enumeration("offload", t.offload, detail::kOffloads);
  t.dropout = tr.number("dropout", t.dropout, 0.0, 0.99);
  if (tr.has("framework") && !tr.raw("framework")->is_null())
    t.framework = tr.enumeration("framework", Framework::megatron, detail::kFrameworks);
  t.cross_entropy = tr.enumeration("cross_entropy", t.cross_entropy, detail::kCrossEntropies);
  if (const json* l = tr.raw("lora"); l && !l->is_null()) {
    ObjectReader lr(*l, "training.lora", errors, {"rank", "alpha", "targets", "base", "dropout"});
    LoraSpec lora;
    lora.rank = static_cast<int>(lr.integer("rank", lora.rank, 1, limits::kDegree));
    lora.alpha = lr.number("alpha", 2.0 * lora.rank, 1e-9, 1e9);
    lora.base = lr.enumeration("base", lora.base, detail::kLoraBases);
    lora.dropout = lr.number("dropout", lora.dropout, 0.0, 0.99);
    if (const json* tg = lr.raw("targets"); tg && !tg->is_null()) {
      lora.targets = 0;
      std::vector<std::string> names(std::begin(kLoraTargetNames), std::end(kLoraTargetNames));
      if (!tg->is_array() || tg->empty()) {
        errors.add("training.lora.targets", show(*tg), "must be a non-empty list of " + ObjectReader::join(names));
      } else {
        for (size_t i = 0; i < tg->size(); ++i) {
          const json& x = (*tg)[i];
          bool ok = false;
          for (size_t k = 0; k < names.size(); ++k)
            if (x.is_string() && x.get<std::string>() == names[k]) { lora.targets |= 1u << k; ok = true; }
          if (!ok) {
            std::string g = x.is_string() ? closest_match(x.get<std::string>(), names) : "";
            errors.add("training.lora.targets[" + std::to_string(i) + "]", show(x),
                       "must be one of " + ObjectReader::join(names) + (g.empty() ? "" : " (did you mean \"" + g + "\"?)"));
          }
        }
      }
    }
    t.lora = lora;
  }
  errors.throw_if_any();  // the cross-section rules below assume every field parsed
  validate_plan(plan, errors);
  errors.throw_if_any();
  return plan;
}

Plan load_plan(const std::string& path, const std::vector<std::string>& overrides) {
  json doc = parse_json_text(read_file(path, "plan file"), path);
  for (const auto& o : overrides) apply_override(doc, o);
  const fs::path dir = fs::path(path).parent_path();
  return plan_from_json(doc, dir.empty() ? "." : dir.string());
}

json model_to_json(const ModelSpec& m) {
  json j = {{"name", m.name},
            {"layers", m.layers},
            {"hidden", m.hidden},
            {"heads", m.heads},
            {"kv_heads", m.kv_heads},
            {"head_dim", m.head_dim},
            {"ffn_hidden", m.ffn_hidden},
            {"vocab", m.vocab},
            {"activation", detail::name_of(detail::kActivations, m.activation)},
            {"norm", detail::name_of(detail::kNorms, m.norm)},
            {"tied_embeddings", m.tied_embeddings},
            {"bias", detail::name_of(detail::kBiases, m.bias)},
            {"position_embedding", detail::name_of(detail::kPositions, m.position_embedding)}};
  if (m.position_embedding == PositionEmbedding::learned) j["max_seq_len"] = m.max_seq_len;
  if (m.sliding_window > 0) j["sliding_window"] = m.sliding_window;
  if (m.qk_norm) j["qk_norm"] = true;
  if (m.moe)
    j["moe"] = {{"experts", m.moe->experts}, {"top_k", m.moe->top_k}, {"ffn_hidden", m.moe->ffn_hidden},
                {"shared_experts", m.moe->shared_experts}, {"dense_layers", m.moe->dense_layers}};
  if (m.mla)
    j["mla"] = {{"q_lora_rank", m.mla->q_lora_rank}, {"kv_lora_rank", m.mla->kv_lora_rank},
                {"qk_nope_head_dim", m.mla->qk_nope_head_dim}, {"qk_rope_head_dim", m.mla->qk_rope_head_dim},
                {"v_head_dim", m.mla->v_head_dim}};
  return j;
}

json gpu_to_json(const GpuSpec& g) {
  return {{"id", g.id},
          {"name", g.name},
          {"is_cpu", g.is_cpu},
          {"memory_bytes", g.memory_bytes},
          {"peak_flops",
           {{"fp32", g.peak_fp32_flops}, {"tf32", g.peak_tf32_flops}, {"bf16", g.peak_bf16_flops},
            {"fp16", g.peak_fp16_flops}, {"fp8", g.peak_fp8_flops}}},
          {"hbm_bytes_per_s", g.hbm_bytes_per_s},
          {"sm_count", g.sm_count},
          {"intra_node_bytes_per_s", g.intra_node_bytes_per_s},
          {"inter_node_bytes_per_s", g.inter_node_bytes_per_s},
          {"host_link_bytes_per_s", g.host_link_bytes_per_s},
          {"host_memory_bytes_per_s", g.host_memory_bytes_per_s},
          {"nvlink_tray_gpus", g.nvlink_tray_gpus},
          {"nvlink_domain_trays", g.nvlink_domain_trays},
          {"efficiency", efficiency_to_json(g.efficiency)}};
}

json efficiency_to_json(const Efficiency& e) {
  json j = json::object();
  for (const EfficiencyField& f : efficiency_fields()) j[f.name] = e.*(f.member);
  return j;
}

json plan_to_json(const Plan& p) {
  json model;
  if (!p.model.preset.empty()) model = p.model.preset;
  else if (!p.model.hf_config.empty()) model = {{"hf_config", p.model.hf_config}};
  else model = model_to_json(p.model);
  const auto& t = p.training;
  json lora = nullptr;
  if (t.lora) {
    json targets = json::array();
    for (size_t k = 0; k < std::size(kLoraTargetNames); ++k)
      if (t.lora->targets & (1u << k)) targets.push_back(kLoraTargetNames[k]);
    lora = {{"rank", t.lora->rank}, {"alpha", t.lora->alpha}, {"targets", targets},
            {"base", to_string(t.lora->base)}, {"dropout", t.lora->dropout}};
  }
  json training = {{"seq_len", t.seq_len},           {"micro_batch", t.micro_batch},
                   {"global_batch", t.global_batch}, {"precision", to_string(t.precision)},
                   {"grad_dtype", to_string(t.grad_dtype)}, {"optimizer", to_string(t.optimizer)},
                   {"recompute", to_string(t.recompute)},   {"flash_attention", t.flash_attention},
                   {"lora", lora},                   {"offload", to_string(t.offload)},
                   {"dropout", t.dropout}};
  if (t.framework) training["framework"] = to_string(*t.framework);
  if (t.cross_entropy != CrossEntropy::unfused) training["cross_entropy"] = to_string(t.cross_entropy);
  const auto& par = p.parallel;
  json parallel = {{"dp", par.dp}, {"tp", par.tp}, {"pp", par.pp}, {"cp", par.cp}, {"ep", par.ep},
                   {"zero", par.zero}, {"sequence_parallel", par.sequence_parallel},
                   {"pp_schedule", to_string(par.pp_schedule)}, {"virtual_stages", par.virtual_stages},
                   {"tp_comm_overlap", par.tp_comm_overlap},
                   {"ep_comm_overlap", par.ep_comm_overlap}, {"dp_overlap", par.dp_overlap}};
  if (!par.layer_split.empty()) parallel["layer_split"] = par.layer_split;
  if (!par.pp_comm_overlap) parallel["pp_comm_overlap"] = false;  // written when not the default
  json cluster = {{"gpu", p.cluster.gpu.custom ? gpu_to_json(p.cluster.gpu) : json(p.cluster.gpu.id)},
                  {"gpus", p.cluster.gpus},
                  {"gpus_per_node", p.cluster.gpus_per_node}};
  if (p.cluster.cuda_context_bytes) cluster["cuda_context_bytes"] = *p.cluster.cuda_context_bytes;
  if (p.cluster.nccl_bytes_per_communicator) cluster["nccl_bytes_per_communicator"] = *p.cluster.nccl_bytes_per_communicator;
  if (p.cluster.allocator_headroom) cluster["allocator_headroom"] = *p.cluster.allocator_headroom;
  if (p.cluster.price_per_gpu_hour > 0) cluster["price_per_gpu_hour"] = p.cluster.price_per_gpu_hour;
  cluster["calibration"] = p.cluster.calibration.origin.empty() ? p.cluster.calibration.name : p.cluster.calibration.origin;
  const ClusterSpec defaults;
  if (p.cluster.mesh_order != defaults.mesh_order) {
    json order = json::array();
    for (Axis a : p.cluster.mesh_order)
      order.push_back(to_string(a));
    cluster["mesh_order"] = order;
  }
  return {{"model", model}, {"training", training}, {"parallel", parallel}, {"cluster", cluster}};
}

}  // namespace paraplan::planner
