#pragma once
// A two-layer GPT on an idealised device, small enough to time by hand from docs/time-model.md: every
// efficiency 1, no latency or kernel cost, so an op takes FLOPs / peak or bytes / bandwidth. The plan
// (dp 2 x pp 2 on 4 GPUs of one node, ZeRO-0 without overlap, 1F1B, no recompute) and the per-stage costs of
// one micro-batch, derived here op by op, serve the planner's step test (test_time.cpp) and the simulator's
// (tests/simulator/test_cli_simulate.cpp).
#include <algorithm>
#include <string>

namespace tinygpt {

// T = s = 1024 tokens (micro-batch 1), h = 1024, 8 heads of 128, f = 4096 (GeLU), V = 1024, learned positions
// (1024 rows), LayerNorm, no biases, untied head; bf16 (d = 2 bytes), fp32 gradients, AdamW.
inline std::string plan_json(int global_batch) {
  return R"({"model": {"name": "tiny-gpt", "layers": 2, "hidden": 1024, "heads": 8, "ffn_hidden": 4096, "vocab": 1024,
           "activation": "gelu", "norm": "layernorm", "position_embedding": "learned", "max_seq_len": 1024},
 "training": {"seq_len": 1024, "micro_batch": 1, "global_batch": )" +
         std::to_string(global_batch) + R"(, "precision": "bf16", "grad_dtype": "fp32",
              "optimizer": "adamw", "recompute": "none", "flash_attention": true},
 "parallel": {"dp": 2, "tp": 1, "pp": 2, "cp": 1, "zero": 0, "dp_overlap": false, "pp_schedule": "1f1b"},
 "cluster": {"gpu": {"memory_bytes": 1e12, "peak_flops": {"bf16": 1e14}, "hbm_bytes_per_s": 1e12,
                     "intra_node_bytes_per_s": 1e11, "inter_node_bytes_per_s": 1e10},
             "gpus": 4, "calibration": "none"}})";
}

// Seconds for one micro-batch on each stage (stage 0: embedding + layer 0; stage 1: layer 1 + head), the
// pipeline transfer, and per step each stage's gradient all-reduce and optimizer step.
struct Costs {
  double f0, b0, f1, b1;  // forward and backward compute
  double p2p;             // one boundary activation (or its gradient) to the other stage
  double reduce0, reduce1, opt0, opt1;
  double params0, params1;
};

inline Costs costs() {
  const double T = 1024, s = 1024, h = 1024, f = 4096, V = 1024, d = 2;
  const double peak = 1e14, hbm = 1e12, nvlink = 1e11;
  // Layer: GEMMs QKV 2Th(3h), output 2Th h, MLP 2Thf + 2Tfh (compute-bound: 64 and 21 GFLOP against a few MB);
  // flash attention executes half of QK^T and AV (causal, 4Tsh / 2); memory-bound: two LayerNorms (read x,
  // write y: 2dTh each), two residual adds (3dTh each), GeLU (read and write Tf: 2dTf). Backward: GEMMs
  // twice (input and weight gradients), flash attention 2.5x (Dao 2023), memory-bound ops 2x.
  const double gemm = 2 * T * h * 3 * h + 2 * T * h * h + 2 * T * h * f + 2 * T * f * h;
  const double attention = (2 * T * s * h + 2 * T * s * h) / 2;
  const double traffic = 2 * (2 * d * T * h) + 2 * (3 * d * T * h) + 2 * d * T * f;
  const double layer_f = gemm / peak + attention / peak + traffic / hbm;
  const double layer_b = 2 * gemm / peak + 2.5 * attention / peak + 2 * traffic / hbm;
  // Embedding: gather T rows of h (read + write, 2dTh); backward 2x, plus the scatter into its gradient 1x.
  const double embed = 2 * d * T * h / hbm;
  // Head: final LayerNorm (2dTh, backward 2x); the output GEMM 2ThV (21 GFLOP against 6 MB: compute-bound),
  // backward input and weight gradients; cross-entropy reads bf16 logits and writes fp32 work (d + 8) TV,
  // backward 2x.
  const double norm = 2 * d * T * h / hbm, out = std::max(2 * T * h * V / peak, d * (T * h + h * V + T * V) / hbm),
               loss = (d + 8) * T * V / hbm;
  Costs c;
  c.f0 = embed + layer_f;
  c.b0 = 3 * embed + layer_b;
  c.f1 = layer_f + norm + out + loss;
  c.b1 = layer_b + 2 * norm + 2 * out + 2 * loss;
  // 2 MiB of bf16 activations over NVLink (send/recv factor 1, docs/time-model.md "Communication").
  c.p2p = d * T * h / nvlink;
  // Parameters: layer 4h^2 + 2hf + two LayerNorms (2h each); embedding Vh + 1024 h positions; head LayerNorm
  // 2h + Vh.
  const double layer = 4 * h * h + 2 * h * f + 4 * h;
  c.params0 = V * h + 1024 * h + layer;  // 14,684,160
  c.params1 = layer + 2 * h + V * h;     // 13,637,632
  // fp32 gradients all-reduced over dp 2 in one bucket (Megatron's 40 M parameters): 4 bytes x bus factor
  // 2(2 - 1)/2 = 1 over NVLink.
  c.reduce0 = 4 * c.params0 / nvlink;
  c.reduce1 = 4 * c.params1 / nvlink;
  // The optimizer step is memory-bound: clip-norm read 4, gradient 4, fp32 master read + write 8, Adam's two
  // moments read + written 16, master -> bf16 copy 4 + 2: 38 bytes per parameter (planner/costs/src/timing.cpp).
  c.opt0 = 38 * c.params0 / hbm;
  c.opt1 = 38 * c.params1 / hbm;
  return c;
}

}  // namespace tinygpt
