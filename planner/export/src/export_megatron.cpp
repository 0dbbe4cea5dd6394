// Megatron-LM pretrain_gpt.py arguments for a plan, as a bash array, one flag per line.
//
// Every flag below is checked against NVIDIA/Megatron-LM core_v0.19.0 (5be9626709af, 2026-08-19),
// megatron/training/arguments.py: flags marked [TC] are generated there by ArgumentGroupFactory from the
// fields of TransformerConfig / ModelParallelConfig (megatron/core/transformer/transformer_config.py,
// megatron/core/model_parallel_config.py) as --field-name; [TR] from TrainingConfig
// (megatron/training/config/training_config.py); [CK] from CheckpointConfig; the rest are literal
// add_argument calls. Each flag also exists verbatim in core_v0.15.0 (0d7e02bd) arguments.py.
#include <fmt/format.h>

#include <algorithm>

#include "export_util.hpp"
#include "paraplan/format.hpp"
#include "paraplan/params.hpp"
#include "paraplan/export.hpp"
#include "paraplan/model.hpp"
#include "paraplan/pipeline.hpp"

namespace paraplan::planner {

using detail::Inexpressible;

namespace {

class Args {
 public:
  void section(const std::string& title) { lines_.push_back("    # " + title); }
  void flag(const std::string& name, const std::string& value = "", const std::string& comment = "") {
    std::string line = "    " + name + (value.empty() ? "" : " " + value);
    if (!comment.empty()) line = fmt::format("{:<52}# {}", line + "  ", comment);
    lines_.push_back(line);
  }
  void flag(const std::string& name, long long value, const std::string& comment = "") {
    flag(name, std::to_string(value), comment);
  }
  std::string text() const {
    std::string s;
    for (const auto& l : lines_) s += l + "\n";
    return s;
  }

 private:
  std::vector<std::string> lines_;
};

std::string quoted(const std::string& s) { return "'" + s + "'"; }  // the values here hold no quote

// --pipeline-model-parallel-layout: stages split by '|', E embedding, t a decoder layer, L the loss,
// "t*n" n layers (megatron/core/transformer/pipeline_parallel_layer_layout.py parse_str_to_list);
// stage i of the string is model chunk i, i.e. virtual stage i / pp on pipeline rank i % pp.
std::string layout_string(const std::vector<int>& chunks) {
  std::string s;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i) s += "|";
    if (i == 0) s += "E";
    s += chunks[i] == 1 ? "t" : fmt::format("t*{}", chunks[i]);
    if (i + 1 == chunks.size()) s += "L";
  }
  return s;
}

void model_args(const Plan& plan, Args& a, ExportResult& r) {
  const ModelSpec& m = plan.model;
  a.section(fmt::format("model: {}, {} parameters", m.name, text::count(count_params(m).total)));
  a.flag("--num-layers", m.layers);                            // [TC] num_layers
  a.flag("--hidden-size", m.hidden);                           // [TC] hidden_size
  a.flag("--ffn-hidden-size", m.ffn_hidden, "dense MLP width");  // [TC] ffn_hidden_size
  a.flag("--num-attention-heads", m.heads);                    // [TC] num_attention_heads
  if (!m.mla) {
    if (m.kv_heads != m.heads) {
      a.flag("--group-query-attention");          // arguments.py 'network size'
      a.flag("--num-query-groups", m.kv_heads);  // [TC] num_query_groups
    }
    // Megatron derives kv_channels = hidden / heads (arguments.py validate_args) unless given.
    if (m.head_dim * m.heads != m.hidden) a.flag("--kv-channels", m.head_dim, "head dim");  // [TC]
  }
  a.flag("--seq-length", plan.training.seq_len, "tokens");
  // Rows of the learned position table; with RoPE it only has to be >= seq-length (validate_args).
  const bool learned = m.position_embedding == PositionEmbedding::learned;
  a.flag("--max-position-embeddings", learned ? m.max_seq_len : plan.training.seq_len, "tokens");
  a.flag("--position-embedding-type", learned ? "learned_absolute" : "rope");  // choices in arguments.py
  if (m.activation == Activation::swiglu) a.flag("--swiglu");  // default is GeLU
  a.flag("--normalization", m.norm == Norm::rmsnorm ? "RMSNorm" : "LayerNorm");  // [TC] Literal
  if (m.qk_norm) a.flag("--qk-layernorm");  // [TC] qk_layernorm: `normalization` on each query and key head
  // [TC] window_size (left, right), arguments.py --window-size "L,R" (tuple_type): a query attends to L
  // keys before it and R after; Megatron-Bridge maps Hugging Face's sliding_window W, which counts the query
  // itself, to (W - 1, 0) (gemma2_bridge.py, gpt_oss_bridge.py @ v0.4.0).
  if (m.sliding_window > 0)
    a.flag("--window-size", fmt::format("{},0", m.sliding_window - 1),
           fmt::format("sliding window of {} keys", m.sliding_window));
  if (!m.tied_embeddings) a.flag("--untie-embeddings-and-output-weights");
  // [TC] add_bias_linear carries argparse_meta arg_names ["--disable-bias-linear"]; add_qkv_bias is [TC].
  if (m.bias != Bias::all) a.flag("--disable-bias-linear");
  if (m.bias == Bias::qkv) a.flag("--add-qkv-bias");
  // Megatron's defaults are 0.1 (TransformerConfig), so the plan's value is always written.
  a.flag("--hidden-dropout", fmt::format("{}", plan.training.dropout));     // [TC]
  a.flag("--attention-dropout", fmt::format("{}", plan.training.dropout));  // [TC]
  // The tokenizer sets the vocabulary; Megatron pads it to a multiple of make_vocab_size_divisible_by * tp
  // (megatron/core/tokenizers/utils/build_tokenizer.py vocab_size_with_padding). Pick the largest power of
  // two <= 128 (the default) that leaves the plan's vocabulary unpadded.
  const int tp = plan.parallel.tp;
  int d = 128;
  while (d > 1 && m.vocab % (static_cast<int64_t>(d) * tp) != 0) d /= 2;
  a.flag("--make-vocab-size-divisible-by", d, fmt::format("vocabulary {} tokens", m.vocab));
  if (m.vocab % tp != 0)
    r.notes.push_back(fmt::format("Megatron pads the vocabulary from {} to {} tokens (a multiple of tp = {}); "
                                  "the plan counts {}",
                                  m.vocab, (m.vocab + tp - 1) / tp * tp, tp, m.vocab));
  if (m.moe) {
    const MoeSpec& e = *m.moe;
    a.section("mixture of experts");
    a.flag("--num-experts", e.experts);                                   // arguments.py 'moe'
    a.flag("--moe-router-topk", e.top_k);                                 // [TC] moe_router_topk
    a.flag("--moe-ffn-hidden-size", e.ffn_hidden, "one expert's width");  // [TC]
    if (e.shared_experts > 0)  // [TC] "num_shared_experts * ffn_size_of_each_shared_expert"
      a.flag("--moe-shared-expert-intermediate-size", e.shared_experts * e.ffn_hidden,
             fmt::format("{} shared expert(s)", e.shared_experts));
    if (e.dense_layers > 0)  // a Python list expression, 0 = dense layer, 1 = MoE layer (arguments.py help)
      a.flag("--moe-layer-freq", quoted(fmt::format("([0]*{}+[1]*{})", e.dense_layers, m.layers - e.dense_layers)),
             fmt::format("first {} layers dense", e.dense_layers));
    // The MoE layer the planner costs (workload.cpp moe(), framework.cpp): the all-to-all dispatcher with
    // Transformer Engine's grouped GEMM, fused permutation and fused router. Megatron-Core's defaults
    // are the all-gather dispatcher and none of the three (transformer_config.py).
    a.flag("--moe-token-dispatcher-type", "alltoall", "the dispatcher the planner costs; default allgather");  // [TC]
    a.flag("--moe-grouped-gemm", "", "one GEMM per local expert in one call");           // [TC]
    a.flag("--moe-permute-fusion", "", "Transformer Engine >= 2.1");                     // [TC]
    a.flag("--moe-router-fusion", "", "Transformer Engine >= 2.7");                      // [TC]
  }
  if (m.mla) {
    const MlaSpec& q = *m.mla;
    a.section("multi-head latent attention");
    a.flag("--multi-latent-attention");                                         // [TC]
    if (q.q_lora_rank > 0) a.flag("--q-lora-rank", q.q_lora_rank);              // default None: no compression
    a.flag("--kv-lora-rank", q.kv_lora_rank);                                   // arguments.py 'mla'
    a.flag("--qk-head-dim", q.qk_nope_head_dim, "q/k head dim without RoPE");   // q head = qk + qk_pos_emb
    a.flag("--qk-pos-emb-head-dim", q.qk_rope_head_dim, "RoPE part of q/k");
    a.flag("--v-head-dim", q.v_head_dim);
  }
}

void parallel_args(const Plan& plan, Args& a, ExportResult& r, Inexpressible& no) {
  const ParallelPlan& p = plan.parallel;
  a.section(fmt::format("parallelism: {} GPUs = dp {} x tp {} x pp {} x cp {}", p.gpus(), p.dp, p.tp, p.pp, p.cp));
  a.flag("--tensor-model-parallel-size", p.tp);    // [TC] ModelParallelConfig
  a.flag("--pipeline-model-parallel-size", p.pp);  // [TC]
  a.flag("--context-parallel-size", p.cp);         // [TC]
  if (plan.model.moe) a.flag("--expert-model-parallel-size", p.ep);  // [TC]; experts keep tp (etp = tp)
  if (p.sequence_parallel) a.flag("--sequence-parallel");            // [TC]
  if (p.ep > 1 && p.tp > 1 && !p.sequence_parallel)
    no.add("parallel.sequence_parallel", "false",
           "Megatron-Core requires sequence parallelism when expert and tensor parallelism are combined "
           "(model_parallel_config.py: \"sequence parallelism must be used\")");
  if (p.tp_comm_overlap) {
    if (p.tp == 1)
      r.notes.push_back("parallel.tp_comm_overlap has nothing to overlap with tp = 1; no flag written");
    else if (!p.sequence_parallel)
      no.add("parallel.tp_comm_overlap", "true",
             "Megatron-LM overlaps TP communication with GEMMs only under sequence parallelism "
             "(arguments.py: tp_comm_overlap asserts sequence_parallel)");
    else
      a.flag("--tp-comm-overlap", "", "needs Transformer Engine userbuffers");  // [TC] tp_comm_overlap
  }
  if (p.ep_comm_overlap) {
    // transformer_config.py __post_init__: overlap_moe_expert_parallel_comm asserts ep > 1, a virtual
    // pipeline when pp > 1, and no full recompute.
    if (p.ep == 1)
      r.notes.push_back("parallel.ep_comm_overlap has nothing to overlap with ep = 1; no flag written");
    else if (p.pp > 1 && p.virtual_stages == 1)
      no.add("parallel.ep_comm_overlap", "true",
             "Megatron-Core overlaps the MoE all-to-all with pp > 1 only under a virtual pipeline "
             "(transformer_config.py: virtual_pipeline_model_parallel_size must be specified)");
    else if (plan.training.recompute == Recompute::full)
      no.add("parallel.ep_comm_overlap", "true",
             "Megatron-Core refuses full recompute with the MoE all-to-all overlap (transformer_config.py)");
    else
      a.flag("--overlap-moe-expert-parallel-comm", "", "all-to-all of one micro-batch under the next's compute");
  }
  if (p.pp == 1) return;
  // megatron/core/pipeline_parallel/schedules.py has 1F1B with and without interleaving, nothing else.
  if (p.pp_schedule == PipelineSchedule::gpipe || p.pp_schedule == PipelineSchedule::zb_h1 ||
      p.pp_schedule == PipelineSchedule::zbv)
    no.add("parallel.pp_schedule", to_string(p.pp_schedule),
           "Megatron-Core schedules are 1F1B and interleaved 1F1B only (pipeline_parallel/schedules.py)");
  const std::vector<int> chunks = chunk_layers(plan);
  bool even = true, middle_even = true;
  for (int c : chunks) even = even && c == chunks[0];
  for (size_t i = 2; i + 1 < chunks.size(); ++i) middle_even = middle_even && chunks[i] == chunks[1];
  // arguments.py: overlap_p2p_comm is on unless --no-overlap-p2p-communication, and only with virtual stages.
  if (p.virtual_stages > 1 && p.pp_schedule == PipelineSchedule::interleaved && !p.pp_comm_overlap)
    a.flag("--no-overlap-p2p-communication", "", "every pipeline transfer blocks, as the plan asks");
  if (even) {
    if (p.virtual_stages > 1) a.flag("--num-virtual-stages-per-pipeline-rank", p.virtual_stages);
  } else if (p.virtual_stages == 1 && middle_even) {
    a.flag("--decoder-first-pipeline-num-layers", chunks.front(), "layers on the embedding stage");
    a.flag("--decoder-last-pipeline-num-layers", chunks.back(), "layers on the loss stage");
  } else {
    // One of --num-virtual-stages-per-pipeline-rank and the layout may be set; the layout implies vpp.
    a.flag("--pipeline-model-parallel-layout", quoted(layout_string(chunks)),
           fmt::format("layers per chunk {}", detail::list_of(chunks)));
  }
}

void training_args(const Plan& plan, Args& a, ExportResult& r, Inexpressible& no) {
  const TrainingSpec& t = plan.training;
  const ParallelPlan& p = plan.parallel;
  a.section(fmt::format("batch: {} sequences per step = micro-batch {} x dp {} x {} micro-batches", t.global_batch,
                        t.micro_batch, p.dp, plan.micro_batches()));
  a.flag("--micro-batch-size", t.micro_batch, "sequences");    // [TR] micro_batch_size
  a.flag("--global-batch-size", t.global_batch, "sequences");  // [TR] global_batch_size

  a.section(fmt::format("precision: {}, gradients {}", to_string(t.precision), to_string(t.grad_dtype)));
  const bool half = t.precision != Precision::fp32;
  if (t.precision == Precision::fp16) a.flag("--fp16");  // [TC]
  if (t.precision == Precision::bf16 || t.precision == Precision::fp8) a.flag("--bf16");  // [TC]
  // [TC] fp8 has argparse_meta arg_names ["--fp8-format"]; hybrid = E4M3 forward, E5M2 backward (TE).
  if (t.precision == Precision::fp8) a.flag("--fp8-format", "hybrid", "Transformer Engine FP8 GEMMs");
  // Main-grad buffer dtype: fp32 when accumulate_allreduce_grads_in_fp32, else the parameter dtype
  // (megatron/core/distributed/param_and_grad_buffer.py; training.py passes grad_reduce_in_fp32).
  const bool param_bf16 = t.precision == Precision::bf16 || t.precision == Precision::fp8;
  if (half && t.grad_dtype == GradDtype::fp32) a.flag("--accumulate-allreduce-grads-in-fp32");
  else if (param_bf16 && t.grad_dtype == GradDtype::bf16) a.flag("--grad-reduce-in-bf16");
  else if (half && !(t.precision == Precision::fp16 && t.grad_dtype == GradDtype::fp16))
    no.add("training.grad_dtype", to_string(t.grad_dtype),
           fmt::format("Megatron keeps gradients in fp32 or in the {} parameter dtype", to_string(t.precision)));

  a.section(fmt::format("activations: recompute {}, flash attention {}", to_string(t.recompute),
                        t.flash_attention ? "on" : "off"));
  if (t.recompute == Recompute::selective)  // [TC] default recompute_modules ["core_attn"]
    a.flag("--recompute-granularity", "selective", "attention core (Korthikanti 2022)");
  if (t.recompute == Recompute::full) {
    a.flag("--recompute-granularity", "full");  // [TC] Literal['full', 'selective']
    a.flag("--recompute-method", "uniform");    // [TC] Literal['uniform', 'block']
    a.flag("--recompute-num-layers", 1, "every layer's input kept");  // [TC]
  }
  // [TC] attention_backend: AttnBackend enum {flash, fused, unfused, local, auto} (transformer/enums.py).
  a.flag("--attention-backend", t.flash_attention ? "flash" : "unfused");

  a.section(fmt::format("optimizer {}, ZeRO-{}, offload {}", to_string(t.optimizer), p.zero, to_string(t.offload)));
  switch (t.optimizer) {
    // Megatron's adam is AdamW: OptimizerConfig.decoupled_weight_decay = True (core/optimizer/optimizer_config.py)
    // and no command-line flag turns it off.
    case Optimizer::adamw: a.flag("--optimizer", "adam", "decoupled weight decay (AdamW)"); break;
    case Optimizer::adam:
      no.add("training.optimizer", "adam",
             "Megatron-LM's --optimizer adam is AdamW (decoupled weight decay, no flag to couple it); "
             "use adamw, which keeps the same optimizer states");
      break;
    case Optimizer::sgd:
      a.flag("--optimizer", "sgd");
      a.flag("--sgd-momentum", "0", "plain SGD, no momentum buffer");  // default 0.9
      break;
    case Optimizer::sgd_momentum: a.flag("--optimizer", "sgd", "momentum 0.9 (--sgd-momentum default)"); break;
    case Optimizer::adam8bit:
      no.add("training.optimizer", "adam8bit", "--optimizer takes adam, sgd, muon, lion or soap; no 8-bit Adam");
      break;
  }
  if (p.zero == 1) a.flag("--use-distributed-optimizer", "", "ZeRO-1: optimizer states sharded over dp x cp");
  if (p.zero >= 2) {
    // Megatron-FSDP (docs/user-guide/features/megatron_fsdp.md): optim_grads = ZeRO-2,
    // optim_grads_params = ZeRO-3; it turns on the distributed optimizer and requires fsdp_dtensor checkpoints.
    a.flag("--use-megatron-fsdp", "", fmt::format("ZeRO-{} via Megatron-FSDP", p.zero));  // DistributedInitConfig
    a.flag("--data-parallel-sharding-strategy", p.zero == 2 ? "optim_grads" : "optim_grads_params");
    a.flag("--ckpt-format", "fsdp_dtensor");  // [CK] ckpt_format; asserted by validate_args for Megatron-FSDP
  }
  if (p.dp_overlap) {
    a.flag("--overlap-grad-reduce", "", "DP gradient reduction during the backward");
    if (p.zero >= 1) a.flag("--overlap-param-gather", "", "parameter all-gather during the forward");
  }
  if (t.offload == Offload::optimizer) {
    // arguments.py: optimizer_cpu_offload asserts use_precision_aware_optimizer.
    a.flag("--optimizer-cpu-offload", "", "optimizer states and step on the CPU");
    a.flag("--use-precision-aware-optimizer");
  }
  if (t.offload == Offload::optimizer_params)
    no.add("training.offload", "optimizer+params",
           "Megatron-LM offloads optimizer states (--optimizer-cpu-offload) but not parameters");
  if (t.lora)
    no.add("training.lora", fmt::format("{{rank {}}}", t.lora->rank),
           "Megatron-LM (pretrain_gpt.py, Megatron-Core) has no LoRA; it trains every parameter "
           "(LoRA on Megatron-Core lives in NeMo / Megatron-Bridge)");
}

}  // namespace

ExportResult export_megatron(const Plan& plan) {
  Inexpressible no("Megatron-LM");
  // core_v0.19.0 arguments.py asserts against --cross-entropy-loss-fusion with --cross-entropy-fusion-impl te
  // ("disabled due to stability issues"); Megatron-Bridge still sets it.
  detail::reject_te_cross_entropy(plan.training, no, "pretrain_gpt.py refuses Transformer Engine's fused cross "
                                  "entropy (core_v0.19.0 arguments.py: \"disabled due to stability issues\"); "
                                  "plan with training.cross_entropy unfused");
  if (plan.cluster.gpu.is_cpu)
    no.add("cluster.gpu", plan.cluster.gpu.id, "Megatron-LM trains on CUDA GPUs only");
  // Megatron-Core's biases (core_v0.19.0 transformer_config.py): add_bias_linear on every linear layer,
  // add_qkv_bias on linear_qkv alone (attention.py: bias=add_bias_linear or add_qkv_bias). LLaMA's
  // attention_bias (q, k, v and o) and mlp_bias (the MLP alone) have neither.
  const Bias bias = plan.model.bias;
  if (bias == Bias::attention || bias == Bias::mlp)
    no.add("model.bias", bias == Bias::attention ? "attention" : "mlp",
           "Megatron-Core has biases on every linear layer (add_bias_linear) or on q, k and v alone "
           "(--add-qkv-bias), not on " + std::string(bias == Bias::attention ? "q, k, v and o alone" : "the MLP alone"));
  ExportResult r;
  Args a;
  model_args(plan, a, r);
  parallel_args(plan, a, r, no);
  training_args(plan, a, r, no);
  no.throw_if_any();

  const ClusterSpec& c = plan.cluster;
  const ParallelPlan& p = plan.parallel;
  std::string head = fmt::format(
      "# Megatron-LM arguments for {} on {} x {} (paraplan export --format megatron).\n"
      "# Flag names checked against NVIDIA/Megatron-LM core_v0.19.0 megatron/training/arguments.py.\n"
      "# Not in the plan, add them: data (--data-path or --mock-data), tokenizer (--tokenizer-type,\n"
      "# --tokenizer-model), --lr, --train-iters or --train-samples, checkpoint paths.\n"
      "# Launch: source this file, then run the same line on each of the {} node{}:\n"
      "#   torchrun --nnodes {} --nproc-per-node {} --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\\n"
      "#       pretrain_gpt.py \"${{MEGATRON_ARGS[@]}}\" <data, tokenizer, lr, iterations>\n",
      plan.model.name, c.gpus, c.gpu.name, c.nodes(), c.nodes() == 1 ? "" : "s", c.nodes(),
      std::min(c.gpus, c.gpus_per_node));
  // megatron/training/arguments.py validate_args (core_v0.19.0 lines 1413-1439): with tp > 1 or cp > 1 on a GPU
  // of compute capability < 10 (before Blackwell) it asserts CUDA_DEVICE_MAX_CONNECTIONS == "1", unless
  // Megatron-FSDP or --overlap-moe-expert-parallel-comm is on (then it only warns); Megatron-FSDP itself asserts
  // the variable is unset or > 1 (line 1143), on every GPU. The value is harmless where it is not required.
  // The MoE all-to-all overlap needs more than one connection (moe/README.md "Requirements for EP A2A
  // Overlap"): the plan asked for it, so it wins over the TP ordering, as validate_args' warning offers.
  std::string env;
  const bool ep_overlap = p.ep_comm_overlap && p.ep > 1;
  if (p.zero >= 2) {
    env = "# Megatron-FSDP asserts CUDA_DEVICE_MAX_CONNECTIONS is unset or > 1 (arguments.py validate_args).\n"
          "unset CUDA_DEVICE_MAX_CONNECTIONS\n";
    if (p.tp > 1 || p.cp > 1)
      r.notes.push_back("Megatron-LM warns that tp/cp overlap best with CUDA_DEVICE_MAX_CONNECTIONS=1 and Megatron-FSDP "
                        "needs it unset; the file unsets it, as Megatron-FSDP requires");
  } else if (ep_overlap) {
    env = "# The MoE all-to-all overlap runs its communication on a stream of its own: more than one connection\n"
          "# (Megatron-Core moe/README.md, \"Requirements for EP A2A Overlap\").\n"
          "export CUDA_DEVICE_MAX_CONNECTIONS=32\n";
    if (p.tp > 1 || p.cp > 1)
      r.notes.push_back("Megatron-LM warns that tp/cp overlap best with CUDA_DEVICE_MAX_CONNECTIONS=1 and the MoE "
                        "all-to-all overlap needs more; the file sets 32 for the all-to-all overlap the plan asks for");
  } else if (p.tp > 1 || p.cp > 1) {
    env = "# Megatron-LM asserts CUDA_DEVICE_MAX_CONNECTIONS=1 with tp > 1 or cp > 1 on GPUs before Blackwell\n"
          "# (arguments.py validate_args: compute capability < 10), so that kernels launch in the order issued.\n"
          "export CUDA_DEVICE_MAX_CONNECTIONS=1\n";
  }
  r.text = head + env + "MEGATRON_ARGS=(\n" + a.text() + ")\n";
  if (plan.framework() != Framework::megatron && plan.framework() != Framework::megatron_2021)
    r.notes.push_back(fmt::format("the plan's memory was estimated with {} conventions (training.framework); "
                                  "Megatron-LM's buffers may differ",
                                  to_string(plan.framework())));
  r.notes.push_back("add data, tokenizer, learning rate and iteration flags (see the header of the output)");
  return r;
}

}  // namespace paraplan::planner
