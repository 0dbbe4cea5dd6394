// Lowers the model to ops for one micro-batch on one rank.
// Saved activations follow Korthikanti et al. 2022 (arXiv 2205.05198) §4, Table 2: with MHA, an MLP of
// 4h, dropout and no parallelism a layer keeps sbh(34 + 5as/h) bytes in 16-bit; the op list below
// reproduces that sum term by term and generalises it to GQA/MLA, SwiGLU, MoE, CP and LoRA.
#include <algorithm>
#include <cmath>

#include "paraplan/workload.hpp"

#include "paraplan/bytes_per_param.hpp"

#include "paraplan/executor_ops.hpp"

namespace paraplan::planner {

void Block::finish(double checkpoint_bytes) {
  saved_bytes[0] = saved_bytes[1] = 0;
  double core = 0;
  bwd_working_bytes = 0;
  fwd_flops = model_flops = 0;
  gemm_weight_params = 0;
  for (const Op& op : ops) {
    if (op.kind == OpKind::gemm) gemm_weight_params += op.k * op.n * op.batch;  // not the router's (OpKind::router)
    saved_bytes[0] += op.saved_bytes;
    if (op.core_attention) core += op.saved_bytes;
    bwd_working_bytes = std::max(bwd_working_bytes, op.bwd_working_bytes);
    fwd_flops += op.flops + op.lora_flops;
    model_flops += op.model_flops + op.lora_flops;
  }
  saved_bytes[1] = saved_bytes[0] - core;
  // Full recompute keeps only the layer input; embedding and head are not checkpointed (checkpoint < 0).
  saved_bytes[2] = checkpoint_bytes >= 0 ? checkpoint_bytes : saved_bytes[0];
  recompute_working_bytes[0] = 0;
  recompute_working_bytes[1] = core;                              // one layer's core attention re-run
  recompute_working_bytes[2] = saved_bytes[0] - saved_bytes[2];   // one layer's forward re-run
}

namespace {

struct Dims {
  double T;     // tokens per micro-batch on this rank (b * s / cp)
  double s_kv;  // keys each query attends to (the whole sequence; CP passes K,V around the ring)
  double b;     // micro-batch
  double d;     // bytes per activation element
  double t;     // tp
  double tsp;   // divisor of TP-replicated activations: tp with sequence parallelism, else 1
  double h;
  bool dropout;
  bool sp;
};

Op gemm(const char* name, double m, double k, double n, bool weight_grad) {
  Op op;
  op.name = name;
  op.kind = OpKind::gemm;
  op.m = m; op.k = k; op.n = n;
  op.flops = op.model_flops = 2 * m * n * k;
  op.weight_grad = weight_grad;
  return op;
}

// Keys a causal query attends to, on average over a sequence of s tokens, as a fraction of s/2 (what full
// causal attention averages): with a window of W keys (Jiang et al. 2023 §2) sum_i min(i, W) / s =
// W - W^2/(2s) for W <= s (to the same continuous approximation as s/2 for full causal attention).
double causal_window_fraction(int64_t window, double s) {
  const double w = static_cast<double>(window);
  if (window <= 0 || w >= s) return 1;
  return (w - w * w / (2 * s)) / (s / 2);
}

// Forward FLOPs of a LoRA adapter on a linear in -> out (local widths): x.A then (xA).B.
double lora_flops(const Dims& x, double rank, double in, double out) { return 2 * x.T * rank * (in + out); }

struct Builder {
  const Plan& plan;
  const FrameworkProfile& fw;
  Dims x;
  bool trainable_base;  // false under LoRA: frozen base weights get no weight gradient
  // The input a GEMM keeps for its weight gradient is its FP8 copy (Transformer Engine's FP8: framework.hpp
  // te_fp8), of gi bytes an element; else the activation itself, gi = d.
  bool fp8_inputs;
  double gi;

  // LoRA on a linear with local widths in/out: FLOPs and the adapter's saved input to B (and to A
  // when lora_dropout makes it a new tensor).
  void lora(Op& op, LoraTarget target, double in_local, double out_local, double in_saved_elems) {
    const auto& l = plan.training.lora;
    if (!l || !l->has(target)) return;
    op.lora_flops = lora_flops(x, l->rank, in_local, out_local);
    op.saved_bytes += x.d * x.T * l->rank;
    if (l->dropout > 0) op.saved_bytes += x.d * in_saved_elems;
  }

  // A norm over `elems` activations (default: the hidden state, sequence-sharded under SP).
  void norm(Block& blk, const char* name) { norm(blk, name, x.T * x.h / x.tsp); }
  void norm(Block& blk, const char* name, double elems) {
    Op op;
    op.name = name;
    op.kind = OpKind::norm;
    op.io_bytes = 2 * x.d * elems;
    op.saved_bytes = x.d * elems;  // the norm input
    op.bwd_working_bytes = 2 * x.d * elems;
    op.flops = op.model_flops = 0;
    blk.add(op);
  }

  void dropout(Block& blk, const char* name) {
    if (!x.dropout) return;
    Op op;
    op.name = name;
    const double elems = x.T * x.h / x.tsp;
    op.saved_bytes = elems;  // 1-byte mask; its traffic is counted in the fused residual add
    blk.add(op);
  }

  // Residual add, fused with the preceding dropout (Megatron bias_dropout_add): reads x and the
  // residual, writes the sum (and the 1-byte mask).
  void residual(Block& blk) {
    Op op;
    op.name = "residual_add";
    const double elems = x.T * x.h / x.tsp;
    op.io_bytes = 3 * x.d * elems + (x.dropout ? elems : 0);
    blk.add(op);
  }

  void tp_in(Block& blk, const char* name) {  // entering a TP region: f (identity / all-gather under SP)
    if (x.t <= 1) return;
    const double bytes = x.d * x.T * x.h;
    if (x.sp) {
      blk.comms.push_back({name, CommKind::all_gather, Axis::tp, Pass::forward, bytes});
      blk.comms.push_back({name, CommKind::reduce_scatter, Axis::tp, Pass::backward, bytes});
      // Sequence-parallel keeps the sharded input and re-gathers it for the weight gradient (Korthikanti §4.2.2).
      blk.comms.push_back({name, CommKind::all_gather, Axis::tp, Pass::backward, bytes});
    } else {
      blk.comms.push_back({name, CommKind::all_reduce, Axis::tp, Pass::backward, bytes});
    }
  }
  void tp_out(Block& blk, const char* name) {  // leaving a TP region: g (all-reduce / reduce-scatter)
    if (x.t <= 1) return;
    const double bytes = x.d * x.T * x.h;
    if (x.sp) {
      blk.comms.push_back({name, CommKind::reduce_scatter, Axis::tp, Pass::forward, bytes});
      blk.comms.push_back({name, CommKind::all_gather, Axis::tp, Pass::backward, bytes});
    } else {
      blk.comms.push_back({name, CommKind::all_reduce, Axis::tp, Pass::forward, bytes});
    }
  }

  void attention(Block& blk) {
    const ModelSpec& m = plan.model;
    const bool flash = plan.training.flash_attention;
    const double t = x.t, T = x.T, d = x.d;
    // Widths of q, k, v and of the attention output, summed over heads. GQA: k and v have kv_heads
    // heads, the output has all query heads.
    double qw = static_cast<double>(m.q_dim()), kw = static_cast<double>(m.kv_dim()), vw = kw, ow = qw;
    // Fewer key/value heads than tp: one per rank, replicated (kv_replicated_rows).
    if (!m.mla && m.kv_heads < t) kw = vw = t * static_cast<double>(m.head_dim);
    if (m.mla) {
      kw = qw;  // MLA: k = [k_nope | k_rope] per head after kv_b and the rope concat
      vw = ow = static_cast<double>(m.heads * m.mla->v_head_dim);
    }
    tp_in(blk, "attn_in");
    if (m.mla) {
      const auto& a = *m.mla;
      const double qk = static_cast<double>(a.qk_nope_head_dim + a.qk_rope_head_dim);
      Op op;
      if (a.q_lora_rank > 0) {
        op = gemm("q_down_proj", T, x.h, a.q_lora_rank, trainable_base);
        op.saved_bytes = gi * T * x.h / x.tsp;
        blk.add(op);
        op = gemm("q_up_proj", T, a.q_lora_rank, m.heads * qk / t, trainable_base);
        op.saved_bytes = (gi + d) * T * a.q_lora_rank;  // compressed q (input) and its norm input
      } else {
        op = gemm("q_proj", T, x.h, m.heads * qk / t, trainable_base);
        op.saved_bytes = gi * T * x.h / x.tsp;
        lora(op, kQProj, x.h, m.heads * qk / t, T * x.h);
      }
      blk.add(op);
      op = gemm("kv_down_proj", T, x.h, a.kv_lora_rank + a.qk_rope_head_dim, trainable_base);
      // Shares the normed input with q_down_proj (q_proj); under TE FP8 each layer keeps its own FP8 copy.
      op.saved_bytes = fp8_inputs ? gi * T * x.h / x.tsp : 0;
      blk.add(op);
      op = gemm("kv_up_proj", T, a.kv_lora_rank, m.heads * (a.qk_nope_head_dim + a.v_head_dim) / t,
                trainable_base);
      op.saved_bytes = (gi + d) * T * a.kv_lora_rank;  // compressed kv and its norm input
      blk.add(op);
    } else {
      Op op = gemm("qkv_proj", T, x.h, (qw + 2 * kw) / t, trainable_base);
      op.saved_bytes = gi * T * x.h / x.tsp;  // input (sequence-sharded under SP, re-gathered in backward)
      op.bwd_working_bytes = d * T * (x.h + (qw + 2 * kw) / t);
      lora(op, kQProj, x.h, qw / t, T * x.h);
      Op k_only, v_only;  // adapters on k and v add to the same fused op
      lora(k_only, kKProj, x.h, kw / t, T * x.h);
      lora(v_only, kVProj, x.h, kw / t, T * x.h);
      op.lora_flops += k_only.lora_flops + v_only.lora_flops;
      op.saved_bytes += k_only.saved_bytes + v_only.saved_bytes;
      blk.add(op);
      if (m.qk_norm) {
        // Per-head norms of q and k (Qwen3 q_norm / k_norm; Megatron-Core q_layernorm / k_layernorm, before
        // RoPE), one kernel each: each keeps its input for the backward (the attention keeps the normed,
        // rotated q and k).
        norm(blk, "q_norm", T * qw / t);
        norm(blk, "k_norm", T * kw / t);
      }
      Op rope;
      rope.name = "rope";
      rope.io_bytes = 2 * d * T * (qw + kw) / t;
      if (m.position_embedding == PositionEmbedding::rope) blk.add(rope);
    }
    // Core attention: QK^T and AV. The score matrix is T x s_kv per head.
    Op core;
    core.name = "attention_core";
    core.kind = OpKind::attention;
    const double full = 2 * T * x.s_kv * qw / t + 2 * T * x.s_kv * ow / t;  // QK^T and AV
    // model_flops counts twice the keys a causal query attends to (the "full" convention, flops.hpp);
    // a sliding window caps them, and flash kernels skip the blocks outside it (FlashAttention-2 v2.3
    // window_size). Unfused kernels compute every score and mask (HF eager_attention_forward).
    const double window = causal_window_fraction(m.sliding_window, x.s_kv);
    core.model_flops = full * window;
    core.flops = flash ? full * window / 2 : full;  // causal flash kernels skip the masked part; unfused don't
    // Unfused kernels run QK^T and AV as batched GEMMs per sequence and local head: m queries, k the
    // head dimension, n the keys (AV: [m x s_kv] . [s_kv x head_dim]).
    core.m = T / x.b;
    core.n = x.s_kv;
    core.k = qw / m.heads;
    core.batch = x.b * m.heads / t;
    core.saved_bytes = d * T * (qw + kw + vw) / t;  // q, k, v kept for the backward
    core.io_bytes = d * T * (qw + kw + vw + ow) / t;  // reads q, k, v, writes the output
    blk.add(core);
    const double scores = x.b * (m.heads / t) * (T / x.b) * x.s_kv;  // elements of the score matrix
    Op sm;
    sm.name = flash ? "softmax_lse" : "softmax";
    sm.kind = OpKind::attention;
    sm.core_attention = true;
    if (flash) {
      sm.saved_bytes = 4 * (m.heads / t) * T;  // fp32 log-sum-exp per query row (FlashAttention-2 §3.1)
      sm.bwd_working_bytes = d * T * (qw + kw + vw + ow) / t;  // dq, dk, dv and dO
    } else {
      // Unfused attention materialises the scores: QK^T writes them, the fused scale-mask-softmax reads
      // and writes them, dropout reads them and writes probabilities and a mask, AV reads them.
      sm.io_bytes = 4 * d * scores + (x.dropout ? 2 * d * scores + scores : 0);
      sm.saved_bytes = d * scores;  // softmax output (also the AV input)
      if (x.dropout) sm.saved_bytes += scores + d * scores;  // dropout mask + dropped-out probabilities
      sm.bwd_working_bytes = 2 * d * scores;  // grad of probabilities and of scores
    }
    blk.add(sm);
    Op o = gemm("o_proj", T, ow / t, x.h, trainable_base);
    // The attention output; under TE FP8 the projection keeps its FP8 copy, and a flash kernel keeps the
    // 16-bit output besides for its own backward.
    o.saved_bytes = (fp8_inputs ? gi + (flash ? d : 0) : d) * T * ow / t;
    o.bwd_working_bytes = d * T * (x.h + ow / t);
    lora(o, kOProj, ow / t, x.h, T * ow / t);
    blk.add(o);
    tp_out(blk, "attn_out");
    if (plan.parallel.cp > 1) {
      // Ring attention (Liu et al. 2023; Megatron-Core CP): cp-1 hops of this rank's K and V forward,
      // K,V and dK,dV backward.
      const double kv = d * T * (kw + vw) / t * (plan.parallel.cp - 1);
      blk.comms.push_back({"cp_kv", CommKind::send_recv, Axis::cp, Pass::forward, kv});
      blk.comms.push_back({"cp_kv", CommKind::send_recv, Axis::cp, Pass::backward, 2 * kv});
    }
    dropout(blk, "attn_dropout");
    residual(blk);
  }

  // Dense MLP (or shared experts) of width f on `tokens` tokens; `input_saved` is false when the
  // input is already kept by another op (shared experts share the router's input).
  void mlp(Block& blk, double f, double tokens, bool input_saved, const char* prefix_fc1,
           const char* prefix_fc2) {
    const ModelSpec& m = plan.model;
    const double t = x.t, d = x.d;
    const bool glu = m.activation == Activation::swiglu;
    const double f1 = glu ? 2 * f : f;
    Op fc1 = gemm(prefix_fc1, tokens, x.h, f1 / t, trainable_base);
    fc1.saved_bytes = input_saved ? gi * tokens * x.h / x.tsp : 0;
    fc1.bwd_working_bytes = d * tokens * (x.h + f1 / t);
    lora(fc1, kUpProj, x.h, f / t, tokens * x.h);
    if (glu) {  // the gate adapter adds to the same fused op
      Op gate_only;
      lora(gate_only, kGateProj, x.h, f / t, tokens * x.h);
      fc1.lora_flops += gate_only.lora_flops;
      fc1.saved_bytes += gate_only.saved_bytes;
    }
    blk.add(fc1);
    Op act;
    act.name = glu ? "swiglu" : "gelu";
    act.io_bytes = d * tokens * (f1 + f) / t;
    // Fused SwiGLU keeps [gate|up]; eager keeps gate, up and silu(gate); GeLU keeps its input.
    act.saved_bytes = d * tokens * (glu ? (fw.fused_swiglu ? 2 * f : 3 * f) : f) / t;
    act.bwd_working_bytes = d * tokens * (f1 + f) / t;
    blk.add(act);
    Op fc2 = gemm(prefix_fc2, tokens, f / t, x.h, trainable_base);
    fc2.saved_bytes = gi * tokens * f / t;
    fc2.bwd_working_bytes = d * tokens * (x.h + f / t);
    lora(fc2, kDownProj, f / t, x.h, tokens * f / t);
    blk.add(fc2);
  }

  // Megatron-Core's MoE layer (megatron/core/transformer/moe: router.py, token_dispatcher.py
  // MoEAlltoAllTokenDispatcher, experts.py TEGroupedMLP, moe_utils.py permute/unpermute).
  void moe(Block& blk) {
    const ModelSpec& m = plan.model;
    const auto& e = *m.moe;
    const double t = x.t, d = x.d;
    const double tokens_local = x.T / x.tsp;
    Op router = gemm("router", tokens_local, x.h, e.experts, trainable_base);
    router.kind = OpKind::router;  // costed as a GEMM; a plain torch linear, not a Transformer Engine layer
    router.saved_bytes = d * x.T * x.h / x.tsp + 4 * tokens_local * e.experts;  // input + fp32 probabilities
    blk.add(router);
    // router.py TopKRouter.routing (moe_router_fusion: one fused kernel): reads the fp32 logits, writes the
    // fp32 probabilities and the bool routing map (T x experts each); the aux loss reduces the same map.
    Op topk;
    topk.name = "router_topk";
    topk.io_bytes = (4 + 4 + 1) * tokens_local * e.experts;
    blk.add(topk);
    // A rank dispatches the top_k copies of its own tokens (its sequence-parallel shard under tp > 1):
    // token_dispatch's all_to_all over the expert group moves those rows. With tp > 1 the experts are
    // tensor-parallel too (expert_tensor_parallel_size = tp, Megatron-Core's default): dispatch_postprocess
    // all-gathers the received rows over the tp group and combine_preprocess reduce-scatters them back
    // (gather_from_ / reduce_scatter_to_sequence_parallel_region), so each rank's experts process T * top_k
    // rows on average (balanced routing), each on its 1/tp of the expert width.
    const double routed_local = tokens_local * e.top_k;
    const double routed = x.T * e.top_k;
    const double bytes = d * routed_local * x.h;
    if (plan.parallel.ep > 1) {
      blk.comms.push_back({"moe_dispatch", CommKind::all_to_all, Axis::ep, Pass::forward, bytes});
      blk.comms.push_back({"moe_combine", CommKind::all_to_all, Axis::ep, Pass::forward, bytes});
      blk.comms.push_back({"moe_dispatch", CommKind::all_to_all, Axis::ep, Pass::backward, bytes});
      blk.comms.push_back({"moe_combine", CommKind::all_to_all, Axis::ep, Pass::backward, bytes});
    }
    if (x.tsp > 1) {  // nccl-tests' size: the gathered buffer, T * top_k rows; not TE's, so never hidden
      const double gathered = d * routed * x.h;
      blk.comms.push_back({"moe_tp_gather", CommKind::all_gather, Axis::tp, Pass::forward, gathered, false});
      blk.comms.push_back({"moe_tp_scatter", CommKind::reduce_scatter, Axis::tp, Pass::forward, gathered, false});
      blk.comms.push_back({"moe_tp_gather", CommKind::reduce_scatter, Axis::tp, Pass::backward, gathered, false});
      blk.comms.push_back({"moe_tp_scatter", CommKind::all_gather, Axis::tp, Pass::backward, gathered, false});
    }
    // Token permutation (token_dispatcher.py MoEAlltoAllTokenDispatcher; TE's fused moe_permute kernels,
    // moe_utils.py): dispatch_preprocess's "Permutation 1" reads each of the rank's tokens once and writes
    // its top_k copies; with more than one local expert dispatch_postprocess's sort_chunks_by_idxs
    // ("Permutation 2") reads and writes the routed rows after the tp gather. The backward runs the
    // inverse gathers: the same bytes.
    const double local_experts = std::max(1.0, static_cast<double>(e.experts) / plan.parallel.ep);
    const bool sorts = local_experts > 1;
    const double row = d * x.h;
    Op permute;
    permute.name = "moe_permute";
    permute.io_bytes = row * (tokens_local + routed_local + (sorts ? 2 * routed : 0));
    permute.bwd_io_bytes = permute.io_bytes;
    permute.batch = sorts ? 2 : 1;  // passes (kernels)
    blk.add(permute);
    const double f = static_cast<double>(e.ffn_hidden);
    const bool glu = m.activation == Activation::swiglu;
    const double f1 = glu ? 2 * f : f;
    // Grouped GEMM (experts.py TEGroupedMLP -> Transformer Engine GroupedLinear): one GEMM per local
    // expert over its own tokens (routed / local experts, balanced), each cut into its own tiles.
    auto expert_gemm = [&](const char* name, double k, double n) {
      Op op = gemm(name, routed, k, n, trainable_base);
      op.m = routed / local_experts;
      op.batch = local_experts;
      return op;
    };
    Op fc1 = expert_gemm("expert_fc1", x.h, f1 / t);
    fc1.saved_bytes = gi * routed * x.h;  // permuted tokens
    fc1.bwd_working_bytes = d * routed * (x.h + f1 / t);
    blk.add(fc1);
    Op act;
    act.name = glu ? "expert_swiglu" : "expert_gelu";
    act.io_bytes = d * routed * (f1 + f) / t;
    act.saved_bytes = d * routed * (glu ? (fw.fused_swiglu ? 2 * f : 3 * f) : f) / t;
    if (fw.moe_probs_in_activation) act.saved_bytes += 4 * routed;  // the fp32 probability of each copy
    blk.add(act);
    Op fc2 = expert_gemm("expert_fc2", f / t, x.h);
    fc2.saved_bytes = gi * routed * f / t;
    fc2.bwd_working_bytes = d * routed * (x.h + f / t);
    blk.add(fc2);
    // The combine: combine_preprocess's chunk sort back (routed rows read and written), then, after the
    // tp reduce-scatter and the all-to-all, combine_postprocess's unpermute, summing the top_k copies of
    // the rank's tokens into its rows (weighting each by its probability where the activation has not:
    // framework.hpp moe_probs_in_activation). Backward: the sort's inverse, and the unpermute's gradient
    // (reads the rank's rows of incoming gradient, writes their copies; with the weighting here also the
    // saved expert outputs, for the probabilities' gradient).
    const bool weighs = !fw.moe_probs_in_activation;
    Op combine;
    combine.name = "moe_combine";
    combine.io_bytes = row * ((sorts ? 2 * routed : 0) + routed_local + tokens_local);
    combine.bwd_io_bytes = row * ((sorts ? 2 * routed : 0) + tokens_local + (weighs ? 2 : 1) * routed_local);
    combine.batch = sorts ? 2 : 1;
    combine.saved_bytes = weighs ? d * routed_local * x.h : 0;  // expert outputs, for the probabilities' gradient
    blk.add(combine);
    if (e.shared_experts > 0) mlp(blk, e.shared_experts * f, x.T, false, "shared_fc1", "shared_fc2");
  }

  Block layer(bool is_moe) {
    Block blk;
    blk.kind = is_moe ? BlockKind::moe_layer : BlockKind::dense_layer;
    norm(blk, "attn_norm");
    attention(blk);
    norm(blk, "mlp_norm");
    tp_in(blk, "mlp_in");
    if (is_moe)
      moe(blk);
    else
      mlp(blk, static_cast<double>(plan.model.ffn_hidden), x.T, true, "fc1", "fc2");
    tp_out(blk, "mlp_out");
    dropout(blk, "mlp_dropout");
    residual(blk);
    // Full recompute keeps the layer input (sequence-sharded under SP: Korthikanti Table 2, 2sbh/t).
    blk.finish(x.d * x.T * x.h / x.tsp);
    return blk;
  }

  Block embedding() {
    Block blk;
    blk.kind = BlockKind::embedding;
    Op op;
    op.name = "embedding";
    op.kind = OpKind::embedding;
    op.io_bytes = 2 * x.d * x.T * x.h;
    op.saved_bytes = 8 * x.T;  // int64 token ids (Megatron theoretical_memory_usage: 8sbp)
    op.weight_grad = trainable_base;
    blk.add(op);
    tp_out(blk, "embedding_out");  // vocab-parallel lookup ends in an all-reduce / reduce-scatter
    dropout(blk, "embedding_dropout");
    blk.finish(-1);
    return blk;
  }

  Block head(double vocab_local) {
    Block blk;
    blk.kind = BlockKind::head;
    norm(blk, "final_norm");
    tp_in(blk, "head_in");
    // Transformer Engine's parallel_cross_entropy (transformer_engine/pytorch/cross_entropy.py) saves its
    // 16-bit input and computes in fp32 inside the kernel: no fp32 copy, no second buffer beside it, and
    // its backward writes the logits' gradient into that input, which the projection's backward then reads.
    const bool te_loss = plan.training.cross_entropy == CrossEntropy::te;
    Op out = gemm("output_proj", x.T, x.h, vocab_local, trainable_base);
    out.saved_bytes = x.d * x.T * x.h / x.tsp;
    out.bwd_working_bytes = x.d * x.T * (x.h + (te_loss ? 0 : vocab_local));
    blk.add(out);
    Op loss;
    loss.name = "cross_entropy";
    loss.kind = OpKind::loss;
    loss.io_bytes = (x.d + 2 * 4) * x.T * vocab_local;
    loss.saved_bytes = (te_loss ? x.d : fw.logits_saved_bytes) * x.T * vocab_local;
    loss.bwd_working_bytes = (te_loss ? 0 : fw.logits_spike_bytes) * x.T * vocab_local;  // the loss spike
    blk.add(loss);
    blk.finish(-1);
    return blk;
  }
};

int64_t padded_vocab(int64_t vocab, int multiple, int tp) {
  const int64_t unit = static_cast<int64_t>(multiple) * tp;
  return (vocab + unit - 1) / unit * unit;
}

}  // namespace

Workload build_workload(const Plan& plan, const FrameworkProfile& fw, const WorkloadShape& shape) {
  Workload w;
  w.shape = shape;
  w.params = model_params(plan.model, plan.training.lora);
  w.act_bytes = activation_bytes(plan.training.precision);
  w.padded_vocab = padded_vocab(plan.model.vocab, fw.vocab_pad_multiple, shape.tp);
  const int64_t vh = w.padded_vocab * plan.model.hidden;
  w.params.embedding.other.tp_sharded = vh;
  if (!plan.model.tied_embeddings) w.params.head.other.tp_sharded = vh;
  if (plan.model.tied_embeddings) w.params.tied_head_copy.other.tp_sharded = vh;
  // Fewer key/value heads than tp: each rank holds one, shared by tp / kv_heads ranks (vLLM
  // QKVParallelLinear, num_kv_head_replicas = tp / kv_heads; the executor's layout.cpp kv_heads_of).
  // The replicas count as tp_sharded rows, so that tp_sharded / tp is one head's rows per rank.
  const ModelSpec& m = plan.model;
  if (!m.mla && m.kv_heads < shape.tp) {
    const int64_t extra = static_cast<int64_t>(shape.tp - m.kv_heads) * m.head_dim;  // k or v rows added
    auto add = [&](BlockParams& bp) {
      bp.linear.tp_sharded += 2 * extra * m.hidden;
      if (m.bias != Bias::none) bp.other.tp_sharded += 2 * extra;
      for (LoraTarget t : {kKProj, kVProj})
        if (plan.training.lora && plan.training.lora->has(t)) bp.lora.tp_sharded += plan.training.lora->rank * extra;
    };
    add(w.params.dense_layer);
    if (m.moe) add(w.params.moe_layer);
  }

  Dims x;
  x.b = shape.micro_batch;
  x.T = static_cast<double>(shape.micro_batch) * static_cast<double>(plan.training.seq_len) / shape.cp;
  x.s_kv = static_cast<double>(plan.training.seq_len);
  x.d = w.act_bytes;
  x.t = shape.tp;
  x.sp = shape.sequence_parallel && shape.tp > 1;
  x.tsp = x.sp ? shape.tp : 1;
  x.h = static_cast<double>(plan.model.hidden);
  x.dropout = plan.training.dropout > 0;
  w.tokens = x.T;

  // Not under LoRA: a frozen base GEMM keeps no input (TE saves it only for its own weight gradient); the
  // 16-bit adapter keeps it instead, as in bf16 training.
  const bool fp8_inputs = fw.te_fp8 && plan.training.precision == Precision::fp8 && !plan.training.lora;
  Builder b{plan, fw, x, !plan.training.lora.has_value(), fp8_inputs, fp8_inputs ? 1.0 : x.d};
  w.embedding = b.embedding();
  w.dense_layer = b.layer(false);
  if (plan.model.moe) w.moe_layer = b.layer(true);
  w.head = b.head(static_cast<double>(w.padded_vocab) / shape.tp);
  if (fw.exact_executor) apply_executor_ops(w, plan);
  return w;
}

}  // namespace paraplan::planner
