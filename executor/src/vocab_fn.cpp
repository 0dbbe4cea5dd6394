// The vocabulary ends of the model: the token embedding and the cross-entropy loss, each split over the
// tensor-parallel ranks by vocabulary rows as Megatron's VocabParallelEmbedding and
// vocab_parallel_cross_entropy do (megatron/core/tensor_parallel/layers.py, cross_entropy.py).
#include <torch/autograd.h>

#include "functions.hpp"
#include "paraplan/exec/memory_meter.hpp"
#include "paraplan/exec/communicator.hpp"
#include "tp_comm.hpp"
#include "op_classes.hpp"

namespace paraplan::exec {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

GradSink* sink_of(AutogradContext* ctx) { return reinterpret_cast<GradSink*>(ctx->saved_data["sink"].toInt()); }


// ids - start, with the ids outside [start, start + rows) set to 0; `outside` marks them.
at::Tensor local_ids(const at::Tensor& ids, int64_t start, int64_t rows, at::Tensor& outside) {
  at::Tensor local = ids - start;
  outside = local.lt(0).logical_or_(local.ge(rows));
  local.masked_fill_(outside, 0);
  return local;
}

// Adds the position rows of token rows [first, first + x.size(0)) of sequences of length s:
// dst[i] op= src[(first + i) mod s], in whole runs of one sequence (no temporary).
template <class F>
void by_position(int64_t first, int64_t rows, int64_t s, F&& f) {
  for (int64_t i = 0; i < rows;) {
    const int64_t p = (first + i) % s, len = std::min(s - p, rows - i);
    f(i, p, len);
    i += len;
  }
}

struct EmbeddingFn : torch::autograd::Function<EmbeddingFn> {
  // Keeps the token ids. Under TP the lookup's partial rows are summed over the group (reduce-scattered
  // to token slices under SP); positions are added after that.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& ids, const at::Tensor& w,
                            const c10::optional<at::Tensor>& pos, int64_t sink, std::vector<int64_t> args,
                            std::vector<int64_t> tpv) {
    const OpScope scope(kMemory);
    const TpGroup tp = unpack_tp(tpv);
    const int64_t seq_len = args[2], start = args[3];
    at::Tensor out;
    if (tp.active()) {
      at::Tensor outside;
      const at::Tensor local = local_ids(ids, start, w.size(0), outside);
      out = w.index_select(0, local);
      out.masked_fill_(outside.unsqueeze(1), 0);
      if (tp.sequence_parallel())
        out = tp_reduce_scatter_rows(tp, out);
      else
        tp_allreduce(tp, out);
    } else {
      out = w.index_select(0, ids);
    }
    if (pos) {
      const int64_t first = tp.sequence_parallel() ? tp.rank * out.size(0) : 0;
      by_position(first, out.size(0), seq_len,
                  [&](int64_t i, int64_t p, int64_t len) { out.narrow(0, i, len).add_(pos->narrow(0, p, len)); });
    }
    ctx->save_for_backward({ids});
    ctx->saved_data["sink"] = sink;
    ctx->saved_data["args"] = args;
    ctx->saved_data["tp"] = tpv;
    return out;
  }
  // Alive: dy (and its gathered copy under SP); under TP the masked copy of dy [T, h] added into the
  // table's gradient.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    memory_mark("bwd embedding");
    const at::Tensor ids = ctx->get_saved_variables()[0];
    const at::Tensor dy = grads[0].contiguous();
    GradSink* sink = sink_of(ctx);
    const auto args = ctx->saved_data["args"].toIntVector();
    const TpGroup tp = unpack_tp(ctx->saved_data["tp"].toIntVector());
    const at::Tensor dyg = tp.sequence_parallel() ? tp_gather_rows(tp, dy) : dy;
    const int64_t own_rows = dy.size(0);
    if (args[0] != kNoSlot || args[1] != kNoSlot) sink->weight_grad(kMemory, [sink, tp, ids, dyg, args, own_rows] {
      const int64_t w_slot = args[0], pos_slot = args[1], s = args[2], start = args[3];
      if (w_slot != kNoSlot) {
        at::Tensor g = sink->slot(w_slot);
        const at::Tensor d = dyg.scalar_type() == g.scalar_type() ? dyg : dyg.to(g.scalar_type());
        if (tp.active()) {
          at::Tensor outside;
          const at::Tensor local = local_ids(ids, start, g.size(0), outside);
          g.index_add_(0, local, d.masked_fill(outside.unsqueeze(1), 0));
        } else {
          g.index_add_(0, ids, d);
        }
        sink->arrived(w_slot);
      }
      if (pos_slot != kNoSlot) {
        at::Tensor g = sink->slot(pos_slot);
        const int64_t first = tp.sequence_parallel() ? tp.rank * own_rows : 0;
        const at::Tensor mine = tp.sequence_parallel() ? dyg.narrow(0, first, own_rows) : dyg;
        by_position(first, own_rows, s, [&](int64_t i, int64_t p, int64_t len) {
          accumulate(g.narrow(0, p, len), mine.narrow(0, i, len));
        });
        sink->arrived(pos_slot);
      }
    });
    return {{}, {}, {}, {}, {}, {}};
  }
};

struct CrossEntropyFn : torch::autograd::Function<CrossEntropyFn> {
  // Keeps the logits, their fp32 log-sum-exp [T] and the targets. Under TP the log-sum-exp of each
  // rank's columns is all-gathered and combined ([tp, T] fp32), and the target's logit, taken by the rank
  // that holds it, is summed over the group.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets, double scale,
                            std::vector<int64_t> args, std::vector<int64_t> tpv) {
    const OpScope scope(kMemory);
    const TpGroup tp = unpack_tp(tpv);
    const int64_t start = args[0], valid = args[1], T = logits.size(0);
    const at::Tensor lf = wide(logits);
    const at::Tensor lv = valid < lf.size(1) ? lf.narrow(1, 0, valid) : lf;
    at::Tensor lse, picked;
    if (tp.active()) {
      const at::Tensor mine = at::logsumexp(lv, {1}, false);
      at::Tensor all = at::empty({tp.size * T}, mine.options());
      all.narrow(0, tp.rank * T, T).copy_(mine);
      tp.comm->allgather(all);
      lse = at::logsumexp(all.view({tp.size, T}), {0}, false);
      at::Tensor outside;
      const at::Tensor local = local_ids(targets, start, valid, outside);
      picked = lf.gather(1, local.unsqueeze(1)).squeeze(1);
      picked.masked_fill_(outside, 0);
      tp_allreduce(tp, picked);
    } else {
      lse = at::logsumexp(lv, {1}, false);
      picked = lf.gather(1, targets.unsqueeze(1)).squeeze(1);
    }
    at::Tensor loss = (lse - picked).sum().mul_(scale);
    ctx->save_for_backward({logits, targets, lse});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["args"] = args;
    ctx->saved_data["tp"] = tpv;
    return loss;
  }
  // d logits = (softmax(logits) - onehot(target)) * g * scale, zero on padding columns. Alive at its peak:
  // the logits, their fp32 gradient [T, V / tp] and, for 16-bit logits, its 16-bit copy.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OpScope scope(kMemory);
    memory_mark("bwd loss");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &logits = saved[0], &targets = saved[1], &lse = saved[2];
    const auto args = ctx->saved_data["args"].toIntVector();
    const TpGroup tp = unpack_tp(ctx->saved_data["tp"].toIntVector());
    const int64_t start = args[0], valid = args[1];
    const double g = grads[0].item<double>() * ctx->saved_data["scale"].toDouble();
    at::Tensor d = at::sub(logits, lse.unsqueeze(1)).exp_();  // fp32 (type promotion with the fp32 lse)
    if (valid < d.size(1)) d.narrow(1, valid, d.size(1) - valid).zero_();
    if (tp.active()) {
      at::Tensor outside;
      const at::Tensor local = local_ids(targets, start, valid, outside);
      d.scatter_add_(1, local.unsqueeze(1),
                     at::full({targets.size(0), 1}, -1.0, d.options()).masked_fill_(outside.unsqueeze(1), 0));
    } else {
      d.scatter_add_(1, targets.unsqueeze(1), at::full({targets.size(0), 1}, -1.0, d.options()));
    }
    d.mul_(g);
    if (d.scalar_type() != logits.scalar_type()) d = d.to(logits.scalar_type());
    return {d, {}, {}, {}, {}};
  }
};

c10::optional<at::Tensor> maybe(const at::Tensor& t) { return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt; }

}  // namespace

at::Tensor embedding(GradSink* sink, const TpGroup& tp, const at::Tensor& ids, const EmbeddingArgs& a) {
  return EmbeddingFn::apply(ids, a.w, maybe(a.pos), reinterpret_cast<int64_t>(sink),
                            std::vector<int64_t>{a.w_slot, a.pos_slot, a.seq_len, a.vocab_start}, pack_tp(tp));
}

at::Tensor cross_entropy(const TpGroup& tp, const at::Tensor& logits, const at::Tensor& targets, double scale,
                         int64_t vocab_start, int64_t valid) {
  return CrossEntropyFn::apply(logits, targets, scale, std::vector<int64_t>{vocab_start, valid}, pack_tp(tp));
}

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets, double scale) {
  return cross_entropy(TpGroup{}, logits, targets, scale, 0, logits.size(1));
}

}  // namespace paraplan::exec
