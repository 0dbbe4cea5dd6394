#include "model.hpp"

#include <cmath>
#include <stdexcept>

#include "paraplan/exec/memory_meter.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::exec {

using namespace planner;

namespace {

int key_target(Role r, LoraTarget t) { return (r == Role::lora_a || r == Role::lora_b) ? static_cast<int>(t) : 0; }

// Dropout sites: the embedding's, then per layer the attention probabilities', the attention output's
// and the MLP output's.
constexpr int64_t kSitesPerLayer = 3;
int64_t attn_prob_site(int layer) { return 1 + kSitesPerLayer * layer; }
int64_t attn_out_site(int layer) { return 2 + kSitesPerLayer * layer; }
int64_t mlp_out_site(int layer) { return 3 + kSitesPerLayer * layer; }

}  // namespace

Model::Model(const Plan& plan, const ModelExtras& extras, TpGroup tp, uint64_t seed, ZeroEngine& engine)
    : plan_(plan), spec_(plan_.model), extras_(extras), tp_(tp), seed_(seed), engine_(engine) {
  const ModelLayout& l = engine_.layout();
  n_chunks_ = plan_.parallel.chunks();
  for (size_t u = 0; u < l.units.size(); ++u) {
    const UnitLayout& ul = l.units[u];
    std::map<std::pair<int, int>, int> m;
    for (size_t i = 0; i < ul.params.size(); ++i)
      m[{static_cast<int>(ul.params[i].role), key_target(ul.params[i].role, ul.params[i].target)}] = static_cast<int>(i);
    index_.push_back(std::move(m));
    auto it = chunk_units_.find(ul.chunk);
    if (it == chunk_units_.end()) {
      chunk_units_[ul.chunk] = {static_cast<int>(u), static_cast<int>(u)};
      chunks_.push_back(ul.chunk);
    } else {
      it->second.second = static_cast<int>(u);
    }
    if (ul.kind == UnitKind::embedding) embed_unit_ = static_cast<int>(u);
    if (ul.kind == UnitKind::head) head_unit_ = static_cast<int>(u);
  }
  vocab_rows_ = padded_vocab_of(spec_, tp_.size) / tp_.size;
  vocab_start_ = tp_.rank * vocab_rows_;
  vocab_valid_ = std::max<int64_t>(0, std::min<int64_t>(vocab_rows_, spec_.vocab - vocab_start_));
  kv_ = kv_heads_of(spec_, tp_.size, tp_.rank);
  {
    CategoryScope cat(MemCategory::buffers);
    tables_ = tables(plan_.training.seq_len);
  }
  // Tied embeddings: the head uses the embedding's table when this rank holds both (its gradient through
  // an alias slot), else its own copy (the lm_head role, named as the embedding: layout.cpp).
  if (spec_.tied_embeddings && head_unit_ >= 0 && embed_unit_ >= 0)
    tied_slot_ = engine_.alias_slot(slot(embed_unit_, Role::embed));
}

int Model::first_unit(int chunk) const { return chunk_units_.at(chunk).first; }
int Model::last_unit(int chunk) const { return chunk_units_.at(chunk).second; }

int Model::find(int unit, Role r, LoraTarget target) const {
  const auto& m = index_.at(static_cast<size_t>(unit));
  auto it = m.find({static_cast<int>(r), key_target(r, target)});
  return it == m.end() ? -1 : it->second;
}

const at::Tensor& Model::param(int unit, Role r) const {
  static const at::Tensor none;
  const int i = find(unit, r);
  return i < 0 ? none : engine_.params(unit)[static_cast<size_t>(i)];
}

int64_t Model::slot(int unit, Role r) const {
  const int i = find(unit, r);
  return i < 0 ? kNoSlot : engine_.slot_id(unit, static_cast<size_t>(i));
}

std::vector<at::Tensor> Model::trainable(int unit) const {
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : engine_.params(unit))
    if (t.requires_grad()) out.push_back(t);
  return out;
}

Model::Tables Model::tables(int64_t s) const {
  at::NoGradGuard no_grad;
  const ZeroEngineOptions& o = engine_.options();
  Tables t;
  const auto dev = at::TensorOptions().device(o.device);
  if (spec_.position_embedding == PositionEmbedding::rope) {
    // RoFormer (Su et al. 2021) Eq. 15: theta_j = base^(-2j/d); angle(p, j) = p * theta_j.
    const int64_t half = spec_.head_dim / 2;
    const at::Tensor j = at::arange(half, dev.dtype(at::kDouble));
    const at::Tensor inv = at::pow(extras_.rope_theta, j.mul(-2.0 / static_cast<double>(spec_.head_dim)));
    const at::Tensor angle = at::outer(at::arange(s, dev.dtype(at::kDouble)), inv);
    t.cos = angle.cos().to(o.compute);
    t.sin = angle.sin().to(o.compute);
  }
  t.mask = at::ones({s, s}, dev.dtype(at::kBool)).triu_(1);
  return t;
}

Projection Model::proj(int unit, Role w, Role b, LoraTarget target) const {
  Projection p;
  p.w = param(unit, w);
  p.w_slot = slot(unit, w);
  if (b != Role::none) {
    p.bias = param(unit, b);
    p.b_slot = slot(unit, b);
  }
  const auto& lora = plan_.training.lora;
  const int ia = lora ? find(unit, Role::lora_a, target) : -1, ib = lora ? find(unit, Role::lora_b, target) : -1;
  if (ia >= 0 && ib >= 0) {
    p.lora_a = engine_.params(unit)[static_cast<size_t>(ia)];
    p.lora_b = engine_.params(unit)[static_cast<size_t>(ib)];
    p.a_slot = engine_.slot_id(unit, static_cast<size_t>(ia));
    p.bb_slot = engine_.slot_id(unit, static_cast<size_t>(ib));
    p.scale = lora->alpha / lora->rank;  // Hu et al. 2021 §4.1: scale the update by alpha / r
  }
  return p;
}

at::Tensor Model::normed(int unit, Role w, Role b, const at::Tensor& x) {
  return exec::norm(&engine_, x, param(unit, w), slot(unit, w), param(unit, b), slot(unit, b), extras_.norm_eps);
}

DropoutKey Model::dropout_key(const MicroBatch& mb, int64_t site) const {
  DropoutKey k;
  k.p = eval_ ? 0.0 : plan_.training.dropout;
  k.seed = seed_;
  k.step = mb.step;
  k.sequences = mb.sequences;
  k.seq_len = plan_.training.seq_len;
  k.site = site;
  return k;
}

int64_t Model::first_row(int64_t tokens) const { return tp_.sequence_parallel() ? tp_.rank * tokens / tp_.size : 0; }

int64_t Model::tokens_per_rank_activation(int64_t tokens) const {
  return tp_.sequence_parallel() ? tokens / tp_.size : tokens;
}

at::Tensor Model::embed(int u, const at::Tensor& ids, const MicroBatch& mb) {
  engine_.enter_unit_forward(u);
  EmbeddingArgs a;
  a.w = param(u, Role::embed);
  a.w_slot = slot(u, Role::embed);
  a.pos = param(u, Role::pos_embed);
  a.pos_slot = slot(u, Role::pos_embed);
  a.seq_len = ids.size(1);
  a.vocab_start = vocab_start_;
  at::Tensor x = exec::embedding(&engine_, tp_, ids.reshape({-1}), a);
  return exec::dropout(x, dropout_key(mb, 0), first_row(ids.numel()));
}

at::Tensor Model::layer(int u, const at::Tensor& x, const Tables& t, int64_t b, int64_t s, const MicroBatch& mb) {
  const ModelSpec& m = spec_;
  const int l = engine_.layout().units[static_cast<size_t>(u)].layer;
  const int64_t heads = m.heads / tp_.size, first = first_row(b * s);
  memory_mark("fwd attn_norm");
  const at::Tensor n1 = normed(u, Role::attn_norm_w, Role::attn_norm_b, x);
  memory_mark("fwd qkv");
  std::vector<at::Tensor> qkv = exec::column_linear(
      &engine_, tp_, n1,
      {proj(u, Role::q_w, Role::q_b, kQProj), proj(u, Role::k_w, Role::k_b, kKProj), proj(u, Role::v_w, Role::v_b, kVProj)});
  memory_mark("fwd rope");
  if (m.position_embedding == PositionEmbedding::rope) {
    qkv[0] = exec::rope(qkv[0], t.cos, t.sin, heads, m.head_dim, s);
    qkv[1] = exec::rope(qkv[1], t.cos, t.sin, kv_.local, m.head_dim, s);
  }
  AttentionArgs aa;
  aa.batch = b;
  aa.seq_len = s;
  aa.heads = heads;
  aa.kv_heads = kv_.local;
  aa.head_dim = m.head_dim;
  aa.first_head = tp_.rank * heads;
  aa.flash = plan_.training.flash_attention;
  aa.recompute = plan_.training.recompute == Recompute::selective;
  aa.dropout = dropout_key(mb, attn_prob_site(l));
  memory_mark("fwd attention");
  at::Tensor a = exec::attention(qkv[0], qkv[1], qkv[2], t.mask, aa);
  qkv.clear();
  memory_mark("fwd o_proj");
  at::Tensor o = exec::row_linear(&engine_, tp_, a, proj(u, Role::o_w, Role::o_b, kOProj));
  a.reset();
  memory_mark("fwd residual1");
  const at::Tensor h1 = x + exec::dropout(o, dropout_key(mb, attn_out_site(l)), first);
  o.reset();
  memory_mark("fwd mlp_norm");
  const at::Tensor n2 = normed(u, Role::mlp_norm_w, Role::mlp_norm_b, h1);
  memory_mark("fwd fc1+act");
  at::Tensor act;
  if (m.activation == Activation::swiglu) {
    std::vector<at::Tensor> gu = exec::column_linear(
        &engine_, tp_, n2, {proj(u, Role::gate_w, Role::gate_b, kGateProj), proj(u, Role::up_w, Role::up_b, kUpProj)});
    act = exec::swiglu(gu[0], gu[1]);
  } else {
    act = exec::gelu(exec::column_linear(&engine_, tp_, n2, {proj(u, Role::up_w, Role::up_b, kUpProj)})[0]);
  }
  memory_mark("fwd fc2");
  at::Tensor d = exec::row_linear(&engine_, tp_, act, proj(u, Role::down_w, Role::down_b, kDownProj));
  act.reset();
  memory_mark("fwd residual2");
  return h1 + exec::dropout(d, dropout_key(mb, mlp_out_site(l)), first);
}

const at::Tensor& Model::embedding_table(int* unit_out) const {
  if (unit_out) *unit_out = embed_unit_;
  return param(embed_unit_, Role::embed);
}

at::Tensor Model::head_logits(int u, const at::Tensor& x) {
  memory_mark("fwd final_norm");
  const at::Tensor n = normed(u, Role::final_norm_w, Role::final_norm_b, x);
  Projection p;
  if (spec_.tied_embeddings && embed_unit_ >= 0) {
    p.w = param(embed_unit_, Role::embed);
    p.w_slot = tied_slot_;
  } else {
    p = proj(u, Role::lm_head, Role::none, kQProj);
  }
  memory_mark("fwd head");
  return exec::column_linear(&engine_, tp_, n, {p})[0];
}

at::Tensor Model::head_loss(int u, const at::Tensor& x, const MicroBatch& mb, double scale) {
  at::Tensor logits = head_logits(u, x);
  memory_mark("fwd loss");
  return exec::cross_entropy(tp_, logits, mb.targets.reshape({-1}), scale, vocab_start_, vocab_valid_);
}

at::Tensor Model::forward_chunk(int chunk, const at::Tensor& input, const MicroBatch& mb, double scale) {
  const int64_t b = plan_.training.micro_batch, s = plan_.training.seq_len;
  const auto [first, last] = chunk_units_.at(chunk);
  at::Tensor x = input;
  const bool full = plan_.training.recompute == Recompute::full;
  for (int u = first; u <= last; ++u) {
    const UnitKind kind = engine_.layout().units[static_cast<size_t>(u)].kind;
    if (kind == UnitKind::embedding) {
      x = embed(u, mb.ids, mb);
      continue;
    }
    x = exec::unit_boundary(&engine_, x, u);
    if (kind == UnitKind::head) return head_loss(u, x, mb, scale);
    if (full) {
      const MicroBatch keys{at::Tensor(), at::Tensor(), mb.sequences, mb.step};
      x = exec::recompute([this, u, b, s, keys](const at::Tensor& in) { return layer(u, in, tables_, b, s, keys); }, x,
                          trainable(u));
    } else {
      x = layer(u, x, tables_, b, s, mb);
    }
  }
  return x;
}

at::Tensor Model::logits(const at::Tensor& ids) {
  if (tp_.active() || n_chunks_ > 1)
    throw std::runtime_error("logits need the whole model on one rank (tp = pp = 1)");
  at::NoGradGuard no_grad;
  const Tables t = tables(ids.size(1));
  eval_ = true;
  struct Restore {
    bool& flag;
    ~Restore() { flag = false; }
  } restore{eval_};
  MicroBatch mb;
  mb.sequences.assign(static_cast<size_t>(ids.size(0)), 0);
  at::Tensor x = embed(embed_unit_, ids, mb);
  for (int u = embed_unit_ + 1; u < head_unit_; ++u) {
    x = exec::unit_boundary(&engine_, x, u);
    x = layer(u, x, t, ids.size(0), ids.size(1), mb);
  }
  x = exec::unit_boundary(&engine_, x, head_unit_);
  return head_logits(head_unit_, x);
}

}  // namespace paraplan::exec
