#include "model.hpp"

#include <cmath>
#include <stdexcept>

#include "functions.hpp"

namespace paraplan::exec {

using namespace planner;

namespace {

int key_target(Role r, LoraTarget t) { return (r == Role::lora_a || r == Role::lora_b) ? static_cast<int>(t) : 0; }

}  // namespace

Model::Model(const ModelSpec& spec, const ModelExtras& extras, const std::optional<LoraSpec>& lora, bool flash,
             ZeroEngine& engine)
    : spec_(spec), extras_(extras), lora_(lora), flash_(flash), engine_(engine) {
  const ModelLayout& l = engine_.layout();
  head_unit_ = static_cast<int>(l.units.size()) - 1;
  for (const UnitLayout& u : l.units) {
    std::map<std::pair<int, int>, int> m;
    for (size_t i = 0; i < u.params.size(); ++i)
      m[{static_cast<int>(u.params[i].role), key_target(u.params[i].role, u.params[i].target)}] = static_cast<int>(i);
    index_.push_back(std::move(m));
  }
  if (spec_.tied_embeddings) engine_.expect_extra_use(slot(0, Role::embed));
}

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

at::Tensor Model::lin(int unit, Role w, Role b, LoraTarget target, const at::Tensor& x) {
  LinearArgs a;
  a.w = slot(unit, w);
  a.b = slot(unit, b);
  at::Tensor la, lb;
  const int ia = lora_ ? find(unit, Role::lora_a, target) : -1, ib = lora_ ? find(unit, Role::lora_b, target) : -1;
  if (ia >= 0 && ib >= 0) {
    la = engine_.params(unit)[static_cast<size_t>(ia)];
    lb = engine_.params(unit)[static_cast<size_t>(ib)];
    a.a = engine_.slot_id(unit, static_cast<size_t>(ia));
    a.bb = engine_.slot_id(unit, static_cast<size_t>(ib));
    a.scale = lora_->alpha / lora_->rank;  // Hu et al. 2021 §4.1: scale the update by alpha / r
  }
  return exec::linear(&engine_, x, param(unit, w), param(unit, b), la, lb, a);
}

at::Tensor Model::normed(int unit, Role w, Role b, const at::Tensor& x) {
  return exec::norm(&engine_, x, param(unit, w), slot(unit, w), param(unit, b), slot(unit, b), extras_.norm_eps);
}

at::Tensor Model::layer(int u, const at::Tensor& x, const Tables& t, int64_t b, int64_t s) {
  const ModelSpec& m = spec_;
  const at::Tensor n1 = normed(u, Role::attn_norm_w, Role::attn_norm_b, x);
  at::Tensor q = lin(u, Role::q_w, Role::q_b, kQProj, n1);
  at::Tensor k = lin(u, Role::k_w, Role::k_b, kKProj, n1);
  const at::Tensor v = lin(u, Role::v_w, Role::v_b, kVProj, n1);
  if (m.position_embedding == PositionEmbedding::rope) {
    q = exec::rope(q, t.cos, t.sin, m.heads, m.head_dim, s);
    k = exec::rope(k, t.cos, t.sin, m.kv_heads, m.head_dim, s);
  }
  const at::Tensor a = exec::attention(q, k, v, t.mask, b, s, m.heads, m.kv_heads, m.head_dim, flash_);
  const at::Tensor h1 = x + lin(u, Role::o_w, Role::o_b, kOProj, a);
  const at::Tensor n2 = normed(u, Role::mlp_norm_w, Role::mlp_norm_b, h1);
  at::Tensor act;
  if (m.activation == Activation::swiglu)
    act = exec::swiglu(lin(u, Role::gate_w, Role::gate_b, kGateProj, n2), lin(u, Role::up_w, Role::up_b, kUpProj, n2));
  else
    act = exec::gelu(lin(u, Role::up_w, Role::up_b, kUpProj, n2));
  return h1 + lin(u, Role::down_w, Role::down_b, kDownProj, act);
}

at::Tensor Model::trunk(const at::Tensor& ids, const Tables& t) {
  const int64_t b = ids.size(0), s = ids.size(1);
  engine_.enter_unit_forward(0);
  at::Tensor x = exec::embedding(&engine_, ids.reshape({-1}), param(0, Role::embed), slot(0, Role::embed),
                           param(0, Role::pos_embed), slot(0, Role::pos_embed), s);
  for (int l = 0; l < spec_.layers; ++l) {
    x = exec::unit_boundary(&engine_, x, l + 1);
    x = layer(l + 1, x, t, b, s);
  }
  return exec::unit_boundary(&engine_, x, head_unit_);
}

at::Tensor Model::head_logits(const at::Tensor& x) {
  const at::Tensor n = normed(head_unit_, Role::final_norm_w, Role::final_norm_b, x);
  if (spec_.tied_embeddings) {
    LinearArgs a;
    a.w = slot(0, Role::embed);
    return exec::linear(&engine_, n, param(0, Role::embed), at::Tensor(), at::Tensor(), at::Tensor(), a);
  }
  return lin(head_unit_, Role::lm_head, Role::none, kQProj, n);
}

at::Tensor Model::loss(const at::Tensor& ids, const at::Tensor& targets, double scale) {
  const Tables t = tables(ids.size(1));
  return exec::cross_entropy(head_logits(trunk(ids, t)), targets.reshape({-1}), scale);
}

at::Tensor Model::logits(const at::Tensor& ids) {
  at::NoGradGuard no_grad;
  const Tables t = tables(ids.size(1));
  return head_logits(trunk(ids, t));
}

}  // namespace paraplan::exec
