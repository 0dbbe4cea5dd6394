#!/usr/bin/env python3
"""One training step of a LLaMA-style decoder in eager PyTorch: the peer that bench_executor compares the
C++ executor with (same model, same batch, same AdamW, same thread count). scripts/gpu-check runs it on
a GPU (--device cuda --dtype bf16: autocast to bf16 over fp32 parameters, as mixed precision does).

The model is written from the formulas the executor implements (RMSNorm, rotate-half RoPE, grouped-query
causal attention with K/V repeated per group as eager implementations do, SwiGLU, untied head, token
cross-entropy), with nn.Linear layers and torch.optim.AdamW. Prints one JSON object: the wall time of
every measured step, in seconds.

  python3 bench/pytorch_step.py --threads 1 --steps 10 --layers 4 --hidden 256 ...
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, h, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(h))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x, cos, sin):
    # x: [b, heads, s, hd]; cos, sin: [s, hd/2] (RoFormer Eq. 34 in the rotate-half layout).
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Layer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        hd = a.head_dim
        self.input_layernorm = RMSNorm(a.hidden, a.eps)
        self.q_proj = nn.Linear(a.hidden, a.heads * hd, bias=False)
        self.k_proj = nn.Linear(a.hidden, a.kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(a.hidden, a.kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(a.heads * hd, a.hidden, bias=False)
        self.post_attention_layernorm = RMSNorm(a.hidden, a.eps)
        self.gate_proj = nn.Linear(a.hidden, a.ffn, bias=False)
        self.up_proj = nn.Linear(a.hidden, a.ffn, bias=False)
        self.down_proj = nn.Linear(a.ffn, a.hidden, bias=False)

    def forward(self, x, cos, sin, mask):
        a = self.a
        b, s, _ = x.shape
        n = self.input_layernorm(x)
        q = self.q_proj(n).view(b, s, a.heads, a.head_dim).transpose(1, 2)
        k = self.k_proj(n).view(b, s, a.kv_heads, a.head_dim).transpose(1, 2)
        v = self.v_proj(n).view(b, s, a.kv_heads, a.head_dim).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        g = a.heads // a.kv_heads
        k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(a.head_dim)
        p = scores.masked_fill(mask, float("-inf")).softmax(-1)
        o = (p @ v).transpose(1, 2).reshape(b, s, a.heads * a.head_dim)
        h = x + self.o_proj(o)
        m = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.embed_tokens = nn.Embedding(a.vocab, a.hidden)
        self.layers = nn.ModuleList([Layer(a) for _ in range(a.layers)])
        self.norm = RMSNorm(a.hidden, a.eps)
        self.lm_head = nn.Linear(a.hidden, a.vocab, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        inv = a.rope_theta ** (-torch.arange(0, a.head_dim, 2, dtype=torch.float64) / a.head_dim)
        angle = torch.outer(torch.arange(a.seq, dtype=torch.float64), inv)
        self.cos, self.sin = angle.cos().float().to(a.device), angle.sin().float().to(a.device)
        self.mask = torch.ones(a.seq, a.seq, dtype=torch.bool, device=a.device).triu(1)

    def forward(self, ids, targets):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin, self.mask)
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits.view(-1, self.a.vocab), targets.view(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in [("threads", 1), ("steps", 10), ("warmup", 2), ("layers", 4), ("hidden", 256),
                          ("heads", 8), ("kv_heads", 4), ("head_dim", 32), ("ffn", 704), ("vocab", 2048),
                          ("seq", 128), ("batch", 4)]:
        ap.add_argument("--" + name.replace("_", "-"), dest=name, type=int, default=default)
    ap.add_argument("--eps", type=float, default=1e-5)
    ap.add_argument("--rope-theta", dest="rope_theta", type=float, default=10000.0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="fp32", help="fp32, or bf16 (autocast over fp32 parameters)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(a).to(a.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), device=a.device)
    targets = torch.randint(0, a.vocab, (a.batch, a.seq), device=a.device)
    cuda = a.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times = []
    for i in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            loss = model(ids, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    out = {"step_s": times, "torch": torch.__version__, "threads": torch.get_num_threads(), "loss": loss.item(),
           "tokens_per_step": a.batch * a.seq}
    if cuda:
        out["peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
