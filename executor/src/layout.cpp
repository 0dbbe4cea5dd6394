// Parameter names follow Hugging Face transformers' LlamaForCausalLM (modeling_llama.py): model.embed_tokens,
// model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
// mlp.{gate,up,down}_proj}, model.norm, lm_head. GPT-shaped models (LayerNorm, GeLU, biases, learned
// positions) use the same names with .bias tensors, mlp.up_proj/down_proj as fc1/fc2 and
// model.embed_positions. LoRA adapters are named as peft names them (peft/tuners/lora/layer.py:
// lora_A is r x in, lora_B is out x r).
#include "paraplan/exec/layout.hpp"

#include <string>

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

struct UnitBuilder {
  UnitLayout& unit;
  bool frozen_base;  // LoRA: every base parameter is frozen

  void add(std::string name, std::vector<int64_t> shape, Role role) {
    ParamInfo p;
    p.name = std::move(name);
    p.shape = std::move(shape);
    p.role = role;
    p.trainable = !frozen_base;
    place(p);
  }
  void add_lora(const std::string& module, int64_t in, int64_t out, int rank, LoraTarget target) {
    for (bool a : {true, false}) {
      ParamInfo p;
      p.name = module + (a ? ".lora_A.weight" : ".lora_B.weight");
      p.shape = a ? std::vector<int64_t>{rank, in} : std::vector<int64_t>{out, rank};
      p.role = a ? Role::lora_a : Role::lora_b;
      p.trainable = true;
      p.target = target;
      place(p);
    }
  }
  void place(ParamInfo& p) {
    int64_t& cursor = p.trainable ? unit.trainable_numel : unit.frozen_numel;
    p.offset = cursor;
    cursor += p.numel();
    unit.params.push_back(std::move(p));
  }
};

// A linear layer in -> out with its optional bias and LoRA adapter.
void linear(UnitBuilder& b, const std::string& module, int64_t in, int64_t out, Role w, Role bias_role, bool bias,
            LoraTarget target, const std::optional<LoraSpec>& lora) {
  b.add(module + ".weight", {out, in}, w);
  if (bias) b.add(module + ".bias", {out}, bias_role);
  if (lora && lora->has(target)) b.add_lora(module, in, out, lora->rank, target);
}

void norm(UnitBuilder& b, const ModelSpec& m, const std::string& module, Role w, Role bias) {
  b.add(module + ".weight", {m.hidden}, w);
  if (m.norm == Norm::layernorm) b.add(module + ".bias", {m.hidden}, bias);
}

}  // namespace

std::string peft_name(const std::string& lora_param_name) { return "base_model.model." + lora_param_name; }

ModelLayout model_layout(const ModelSpec& m, const std::optional<LoraSpec>& lora) {
  ModelLayout out;
  const bool frozen = lora.has_value();
  const int64_t h = m.hidden, q = m.q_dim(), kv = m.kv_dim();
  {
    UnitLayout u;
    u.kind = UnitKind::embedding;
    UnitBuilder b{u, frozen};
    b.add("model.embed_tokens.weight", {m.vocab, h}, Role::embed);
    if (m.position_embedding == PositionEmbedding::learned)
      b.add("model.embed_positions.weight", {m.max_seq_len, h}, Role::pos_embed);
    out.units.push_back(std::move(u));
  }
  for (int l = 0; l < m.layers; ++l) {
    UnitLayout u;
    u.kind = UnitKind::layer;
    u.layer = l;
    UnitBuilder b{u, frozen};
    const std::string p = "model.layers." + std::to_string(l);
    const bool qkv_bias = m.qkv_bias(), o_bias = m.o_bias(), mlp_bias = m.mlp_bias();
    norm(b, m, p + ".input_layernorm", Role::attn_norm_w, Role::attn_norm_b);
    linear(b, p + ".self_attn.q_proj", h, q, Role::q_w, Role::q_b, qkv_bias, kQProj, lora);
    linear(b, p + ".self_attn.k_proj", h, kv, Role::k_w, Role::k_b, qkv_bias, kKProj, lora);
    linear(b, p + ".self_attn.v_proj", h, kv, Role::v_w, Role::v_b, qkv_bias, kVProj, lora);
    linear(b, p + ".self_attn.o_proj", q, h, Role::o_w, Role::o_b, o_bias, kOProj, lora);
    norm(b, m, p + ".post_attention_layernorm", Role::mlp_norm_w, Role::mlp_norm_b);
    if (m.activation == Activation::swiglu)
      linear(b, p + ".mlp.gate_proj", h, m.ffn_hidden, Role::gate_w, Role::gate_b, mlp_bias, kGateProj, lora);
    linear(b, p + ".mlp.up_proj", h, m.ffn_hidden, Role::up_w, Role::up_b, mlp_bias, kUpProj, lora);
    linear(b, p + ".mlp.down_proj", m.ffn_hidden, h, Role::down_w, Role::down_b, mlp_bias, kDownProj, lora);
    out.units.push_back(std::move(u));
  }
  {
    UnitLayout u;
    u.kind = UnitKind::head;
    UnitBuilder b{u, frozen};
    norm(b, m, "model.norm", Role::final_norm_w, Role::final_norm_b);
    if (!m.tied_embeddings) b.add("lm_head.weight", {m.vocab, h}, Role::lm_head);
    out.units.push_back(std::move(u));
  }
  for (const auto& u : out.units) {
    out.trainable_numel += u.trainable_numel;
    out.frozen_numel += u.frozen_numel;
  }
  return out;
}

void check_executor_support(const Plan& plan, Violations& errors) {
  const auto& par = plan.parallel;
  const auto& tr = plan.training;
  const auto& m = plan.model;
  const char* dp_only =
      "the executor runs data parallelism (dp, zero 0-3) and LoRA; tensor/pipeline/context/expert "
      "parallelism are not implemented in the executor yet";
  auto degree = [&](const char* field, int v) {
    if (v > 1) errors.add(field, std::to_string(v), dp_only);
  };
  degree("parallel.tp", par.tp);
  degree("parallel.pp", par.pp);
  degree("parallel.cp", par.cp);
  degree("parallel.ep", par.ep);
  if (m.moe) errors.add("model.moe", "", "mixture-of-experts layers are not implemented in the executor yet");
  if (m.mla) errors.add("model.mla", "", "multi-head latent attention is not implemented in the executor yet");
  if (m.sliding_window > 0 && m.sliding_window < tr.seq_len)
    errors.add("model.sliding_window", std::to_string(m.sliding_window),
               "sliding-window attention is not implemented in the executor yet (it attends to every earlier "
               "token); use training.seq_len <= the window");
  if (tr.recompute != Recompute::none)
    errors.add("training.recompute", to_string(tr.recompute),
               "the executor keeps all activations; use \"none\" (with flash_attention the attention core "
               "is recomputed in the backward already)");
  if (tr.dropout > 0)
    errors.add("training.dropout", std::to_string(tr.dropout), "dropout is not implemented in the executor; use 0");
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
    if (tr.lora->base == LoraBase::nf4)
      errors.add("training.lora.base", "nf4", "QLoRA (NF4 base) is not implemented in the executor yet");
    else if (!base_matches)
      errors.add("training.lora.base", to_string(tr.lora->base),
                 std::string("the executor keeps the frozen base in the compute dtype: use \"") +
                     to_string(tr.precision) + "\" with training.precision = " + to_string(tr.precision));
  }
  // ZeRO-2/3 reduce one unit's gradients at a time through one bucket; the tied head writes the
  // embedding unit's gradient while its own unit still holds the bucket.
  if (m.tied_embeddings && par.zero >= 2)
    errors.add("model.tied_embeddings", "true",
               "tied embeddings with parallel.zero = " + std::to_string(par.zero) +
                   " are not implemented yet (ZeRO-2/3 reduce one unit's gradients at a time); use parallel.zero 0 or 1");
  if (m.position_embedding == PositionEmbedding::rope && m.head_dim % 2 != 0)
    errors.add("model.head_dim", std::to_string(m.head_dim), "RoPE rotates pairs of dimensions: must be even");
  if (m.position_embedding == PositionEmbedding::learned && tr.seq_len > m.max_seq_len)
    errors.add("training.seq_len", std::to_string(tr.seq_len), "exceeds model.max_seq_len");
}

}  // namespace paraplan::exec
