// Parameter names follow Hugging Face transformers' LlamaForCausalLM (modeling_llama.py): model.embed_tokens,
// model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
// mlp.{gate,up,down}_proj}, model.norm, lm_head. GPT-shaped models (LayerNorm, GeLU, biases, learned
// positions) use the same names with .bias tensors, mlp.up_proj/down_proj as fc1/fc2 and
// model.embed_positions. LoRA adapters are named as peft names them (peft/tuners/lora/layer.py:
// lora_A is r x in, lora_B is out x r).
#include "paraplan/exec/layout.hpp"

#include <string>

#include "paraplan/pipeline.hpp"

namespace paraplan::exec {

using namespace planner;

int64_t ParamInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const ParamInfo* ModelLayout::find(const std::string& name) const {
  for (const auto& u : units)
    for (const auto& p : u.params)
      if (p.name == name) return &p;
  return nullptr;
}

namespace {

// How tensor parallelism splits this rank's tensors.
struct Split {
  int tp = 1, rank = 0;
  bool sp = false;
  KvHeads kv;
  int64_t vocab_rows = 0;  // padded vocabulary / tp
};

struct UnitBuilder {
  UnitLayout& unit;
  bool frozen_base;  // LoRA: every base parameter is frozen
  const Split& split;

  // A parameter of full shape `full`, held whole, or its slice [start, start + len) along `dim`.
  ParamInfo& add(std::string name, std::vector<int64_t> full, Role role, int dim = -1, int64_t start = 0,
                 int64_t len = 0, GradSum sum = GradSum::none) {
    ParamInfo p;
    p.name = std::move(name);
    p.full_shape = full;
    p.shape = std::move(full);
    if (dim >= 0 && split.tp > 1) {
      p.shard_dim = dim;
      p.shard_start = start;
      p.shape[static_cast<size_t>(dim)] = len;
    }
    p.grad_sum = split.tp > 1 ? sum : GradSum::none;
    p.role = role;
    p.trainable = !frozen_base;
    if (role == Role::lora_a || role == Role::lora_b) p.trainable = true;
    return place(p);
  }
  ParamInfo& place(ParamInfo& p) {
    int64_t& cursor = p.trainable ? unit.trainable_numel : unit.frozen_numel;
    p.offset = cursor;
    cursor += p.numel();
    unit.params.push_back(std::move(p));
    return unit.params.back();
  }
};

// Column-parallel (Megatron ColumnParallelLinear): W [out, in] split by output rows, the bias with them;
// LoRA A [r, in] whole on every rank, B [out, r] split like W (NeMo's LoRA on parallel linears).
// `rows_start, rows` say this rank's output rows; `replicas`: the rows are a kv head held by several ranks.
void column(UnitBuilder& b, const std::string& module, int64_t in, int64_t out, int64_t rows_start, int64_t rows,
            Role w, Role bias_role, bool bias, LoraTarget target, const std::optional<LoraSpec>& lora,
            bool kv_replicated = false) {
  const GradSum own = kv_replicated ? GradSum::kv_replicas : GradSum::none;
  b.add(module + ".weight", {out, in}, w, 0, rows_start, rows, own);
  if (bias) b.add(module + ".bias", {out}, bias_role, 0, rows_start, rows, own);
  if (!lora || !lora->has(target)) return;
  b.add(module + ".lora_A.weight", {lora->rank, in}, Role::lora_a, -1, 0, 0, GradSum::tp).target = target;
  b.add(module + ".lora_B.weight", {out, lora->rank}, Role::lora_b, 0, rows_start, rows, own).target = target;
}

// Row-parallel (Megatron RowParallelLinear): W [out, in] split by input columns; the bias is added after
// the reduction, whole (a partial sum over tokens under sequence parallelism); LoRA A [r, in] split like
// W, B [out, r] whole.
void row(UnitBuilder& b, const std::string& module, int64_t in, int64_t out, Role w, Role bias_role, bool bias,
         LoraTarget target, const std::optional<LoraSpec>& lora) {
  const Split& s = b.split;
  const int64_t cols = in / s.tp, start = s.rank * cols;
  b.add(module + ".weight", {out, in}, w, 1, start, cols);
  if (bias) b.add(module + ".bias", {out}, bias_role, -1, 0, 0, s.sp ? GradSum::tp : GradSum::none);
  if (!lora || !lora->has(target)) return;
  b.add(module + ".lora_A.weight", {lora->rank, in}, Role::lora_a, 1, start, cols).target = target;
  b.add(module + ".lora_B.weight", {out, lora->rank}, Role::lora_b).target = target;
}

void norm(UnitBuilder& b, const ModelSpec& m, const std::string& module, Role w, Role bias) {
  const GradSum sum = b.split.sp ? GradSum::tp : GradSum::none;
  b.add(module + ".weight", {m.hidden}, w, -1, 0, 0, sum);
  if (m.norm == Norm::layernorm) b.add(module + ".bias", {m.hidden}, bias, -1, 0, 0, sum);
}

UnitLayout embedding_unit(const ModelSpec& m, bool frozen, const Split& s) {
  UnitLayout u;
  u.kind = UnitKind::embedding;
  UnitBuilder b{u, frozen, s};
  b.add("model.embed_tokens.weight", {m.vocab, m.hidden}, Role::embed, 0, s.rank * s.vocab_rows, s.vocab_rows);
  if (m.position_embedding == PositionEmbedding::learned)
    b.add("model.embed_positions.weight", {m.max_seq_len, m.hidden}, Role::pos_embed, -1, 0, 0,
          s.sp ? GradSum::tp : GradSum::none);
  return u;
}

UnitLayout layer_unit(const ModelSpec& m, int l, const std::optional<LoraSpec>& lora, const Split& s) {
  UnitLayout u;
  u.kind = UnitKind::layer;
  u.layer = l;
  UnitBuilder b{u, lora.has_value(), s};
  const std::string p = "model.layers." + std::to_string(l);
  const int64_t h = m.hidden, q = m.q_dim(), kv = m.kv_dim(), hd = m.head_dim;
  const bool qkv_bias = m.qkv_bias(), o_bias = m.o_bias(), mlp_bias = m.mlp_bias();
  const int64_t q_rows = q / s.tp, f_rows = m.ffn_hidden / s.tp;
  const bool kv_rep = s.kv.replicas > 1;
  norm(b, m, p + ".input_layernorm", Role::attn_norm_w, Role::attn_norm_b);
  column(b, p + ".self_attn.q_proj", h, q, s.rank * q_rows, q_rows, Role::q_w, Role::q_b, qkv_bias, kQProj, lora);
  column(b, p + ".self_attn.k_proj", h, kv, s.kv.first * hd, s.kv.local * hd, Role::k_w, Role::k_b, qkv_bias, kKProj,
         lora, kv_rep);
  column(b, p + ".self_attn.v_proj", h, kv, s.kv.first * hd, s.kv.local * hd, Role::v_w, Role::v_b, qkv_bias, kVProj,
         lora, kv_rep);
  row(b, p + ".self_attn.o_proj", q, h, Role::o_w, Role::o_b, o_bias, kOProj, lora);
  norm(b, m, p + ".post_attention_layernorm", Role::mlp_norm_w, Role::mlp_norm_b);
  if (m.activation == Activation::swiglu)
    column(b, p + ".mlp.gate_proj", h, m.ffn_hidden, s.rank * f_rows, f_rows, Role::gate_w, Role::gate_b, mlp_bias,
           kGateProj, lora);
  column(b, p + ".mlp.up_proj", h, m.ffn_hidden, s.rank * f_rows, f_rows, Role::up_w, Role::up_b, mlp_bias, kUpProj,
         lora);
  row(b, p + ".mlp.down_proj", m.ffn_hidden, h, Role::down_w, Role::down_b, mlp_bias, kDownProj, lora);
  return u;
}

// tied_copy: tied embeddings with the head on another stage than the embedding: the head keeps a copy of
// the table (Megatron's shared embedding on the last stage), named as the embedding, trained in step with
// it (the two stages sum their gradients before the optimizer).
UnitLayout head_unit(const ModelSpec& m, bool frozen, const Split& s, bool tied_copy) {
  UnitLayout u;
  u.kind = UnitKind::head;
  UnitBuilder b{u, frozen, s};
  norm(b, m, "model.norm", Role::final_norm_w, Role::final_norm_b);
  if (!m.tied_embeddings || tied_copy)
    b.add(tied_copy ? "model.embed_tokens.weight" : "lm_head.weight", {m.vocab, m.hidden}, Role::lm_head, 0,
          s.rank * s.vocab_rows, s.vocab_rows);
  return u;
}

void finish(ModelLayout& out) {
  for (const auto& u : out.units) {
    out.trainable_numel += u.trainable_numel;
    out.frozen_numel += u.frozen_numel;
  }
}

}  // namespace

std::string peft_name(const std::string& lora_param_name) { return "base_model.model." + lora_param_name; }

KvHeads kv_heads_of(const ModelSpec& m, int tp, int tp_rank) {
  KvHeads k;
  if (m.kv_heads >= tp) {
    k.local = m.kv_heads / tp;
    k.first = tp_rank * k.local;
  } else {
    k.local = 1;
    k.replicas = tp / m.kv_heads;
    k.first = tp_rank / k.replicas;
  }
  return k;
}

int64_t padded_vocab_of(const ModelSpec& m, int tp) { return (m.vocab + tp - 1) / tp * tp; }

ModelLayout model_layout(const ModelSpec& m, const std::optional<LoraSpec>& lora) {
  Split s;
  s.kv = kv_heads_of(m, 1, 0);
  s.vocab_rows = m.vocab;
  ModelLayout out;
  out.units.push_back(embedding_unit(m, lora.has_value(), s));
  for (int l = 0; l < m.layers; ++l) out.units.push_back(layer_unit(m, l, lora, s));
  out.units.push_back(head_unit(m, lora.has_value(), s, false));
  finish(out);
  return out;
}

bool tied_copy_on_head_stage(const Plan& plan) {
  const int chunks = plan.parallel.chunks();
  return plan.model.tied_embeddings && stage_of_chunk(plan, chunks - 1) != stage_of_chunk(plan, 0);
}

ModelLayout rank_layout(const Plan& plan, RankPosition pos) {
  const ModelSpec& m = plan.model;
  const auto& lora = plan.training.lora;
  Split s;
  s.tp = plan.parallel.tp;
  s.rank = pos.tp_rank;
  s.sp = plan.parallel.sequence_parallel && s.tp > 1;
  s.kv = kv_heads_of(m, s.tp, s.rank);
  s.vocab_rows = padded_vocab_of(m, s.tp) / s.tp;
  const std::vector<int> split = chunk_layers(plan);
  const int chunks = static_cast<int>(split.size());
  ModelLayout out;
  int first_layer = 0;
  for (int c = 0; c < chunks; ++c) {
    const int n = split[static_cast<size_t>(c)];
    if (stage_of_chunk(plan, c) == pos.stage) {
      const size_t begin = out.units.size();
      if (c == 0) out.units.push_back(embedding_unit(m, lora.has_value(), s));
      for (int l = first_layer; l < first_layer + n; ++l) out.units.push_back(layer_unit(m, l, lora, s));
      if (c == chunks - 1) out.units.push_back(head_unit(m, lora.has_value(), s, tied_copy_on_head_stage(plan)));
      for (size_t i = begin; i < out.units.size(); ++i) out.units[i].chunk = c;
    }
    first_layer += n;
  }
  finish(out);
  return out;
}

void check_executor_support(const Plan& plan, Violations& errors) {
  const auto& par = plan.parallel;
  const auto& tr = plan.training;
  const auto& m = plan.model;
  const char* not_here =
      "context and expert parallelism are not implemented in the executor (it runs data parallelism with ZeRO "
      "0-3, tensor and sequence parallelism, pipeline parallelism, recompute, dropout, LoRA and QLoRA)";
  if (par.cp > 1) errors.add("parallel.cp", std::to_string(par.cp), not_here);
  if (par.ep > 1) errors.add("parallel.ep", std::to_string(par.ep), not_here);
  if (m.moe) errors.add("model.moe", "", "mixture-of-experts layers are not implemented in the executor yet");
  if (m.mla) errors.add("model.mla", "", "multi-head latent attention is not implemented in the executor yet");
  if (m.qk_norm) errors.add("model.qk_norm", "true", "query/key norms are not implemented in the executor yet");
  if (tr.cross_entropy != CrossEntropy::unfused)
    errors.add("training.cross_entropy", to_string(tr.cross_entropy),
               "the executor computes its own loss (an fp32 log-softmax); use \"unfused\"");
  if (m.sliding_window > 0 && m.sliding_window < tr.seq_len)
    errors.add("model.sliding_window", std::to_string(m.sliding_window),
               "sliding-window attention is not implemented in the executor yet (it attends to every earlier "
               "token); use training.seq_len <= the window");
  if (tr.offload != Offload::none)
    errors.add("training.offload", to_string(tr.offload), "offload is not implemented in the executor; use \"none\"");
  if (tr.optimizer != Optimizer::adamw && tr.optimizer != Optimizer::adam)
    errors.add("training.optimizer", to_string(tr.optimizer), "the executor implements adamw and adam");
  if (tr.precision == Precision::fp16 || tr.precision == Precision::fp8)
    errors.add("training.precision", to_string(tr.precision),
               "the executor trains in fp32 (CPU) or bf16 with fp32 master weights (GPU)");
  if (tr.precision == Precision::bf16 && plan.cluster.gpu.is_cpu)
    errors.add("training.precision", "bf16", "on CPU workers the executor trains in fp32");
  if (tr.lora) {
    if (tr.lora->dropout > 0)
      errors.add("training.lora.dropout", std::to_string(tr.lora->dropout), "LoRA dropout is not implemented; use 0");
    const bool base_matches = (tr.lora->base == LoraBase::fp32 && tr.precision == Precision::fp32) ||
                              (tr.lora->base == LoraBase::bf16 && tr.precision == Precision::bf16);
    if (tr.lora->base == LoraBase::nf4) {
      if (par.zero == 3)
        errors.add("parallel.zero", "3",
                   "QLoRA's NF4 base is kept whole on every data-parallel rank (sharding it, FSDP-QLoRA style, is "
                   "not implemented): use parallel.zero 0, 1 or 2 with training.lora.base = nf4");
    } else if (!base_matches)
      errors.add("training.lora.base", to_string(tr.lora->base),
                 std::string("the executor keeps the frozen base in the compute dtype: use \"") +
                     to_string(tr.precision) + "\" with training.precision = " + to_string(tr.precision));
  }
  // The head's copy of a tied table (pipeline stages apart) is summed with the embedding's gradient
  // before the optimizer, whole: ZeRO-2/3 shard the two differently.
  if (tied_copy_on_head_stage(plan) && par.zero >= 2)
    errors.add("model.tied_embeddings", "true",
               "tied embeddings with the head on another pipeline stage than the embedding keep a copy of the table "
               "there, and parallel.zero = " + std::to_string(par.zero) + " shards it differently from the "
               "embedding's: use parallel.zero 0 or 1, or pp_schedule zbv (which puts the head on the first stage)");
  if (m.position_embedding == PositionEmbedding::rope && m.head_dim % 2 != 0)
    errors.add("model.head_dim", std::to_string(m.head_dim), "RoPE rotates pairs of dimensions: must be even");
  if (m.position_embedding == PositionEmbedding::learned && tr.seq_len > m.max_seq_len)
    errors.add("training.seq_len", std::to_string(tr.seq_len), "exceeds model.max_seq_len");
}

}  // namespace paraplan::exec
