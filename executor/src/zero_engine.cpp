#include "zero_engine.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "nf4.hpp"
#include "paraplan/exec/memory_meter.hpp"

namespace paraplan::exec {

struct ZeroEngine::Unit {
  const UnitLayout* layout = nullptr;
  int64_t t_pad = 0, f_pad = 0;      // trainable / frozen elements, padded to a multiple of N
  int64_t t_chunk = 0, f_chunk = 0;  // one rank's share
  at::Tensor t_full, f_full;         // ZeRO 0-2: persistent; ZeRO-3: views of the gather buffer
  at::Tensor t_shard, f_shard;       // ZeRO-3: the persistent own chunks
  at::Tensor master;                 // fp32 master weights: full (ZeRO-0) or own chunk
  at::Tensor grad;                   // ZeRO 0-1: full; ZeRO 2-3: own chunk
  std::vector<at::Tensor> params;      // compute views
  std::vector<at::Tensor> grad_views;  // accumulation targets (undefined for frozen parameters)
  std::vector<int64_t> slots;
  std::vector<Nf4Tensor> nf4;          // QLoRA: per parameter, the NF4 storage of a frozen linear weight
  std::vector<at::Tensor> bf16;        // QLoRA: per parameter, the bf16 storage of another frozen one
  int expected = 0, arrived = 0;
  bool finished = false;
};

namespace {

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

std::vector<int64_t> shape_of(const ParamInfo& p) { return p.shape; }

// QLoRA quantises the weights of linear layers (bitsandbytes replaces nn.Linear); embeddings, norms,
// biases and the head stay in 16 bits.
bool quantised(const ParamInfo& p) {
  switch (p.role) {
    case Role::q_w: case Role::k_w: case Role::v_w: case Role::o_w: case Role::gate_w: case Role::up_w:
    case Role::down_w:
      return !p.trainable;
    default:
      return false;
  }
}

}  // namespace

ZeroEngine::ZeroEngine(const ModelLayout& layout, Communicator& dp, const ZeroEngineOptions& opt, Communicator* tp,
                       Communicator* kv)
    : layout_(layout), dp_(dp), opt_(opt), tp_(tp), kv_(kv) {
  if (opt_.zero < 0 || opt_.zero > 3) throw std::invalid_argument("parallel.zero must be 0..3");
  const int64_t n = dp_.size(), r = dp_.rank();
  int64_t max_t = 0, max_total = 0;
  for (const UnitLayout& ul : layout_.units) {
    auto u = std::make_unique<Unit>();
    u->layout = &ul;
    u->t_pad = round_up(ul.trainable_numel, n);
    u->f_pad = round_up(ul.frozen_numel, n);
    u->t_chunk = u->t_pad / n;
    u->f_chunk = u->f_pad / n;
    max_t = std::max(max_t, u->t_pad);
    max_total = std::max(max_total, u->t_pad + u->f_pad);
    {
      CategoryScope cat(MemCategory::weights);
      if (opt_.zero == 3) {
        u->t_shard = at::zeros({u->t_chunk}, opts(opt_.compute));
        u->f_shard = at::zeros({u->f_chunk}, opts(opt_.compute));
      } else {
        u->t_full = at::zeros({u->t_pad}, opts(opt_.compute));
        if (!opt_.nf4) u->f_full = at::zeros({u->f_pad}, opts(opt_.compute));
      }
      if (opt_.nf4) {  // filled by fill(); here only the slots
        u->nf4.resize(ul.params.size());
        u->bf16.resize(ul.params.size());
      }
    }
    if (opt_.master) {
      CategoryScope cat(MemCategory::master);
      u->master = at::zeros({opt_.zero >= 1 ? u->t_chunk : u->t_pad}, opts(at::kFloat));
    }
    {
      CategoryScope cat(MemCategory::gradients);
      u->grad = at::zeros({opt_.zero >= 2 ? u->t_chunk : u->t_pad}, opts(opt_.grad));
    }
    units_.push_back(std::move(u));
  }
  const int shared = opt_.shared_unit;
  if (opt_.zero >= 2) {
    CategoryScope cat(MemCategory::buffers);
    bucket_ = at::zeros({max_t}, opts(opt_.grad));
    rs_out_ = at::zeros({max_t / n}, opts(opt_.grad));
    if (opt_.zero == 3) gather_buf_ = at::zeros({max_total}, opts(opt_.compute));
    if (shared >= 0) {
      const Unit& su = *units_.at(static_cast<size_t>(shared));
      shared_bucket_ = at::zeros({su.t_pad}, opts(opt_.grad));
      if (opt_.zero == 3) shared_gather_ = at::zeros({su.t_pad + su.f_pad}, opts(opt_.compute));
    }
  }
  if (opt_.nf4) {
    if (opt_.zero == 3) throw std::invalid_argument("QLoRA with ZeRO-3 is not implemented");
    CategoryScope cat(MemCategory::buffers);
    int64_t max_f = 0;
    for (const auto& u : units_)
      if (static_cast<int>(&u - &units_[0]) != shared) max_f = std::max(max_f, u->f_pad);
    dequant_buf_ = at::zeros({max_f}, opts(opt_.compute));
    if (shared >= 0) shared_dequant_ = at::zeros({units_[static_cast<size_t>(shared)]->f_pad}, opts(opt_.compute));
  }
  (void)r;
  // Views. variable_data() gives each parameter its own version counter, so that writing the gather
  // buffer (ZeRO-3) or the flat parameters (optimizer) never trips autograd's saved-tensor check.
  for (size_t ui = 0; ui < units_.size(); ++ui) {
    Unit& u = *units_[ui];
    const bool own = static_cast<int>(ui) == shared;
    if (opt_.zero == 3) {
      const at::Tensor& buf = own ? shared_gather_ : gather_buf_;
      u.t_full = buf.narrow(0, 0, u.t_pad);
      u.f_full = buf.narrow(0, u.t_pad, u.f_pad);
    }
    if (opt_.nf4) u.f_full = (own ? shared_dequant_ : dequant_buf_).narrow(0, 0, u.f_pad);
    for (size_t pi = 0; pi < u.layout->params.size(); ++pi) {
      const ParamInfo& p = u.layout->params[pi];
      const at::Tensor& base = p.trainable ? u.t_full : u.f_full;
      at::Tensor view = base.narrow(0, p.offset, p.numel()).view(shape_of(p)).variable_data();
      if (p.trainable) {
        view.requires_grad_(true);
        const at::Tensor& gbase = opt_.zero >= 2 ? (own ? shared_bucket_ : bucket_) : u.grad;
        u.grad_views.push_back(gbase.narrow(0, p.offset, p.numel()).view(shape_of(p)));
        u.slots.push_back(static_cast<int64_t>(slots_.size()));
        slots_.emplace_back(static_cast<int>(ui), static_cast<int>(pi));
        counts_.push_back(true);
        ++u.expected;
      } else {
        u.grad_views.emplace_back();
        u.slots.push_back(kNoSlot);
      }
      u.params.push_back(view);
    }
  }
}

ZeroEngine::~ZeroEngine() = default;

const std::vector<at::Tensor>& ZeroEngine::params(int unit) const { return units_.at(static_cast<size_t>(unit))->params; }

int64_t ZeroEngine::slot_id(int unit, size_t param) const { return units_.at(static_cast<size_t>(unit))->slots.at(param); }

int64_t ZeroEngine::alias_slot(int64_t slot) {
  if (slot == kNoSlot) return kNoSlot;
  slots_.push_back(slots_.at(static_cast<size_t>(slot)));
  counts_.push_back(false);
  return static_cast<int64_t>(slots_.size()) - 1;
}

at::Tensor ZeroEngine::grad_of(int unit, size_t param) const {
  if (opt_.zero >= 2) throw std::logic_error("grad_of: gradients are sharded under ZeRO-2/3");
  return units_.at(static_cast<size_t>(unit))->grad_views.at(param);
}

void ZeroEngine::fill(const std::function<void(const ParamInfo&, at::Tensor&)>& value) {
  at::NoGradGuard no_grad;
  const int64_t r = dp_.rank();
  for (auto& up : units_) {
    Unit& u = *up;
    CategoryScope cat(MemCategory::other);  // set-up temporaries, freed before training starts
    at::Tensor t = at::zeros({u.t_pad}, opts(at::kFloat)), f = at::zeros({u.f_pad}, opts(at::kFloat));
    for (const ParamInfo& p : u.layout->params) {
      at::Tensor dst = (p.trainable ? t : f).narrow(0, p.offset, p.numel()).view(shape_of(p));
      value(p, dst);
    }
    if (opt_.zero == 3) {
      u.t_shard.copy_(t.narrow(0, r * u.t_chunk, u.t_chunk));
      u.f_shard.copy_(f.narrow(0, r * u.f_chunk, u.f_chunk));
      gathered_ = -1;
      shared_gathered_ = false;
    } else if (opt_.nf4) {
      u.t_full.copy_(t);
      for (size_t pi = 0; pi < u.layout->params.size(); ++pi) {
        const ParamInfo& p = u.layout->params[pi];
        if (p.trainable) continue;
        const at::Tensor v = f.narrow(0, p.offset, p.numel());
        CategoryScope weights(MemCategory::weights);
        if (quantised(p))
          u.nf4[pi] = nf4_quantize(v, opt_.device);
        else
          u.bf16[pi] = v.to(opts(at::kBFloat16));
      }
      dequantised_ = -1;
      shared_dequantised_ = false;
    } else {
      u.t_full.copy_(t);
      u.f_full.copy_(f);
    }
    if (opt_.master) u.master.copy_(opt_.zero >= 1 ? t.narrow(0, r * u.t_chunk, u.t_chunk) : t);
  }
}

void ZeroEngine::visit_full(const std::function<void(const ParamInfo&, const at::Tensor&)>& use) {
  at::NoGradGuard no_grad;
  for (size_t ui = 0; ui < units_.size(); ++ui) {
    Unit& u = *units_[ui];
    gather(static_cast<int>(ui));
    for (size_t pi = 0; pi < u.layout->params.size(); ++pi) use(u.layout->params[pi], u.params[pi]);
  }
}

void ZeroEngine::dequantise(int unit) {
  const bool shared = unit == opt_.shared_unit;
  if (shared ? shared_dequantised_ : dequantised_ == unit) return;
  Unit& u = *units_.at(static_cast<size_t>(unit));
  at::NoGradGuard no_grad;
  for (size_t pi = 0; pi < u.layout->params.size(); ++pi) {
    const ParamInfo& p = u.layout->params[pi];
    if (p.trainable) continue;
    at::Tensor dst = u.f_full.narrow(0, p.offset, p.numel());
    if (u.nf4[pi].numel > 0)
      nf4_dequantize(u.nf4[pi], dst);
    else
      dst.copy_(u.bf16[pi].view({-1}));
  }
  if (shared)
    shared_dequantised_ = true;
  else
    dequantised_ = unit;
}

void ZeroEngine::gather(int unit) {
  if (opt_.nf4) dequantise(unit);
  if (opt_.zero != 3 || gathered_ == unit) return;
  const bool shared = unit == opt_.shared_unit;
  if (shared && shared_gathered_) return;  // gathered once per step, into its own buffer
  Unit& u = *units_.at(static_cast<size_t>(unit));
  const int64_t r = dp_.rank();
  CategoryScope cat(MemCategory::buffers);
  const at::Tensor& buf = shared ? shared_gather_ : gather_buf_;
  at::Tensor t = buf.narrow(0, 0, u.t_pad), f = buf.narrow(0, u.t_pad, u.f_pad);
  if (u.t_pad > 0) {
    t.narrow(0, r * u.t_chunk, u.t_chunk).copy_(u.t_shard);
    dp_.allgather(t);
  }
  if (u.f_pad > 0) {
    f.narrow(0, r * u.f_chunk, u.f_chunk).copy_(u.f_shard);
    dp_.allgather(f);
  }
  if (shared)
    shared_gathered_ = true;
  else
    gathered_ = unit;
}

void ZeroEngine::begin_step() {
  at::NoGradGuard no_grad;
  for (auto& u : units_) u->grad.zero_();
  if (shared_bucket_.defined()) shared_bucket_.zero_();
  pending_.clear();
}

void ZeroEngine::begin_grads(int chunk, bool last, bool w_pass) {
  last_micro_ = last;
  w_pass_ = w_pass;
  for (auto& u : units_)
    if (u->layout->chunk == chunk) {
      u->arrived = 0;
      u->finished = false;
    }
  bucket_unit_ = -1;
}

void ZeroEngine::end_grads(int chunk) {
  // Units whose backward had no boundary node after them (the embedding; units before the first
  // trainable parameter under LoRA), last to first as the backward visits them, the same on all ranks.
  for (int ui = units() - 1; ui >= 0; --ui)
    if (units_[static_cast<size_t>(ui)]->layout->chunk == chunk) finish_unit(ui);
  w_pass_ = false;
}

void ZeroEngine::end_step() {
  for (auto& p : pending_) p->wait();
  pending_.clear();
}

void ZeroEngine::finish_unit(int unit) {
  Unit& u = *units_.at(static_cast<size_t>(unit));
  if (u.finished) return;
  u.finished = true;
  if (u.expected == 0) return;
  if (u.arrived != u.expected)
    throw std::logic_error("unit " + std::to_string(unit) + ": " + std::to_string(u.arrived) + " of " +
                           std::to_string(u.expected) + " gradients arrived before its reduction");
  at::NoGradGuard no_grad;
  CategoryScope cat(MemCategory::buffers);
  if (opt_.zero <= 1) {
    if (!last_micro_) return;  // ZeRO-0/1 accumulate over micro-batches and reduce once
    sum_partial_grads(u);
    if (dp_.size() > 1) pending_.push_back(dp_.allreduce_async(u.grad));
    return;
  }
  sum_partial_grads(u);
  const bool shared = unit == opt_.shared_unit;
  at::Tensor flat = (shared ? shared_bucket_ : bucket_).narrow(0, 0, u.t_pad);
  at::Tensor out = rs_out_.narrow(0, 0, u.t_chunk);
  dp_.reduce_scatter(flat, out);
  u.grad.add_(out);
  if (shared)
    shared_bucket_.zero_();  // the head's next contribution accumulates afresh
  else
    bucket_unit_ = -1;
}

void ZeroEngine::sum_partial_grads(Unit& u) {
  for (size_t pi = 0; pi < u.layout->params.size(); ++pi) {
    const ParamInfo& p = u.layout->params[pi];
    if (!p.trainable || p.grad_sum == GradSum::none) continue;
    Communicator* c = p.grad_sum == GradSum::tp ? tp_ : kv_;
    if (!c || c->size() == 1) continue;
    c->allreduce(u.grad_views[pi]);
  }
}

at::Tensor ZeroEngine::slot(int64_t id) {
  const auto [ui, pi] = slots_.at(static_cast<size_t>(id));
  Unit& u = *units_[static_cast<size_t>(ui)];
  if (opt_.zero >= 2 && ui != opt_.shared_unit && bucket_unit_ != ui) {
    if (bucket_unit_ >= 0 && !units_[static_cast<size_t>(bucket_unit_)]->finished)
      throw std::logic_error("unit " + std::to_string(ui) + " needs the gradient bucket while unit " +
                             std::to_string(bucket_unit_) + " still holds it");
    bucket_.narrow(0, 0, u.t_pad).zero_();
    bucket_unit_ = ui;
  }
  return u.grad_views[static_cast<size_t>(pi)];
}

void ZeroEngine::arrived(int64_t id) {
  if (!counts_.at(static_cast<size_t>(id))) return;
  const int ui = slots_.at(static_cast<size_t>(id)).first;
  Unit& u = *units_[static_cast<size_t>(ui)];
  ++u.arrived;
  if (w_pass_ && u.arrived == u.expected) finish_unit(ui);
}

void ZeroEngine::enter_unit_forward(int unit) { gather(unit); }

void ZeroEngine::leave_unit_backward(int unit) {
  if (!deferring()) finish_unit(unit);
  if (unit > 0 && units_[static_cast<size_t>(unit - 1)]->layout->chunk == units_[static_cast<size_t>(unit)]->layout->chunk)
    gather(unit - 1);
}

ZeroEngine::OptimizerSlice ZeroEngine::optimizer_slice(int unit) {
  Unit& u = *units_.at(static_cast<size_t>(unit));
  const int64_t r = dp_.rank();
  OptimizerSlice s;
  at::Tensor own;  // this rank's compute parameters
  if (opt_.zero == 0)
    own = u.t_full;
  else if (opt_.zero == 3)
    own = u.t_shard;
  else
    own = u.t_full.narrow(0, r * u.t_chunk, u.t_chunk);
  s.grads = opt_.zero == 1 ? u.grad.narrow(0, r * u.t_chunk, u.t_chunk) : u.grad;
  if (opt_.master) {
    s.values = u.master;
    s.compute = own;
  } else {
    s.values = own;
  }
  return s;
}

int64_t ZeroEngine::persistent_bytes(MemCategory c) const {
  auto n = [](const at::Tensor& t) { return t.defined() ? static_cast<int64_t>(t.nbytes()) : int64_t{0}; };
  int64_t sum = 0;
  for (const auto& u : units_) {
    if (c == MemCategory::weights) {
      sum += opt_.zero == 3 ? n(u->t_shard) + n(u->f_shard) : n(u->t_full) + (opt_.nf4 ? 0 : n(u->f_full));
      for (const Nf4Tensor& q : u->nf4) sum += n(q.codes) + n(q.qabsmax) + n(q.absmax2) + n(q.offset);
      for (const at::Tensor& b : u->bf16) sum += n(b);
    }
    if (c == MemCategory::gradients) sum += n(u->grad);
    if (c == MemCategory::master) sum += n(u->master);
  }
  if (c == MemCategory::buffers)
    sum += n(bucket_) + n(rs_out_) + n(gather_buf_) + n(shared_bucket_) + n(shared_gather_) + n(dequant_buf_) +
           n(shared_dequant_);
  return sum;
}

ZeroEngine::Owned ZeroEngine::owned(int unit) {
  if (opt_.nf4) dequantise(unit);  // the frozen values this rank trains on
  Unit& u = *units_.at(static_cast<size_t>(unit));
  const int64_t r = dp_.rank();
  Owned o;
  o.trainable = opt_.zero == 3 ? u.t_shard : u.t_full.narrow(0, r * u.t_chunk, u.t_chunk);
  o.frozen = opt_.zero == 3 ? u.f_shard : u.f_full.narrow(0, r * u.f_chunk, u.f_chunk);
  if (opt_.master) o.master = opt_.zero >= 1 ? u.master : u.master.narrow(0, r * u.t_chunk, u.t_chunk);
  return o;
}

void ZeroEngine::replicate_owned() {
  at::NoGradGuard no_grad;
  CategoryScope cat(MemCategory::buffers);
  if (opt_.zero < 3 && dp_.size() > 1)
    for (auto& u : units_) {
      if (u->t_pad == 0) continue;
      dp_.allgather(u->t_full);
      if (opt_.master && opt_.zero == 0) dp_.allgather(u->master);
    }
  gathered_ = -1;  // ZeRO-3: the shards changed
  shared_gathered_ = false;
}

void ZeroEngine::after_optimizer() {
  if (opt_.zero == 1 || opt_.zero == 2) {
    at::NoGradGuard no_grad;
    CategoryScope cat(MemCategory::buffers);
    for (auto& u : units_)
      if (u->t_pad > 0 && dp_.size() > 1) dp_.allgather(u->t_full);
  }
  if (opt_.zero == 3) {
    gathered_ = -1;  // the shards changed: the next forward gathers again
    shared_gathered_ = false;
  }
}

}  // namespace paraplan::exec
