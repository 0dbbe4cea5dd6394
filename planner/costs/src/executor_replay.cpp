// The executor's allocation sequence for one micro-batch through one model chunk (executor_replay.hpp):
// Model::layer and forward_chunk (model.cpp) and the backward autograd runs through them, composed of the
// op replays of executor_replay_ops.cpp.
#include "executor_replay.hpp"

#include <vector>

#include "executor_replay_ops.hpp"

namespace paraplan::planner {

using namespace replay_ops;

namespace {

// Which ops of a layer autograd records, found by its forward (LoRA's frozen prefix: in model chunk
// 0 the embedding is frozen, so nothing is recorded before the first adapter).
struct LayerNodes {
  bool attn_norm = true, qkv = true, rope = true, attention = true, o = true, attn_drop = true, mlp_norm = true,
       fc1 = true, act = true, down = true, mlp_drop = true;
  bool output_flows = true;  // the layer's output needs a gradient
};

std::vector<double> qkv_widths(const ExecDims& x) { return {x.q, x.k, x.k}; }
std::vector<bool> qkv_lora(const ExecDims& x) {
  return {x.adapter(kQProj), x.adapter(kKProj), x.adapter(kVProj)};
}
std::vector<double> fc1_widths(const ExecDims& x) {
  return x.swiglu ? std::vector<double>{x.f, x.f} : std::vector<double>{x.f};
}
std::vector<bool> fc1_lora(const ExecDims& x) {
  return x.swiglu ? std::vector<bool>{x.adapter(kGateProj), x.adapter(kUpProj)} : std::vector<bool>{x.adapter(kUpProj)};
}
bool any(const std::vector<bool>& v) {
  for (bool b : v)
    if (b) return true;
  return false;
}


// A residual branch's entry, forward: its norm (`norm_mark`), then its column-parallel projection(s)
// (`column_mark`; widths `widths`, LoRA `lora`). Sets whether autograd records each (`norm_node`: the input
// needs a gradient or the norm trains; `column_node`: the norm's output needs one or a weight trains) and
// returns whether the gradient flows on (the column's node).
bool branch_in_fwd(Replay& r, const ExecDims& x, const char* norm_mark, const char* column_mark, bool flows, bool grad,
                   const std::vector<double>& widths, const std::vector<bool>& lora, bool& norm_node,
                   bool& column_node) {
  r.mark(norm_mark);
  norm_node = grad && (flows || !x.frozen_base);
  norm_fwd(r, x, norm_node);
  r.mark(column_mark);
  column_node = grad && (norm_node || !x.frozen_base || any(lora));
  column_fwd(r, x, widths, lora);
  for (size_t i = 0; i < lora.size() && !column_node; ++i)
    if (lora[i]) r.free(x.d * x.T * x.r);  // x A^T not kept
  return column_node;
}

// Model::layer (model.cpp) forward, its input alive; `flows`: the input needs a gradient; `grad`: autograd
// records at all (false in the first pass of full recompute). Leaves its output alive.
LayerNodes layer_fwd(Replay& r, const ExecDims& x, bool flows, bool grad) {
  LayerNodes n;
  const double act = x.d * x.Tl * x.h, tf = x.d * x.T * x.f;
  flows = branch_in_fwd(r, x, "fwd attn_norm", "fwd qkv", flows, grad, qkv_widths(x), qkv_lora(x), n.attn_norm, n.qkv);
  r.mark("fwd rope");
  n.rope = flows;
  if (x.rope) {
    r.alloc(x.d * x.T * x.q);
    r.free(x.d * x.T * x.q);
    r.alloc(x.d * x.T * x.k);
    r.free(x.d * x.T * x.k);
  }
  r.mark("fwd attention");
  n.attention = flows;
  attention_fwd(r, x, n.attention);
  if (!n.attention) r.free(x.d * x.T * (x.q + 2 * x.k));  // qkv.clear()
  r.mark("fwd o_proj");
  n.o = grad && (flows || !x.frozen_base || x.adapter(kOProj));
  row_fwd(r, x, x.adapter(kOProj));
  if (!n.o && x.adapter(kOProj)) r.free(x.d * x.T * x.r);
  if (!n.o) r.free(x.d * x.T * x.q);  // a.reset()
  flows = n.o;
  r.mark("fwd residual1");
  n.attn_drop = flows;
  if (x.dropout) dropout_fwd(r, x, x.Tl * x.h);
  r.alloc(act);  // h1 = x + o
  if (x.dropout) {
    r.free(act);  // the dropped-out copy
    if (!n.attn_drop) r.free(x.Tl * x.h);
  }
  r.free(act);  // o.reset()
  flows = branch_in_fwd(r, x, "fwd mlp_norm", "fwd fc1+act", flows, grad, fc1_widths(x), fc1_lora(x), n.mlp_norm,
                        n.fc1);
  n.act = flows;
  r.alloc(tf);  // silu(gate) * up, or gelu(x)
  if (!n.act) r.free(x.swiglu ? 2 * tf : tf);  // gate and up (or the GeLU input) not kept
  r.mark("fwd fc2");
  n.down = grad && (flows || !x.frozen_base || x.adapter(kDownProj));
  row_fwd(r, x, x.adapter(kDownProj));
  if (!n.down && x.adapter(kDownProj)) r.free(x.d * x.T * x.r);
  if (!n.down) r.free(tf);  // act.reset()
  flows = n.down;
  r.mark("fwd residual2");
  n.mlp_drop = flows;
  if (x.dropout) dropout_fwd(r, x, x.Tl * x.h);
  r.alloc(act);  // h1 + d
  if (x.dropout) {
    r.free(act);
    if (!n.mlp_drop) r.free(x.Tl * x.h);
  }
  r.free(act);                      // d
  if (!n.fc1) r.free(act);          // n2
  if (!n.mlp_norm) r.free(act);     // h1
  if (!n.qkv) r.free(act);          // n1
  n.output_flows = flows;
  return n;
}

// A residual branch's gradient backward through its dropout (when the branch has one: `dropout_node`) and
// its row-parallel output projection (`row_node`; LoRA target `target`, input width `in`; `input_grad`: the
// node before it needs a gradient). `alone`: the branch is the incoming gradient's only holder. Returns
// whether the projection's W closure keeps the incoming gradient itself.
bool branch_out_bwd(Replay& r, const ExecDims& x, bool dropout_node, bool row_node, LoraTarget target, double in,
                    bool input_grad, bool alone, bool train, bool row_keeps_incoming, Deferred* w) {
  const double act = x.d * x.Tl * x.h, mask = x.Tl * x.h;
  bool fresh = false;  // the gradient entering the projection is the dropout's own
  if (x.dropout && dropout_node) {
    r.mark("bwd dropout");
    r.scalar_op(act);
    r.free(mask);
    if (alone) r.free(act);
    alone = false;
    fresh = true;
  }
  if (!row_node) return false;
  r.mark("bwd row");
  Deferred* rw = train || x.adapter(target) ? w : nullptr;
  row_bwd(r, x, in, x.adapter(target), x.all_bias, input_grad, fresh || alone, rw);
  return rw && row_keeps_incoming && !fresh;
}

// A residual branch's column-parallel input projection(s), backward (`input_grad`: the norm before them
// needs a gradient).
void branch_in_bwd(Replay& r, const ExecDims& x, const std::vector<double>& widths, const std::vector<bool>& lora,
                   bool bias, bool input_grad, bool train, Deferred* w) {
  r.mark("bwd column");
  const bool t = train || any(lora);
  column_bwd(r, x, widths, lora, bias, input_grad, t ? w : nullptr, t);
}

// The norm at a branch's entry, backward (when `norm_node`); when `flows` the residual path's gradient
// is added to the norm's dx into a new tensor, and the old residual gradient freed when `frees_residual`.
void norm_and_residual_bwd(Replay& r, const ExecDims& x, bool norm_node, bool train, bool frees_input, bool flows,
                           bool frees_residual, Deferred* w) {
  if (!norm_node) return;
  const double act = x.d * x.Tl * x.h;
  r.mark("bwd norm");
  norm_bwd(r, x, train, frees_input, w);
  if (flows) {
    r.alloc(act);
    r.free(act);  // the norm's dx
    if (frees_residual) r.free(act);
  }
}

// The layer's backward, entered with g (the output's gradient) alive. g goes to two places (residual2's
// AddBackward): the MLP branch and, when h1 needs a gradient, the residual path, which keeps it until the
// MLP norm's gradient is added to it. `in_flows`: the layer input needs a gradient (then h1's gradient
// is shared the same way). `g_held`: someone else (the runner's received gradient, a recompute node's
// incoming one) keeps g. `frees_input`: the attention norm's node is the last holder of the layer
// input. `w`: zero-bubble B pass (weight gradients kept). Ends with the input's gradient alive. Returns
// whether a kept weight gradient (the down projection's) holds g itself.
bool layer_bwd(Replay& r, const ExecDims& x, const LayerNodes& n, bool in_flows, bool g_held, bool frees_input,
               Deferred* w) {
  const double tf = x.d * x.T * x.f;
  const bool train = !x.frozen_base;
  const bool h1_flows = in_flows || n.o;
  // Without dropout and SP a kept row-parallel weight gradient holds its incoming gradient itself.
  const bool row_keeps_incoming = w && !x.sp;
  // g_kept: the down projection's W closure holds g; the MLP branch is g's only holder unless h1 flows on
  // or the caller holds g.
  const bool g_kept = branch_out_bwd(r, x, n.mlp_drop, n.down, kDownProj, x.f, n.act, !h1_flows && !g_held, train,
                                     row_keeps_incoming, w);
  if (n.act) {
    r.mark(x.swiglu ? "bwd swiglu" : "bwd gelu");
    if (x.swiglu) {
      r.alloc(tf);      // sigmoid(gate)
      r.alloc(tf);      // d up
      r.scalar_op(tf);  // d gate = (1 - sigmoid) ...
      r.scalar();       // + 1
      r.free(tf);
      r.free(tf);      // dy
      r.free(2 * tf);  // gate, up
    } else {
      r.alloc(tf);
      r.free(tf);  // dy
      r.free(tf);  // x
    }
  }
  if (n.fc1) branch_in_bwd(r, x, fc1_widths(x), fc1_lora(x), x.all_bias, n.mlp_norm, train, w);
  norm_and_residual_bwd(r, x, n.mlp_norm, train, true, h1_flows, !g_held && !g_kept, w);
  // h1's gradient: to the attention branch and, when the input needs one, to the residual path.
  const bool acc_kept =
      branch_out_bwd(r, x, n.attn_drop, n.o, kOProj, x.q, n.attention, !in_flows, train, row_keeps_incoming, w);
  if (n.attention) {
    r.mark("bwd attention");
    attention_bwd(r, x);
    r.free(x.d * x.T * x.q);  // dO
    r.free(x.d * x.T * (x.q + 2 * x.k));
    if (x.flash && !x.selective) r.free(4 * rows(x));
    if (!x.flash && !x.selective) {
      r.free(4 * scores(x));
      if (x.dropout) r.free(scores(x));
    }
  }
  if (n.rope && x.rope) {
    r.mark("bwd rope");
    r.alloc(x.d * x.T * x.k);
    r.free(x.d * x.T * x.k);
    r.mark("bwd rope");
    r.alloc(x.d * x.T * x.q);
    r.free(x.d * x.T * x.q);
  }
  if (n.qkv) branch_in_bwd(r, x, qkv_widths(x), qkv_lora(x), x.qkv_bias, n.attn_norm, train, w);
  norm_and_residual_bwd(r, x, n.attn_norm, train, frees_input, in_flows, !acc_kept, w);
  return g_kept;
}
}  // namespace


ChunkBytes chunk_bytes(const ExecDims& x, const ChunkShape& c) {
  Replay r(0, true);
  replay_forward(r, x, c);
  ChunkBytes b;
  b.output = c.head ? 0 : x.d * x.Tl * x.h;
  b.saved = r.cur - b.output;
  return b;
}

namespace {

// The layers' nodes as the forward found them (LoRA's frozen prefix).
std::vector<LayerNodes> chunk_nodes(const ExecDims& x, const ChunkShape& c) {
  Replay quiet(0, true);
  std::vector<LayerNodes> out;
  bool flows = c.embedding ? !x.frozen_base : true;
  for (int l = 0; l < c.layers; ++l) {
    out.push_back(layer_fwd(quiet, x, flows, true));
    flows = out.back().output_flows;
  }
  return out;
}

}  // namespace

void replay_forward(Replay& r, const ExecDims& x, const ChunkShape& c) {
  const double act = x.d * x.Tl * x.h;
  // Trainer::Impl::batch: ids and targets [b, s] int64; the ones the chunk does not need are freed.
  r.alloc(8 * x.T);
  r.alloc(8 * x.T);
  if (!c.head) r.free(8 * x.T);
  if (!c.embedding) r.free(8 * x.T);
  bool flows = true;  // a received activation needs its gradient
  if (c.embedding) {
    r.mark("embedding");
    if (x.tp) {
      local_ids(r, x.T);
      r.alloc(x.d * x.T * x.h);
      if (x.sp) {
        r.alloc(act);
        r.alloc(act);
        r.free(act);
        r.free(x.d * x.T * x.h);
      }
      r.free(8 * x.T);
      r.free(x.T);
    } else {
      r.alloc(act);
    }
    flows = !x.frozen_base;
    if (x.dropout) {
      dropout_fwd(r, x, x.Tl * x.h);
      r.free(act);  // the embedding output
      if (!flows) r.free(x.Tl * x.h);
    }
  }
  for (int l = 0; l < c.layers; ++l) {
    const bool pipeline_input = l == 0 && !c.embedding;  // the runner holds it
    if (x.full) {
      layer_fwd(r, x, flows, false);  // RecomputeFn keeps only its input
      flows = true;                   // its output needs a gradient: the layer's trainable parameters
    } else {
      const LayerNodes n = layer_fwd(r, x, flows, true);
      if (!n.attn_norm && !pipeline_input) r.free(act);  // x = layer(x): the old x, kept by no node
      flows = n.output_flows;
    }
  }
  if (c.head) {
    r.mark("fwd final_norm");
    norm_fwd(r, x, true);
    r.mark("fwd head");
    column_fwd(r, x, {x.vocab_rows}, {false});
    r.mark("fwd loss");
    loss_fwd(r, x, x.tp_size);
  }
  // A frozen embedding (LoRA) records no node: nothing keeps the ids once the micro-batch is dropped.
  if (c.embedding && x.frozen_base) r.free(8 * x.T);
  if (c.head) r.free(4);  // the loss, read and dropped by the pipeline runner
}

void replay_backward(Replay& r, const ExecDims& x, const ChunkShape& c, const UnitReduce& rs, bool received,
                     const std::function<void()>& after_receive, Deferred* w) {
  const double act = x.d * x.Tl * x.h, T = x.T;
  const bool train = !x.frozen_base;
  const bool norms_kept = w && train;  // the norms' W closures hold their inputs
  // The unit's reduce-scatter: at its boundary now, or at its last kept weight gradient.
  auto finish_unit = [&](size_t items_before, double bytes) {
    if (!w) {
      r.alloc_buffer(bytes);
      r.free_buffer(bytes);
    } else if (w->size() > items_before) {
      w->back().rs = bytes;
    }
  };
  if (c.head)
    r.alloc(4);  // the seed of the loss
  else if (received)
    r.alloc(act);  // the received gradient
  after_receive();
  bool g_fresh = c.head;  // the gradient entering the top layer: freed at its first accumulation
  bool top_kept = false;  // the received gradient is held by a kept weight gradient of the top layer
  if (c.head) {
    const size_t before = w ? w->size() : 0;
    r.mark("bwd loss");
    loss_bwd(r, x);
    r.free(x.d * T * x.vocab_rows);  // logits
    r.free(8 * T);                   // targets
    r.free(4 * T);                   // log-sum-exp
    r.mark("bwd column");
    column_bwd(r, x, {x.vocab_rows}, {false}, false, true, train ? w : nullptr, train);
    r.mark("bwd norm");
    norm_bwd(r, x, train, true, w);
    finish_unit(before, rs.head);
  }
  const std::vector<LayerNodes> nodes = chunk_nodes(x, c);
  for (int l = c.layers - 1; l >= 0; --l) {
    const size_t before = w ? w->size() : 0;
    const bool pipeline_input = l == 0 && !c.embedding;
    const bool in_flows = l > 0 || !c.embedding || train;
    if (x.full) {
      r.mark("bwd recompute");
      const LayerNodes n = layer_fwd(r, x, in_flows, true);
      // Inside the recomputation the layer's gradient is held by the outer node; its input by
      // RecomputeFn (the inner one is a detached view of it), or by the attention norm's W closure.
      const bool kept = layer_bwd(r, x, n, in_flows, true, false, w);
      r.free(act);  // the recomputed output
      if (g_fresh && !kept) r.free(act);
      if (!g_fresh && kept) top_kept = true;
      if (!pipeline_input && !norms_kept) r.free(act);  // RecomputeFn's input
    } else {
      const bool kept = layer_bwd(r, x, nodes[static_cast<size_t>(l)], in_flows, !g_fresh, !pipeline_input, w);
      if (!g_fresh && kept) top_kept = true;
    }
    g_fresh = true;
    finish_unit(before, rs.layer);
  }
  if (c.embedding && train) {
    if (x.dropout) {
      r.mark("bwd dropout");
      r.scalar_op(act);
      r.free(x.Tl * x.h);  // mask
      r.free(act);         // dy
    }
    r.mark("bwd embedding");
    if (x.sp) r.alloc(x.d * T * x.h);
    if (w) {
      w->push_back(WItem::of(WItem::Kind::embedding, x.sp ? x.d * T * x.h : act, 0));
      w->back().ids = 8 * T;
      w->back().rs = rs.embedding;
      if (x.sp) r.free(act);  // the incoming slice
    } else {
      if (x.tp) {
        local_ids(r, T);
        r.alloc(x.d * T * x.h);  // dy masked to this rank's rows
        r.free(x.d * T * x.h);
        r.free(8 * T);
        r.free(T);
      }
      if (x.sp) r.free(x.d * T * x.h);
      r.free(act);    // dy
      r.free(8 * T);  // ids
    }
  }
  if (c.head)
    r.free(4);  // the runner drops the seed
  else if (!top_kept)
    r.free(act);  // ... or the received gradient
  if (c.embedding && !w) {
    r.alloc_buffer(rs.embedding);
    r.free_buffer(rs.embedding);
  }
  if (!c.embedding && !norms_kept) r.free(act);  // the chunk's input, held by the runner until now
}

void replay_weights(Replay& r, const ExecDims& x, const Deferred& w) {
  for (const WItem& i : w) {
    switch (i.kind) {
      case WItem::Kind::column:
        r.mark("W column");
        column_weight_grads(r, x, i.widths, i.biases, i.rs);
        break;
      case WItem::Kind::row:
        r.mark("W row");
        if (i.biases && !x.frozen_base) {
          r.alloc(x.d * x.h);
          r.free(x.d * x.h);
        }
        r.alloc_buffer(i.rs);
        r.free_buffer(i.rs);
        break;
      case WItem::Kind::norm:
        r.mark("W norm");
        norm_weight_grads(r, x, true, i.rs);
        break;
      case WItem::Kind::embedding:
        r.mark("W embedding");
        if (x.tp) {
          local_ids(r, x.T);
          r.alloc(x.d * x.T * x.h);
          r.free(x.d * x.T * x.h);
          r.free(8 * x.T);
          r.free(x.T);
        }
        r.alloc_buffer(i.rs);
        r.free_buffer(i.rs);
        break;
    }
    // The closure goes: what it captured last goes first.
    if (i.kind == WItem::Kind::norm) {
      r.free(i.dy);
      r.free(i.stats);
      r.free(i.x);
    } else if (i.kind == WItem::Kind::embedding) {
      r.free(i.dy);
      r.free(i.ids);
    } else {
      r.free(i.adapters);  // x A^T
      r.free(i.adapters);  // d(xA^T)
      r.free(i.dy);
      r.free(i.x);
    }
  }
}

}  // namespace paraplan::planner

