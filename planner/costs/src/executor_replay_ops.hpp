#pragma once
// The executor's allocations op by op, as its autograd Functions make and free them (executor/src/
// linear_fn.cpp, attention_fn.cpp, vocab_fn.cpp, functions.cpp): the pieces executor_replay.cpp composes
// into a layer, a chunk and a pipeline stage. Each forward leaves what the op keeps; each backward
// frees, at its node's end, what only that node held (the comments in the .cpp say which).
#include <vector>

#include "executor_replay.hpp"

namespace paraplan::planner::replay_ops {

// ATen's reshape is a view when the permuted strides allow it (at::detail::computeStride): attention's
// regrouping copies otherwise.
bool q_groups_view(const ExecDims& x);
bool kv_groups_view(const ExecDims& x);
bool q_back_view(const ExecDims& x);
bool kv_back_view(const ExecDims& x);

double stats(const ExecDims& x);   // rstd (or the mean) [Tl, 1] fp32
double rows(const ExecDims& x);    // query rows of all local heads
double scores(const ExecDims& x);  // S: the probabilities' elements [b*H, s, s]

void norm_fwd(Replay& r, const ExecDims& x, bool node);
void norm_weight_grads(Replay& r, const ExecDims& x, bool recompute_xhat, double rs);
void norm_bwd(Replay& r, const ExecDims& x, bool trainable, bool frees_x, Deferred* w);
void column_fwd(Replay& r, const ExecDims& x, const std::vector<double>& widths, const std::vector<bool>& lora);
void column_weight_grads(Replay& r, const ExecDims& x, const std::vector<double>& widths, bool biases, double rs);
void column_bwd(Replay& r, const ExecDims& x, const std::vector<double>& widths, const std::vector<bool>& lora,
                bool biases, bool input_grad, Deferred* w, bool trainable = true);
void row_fwd(Replay& r, const ExecDims& x, bool lora);
void row_bwd(Replay& r, const ExecDims& x, double in, bool lora, bool bias, bool input_grad, bool incoming_alone,
             Deferred* w);
void dropout_fwd(Replay& r, const ExecDims& x, double n);
void attention_fwd(Replay& r, const ExecDims& x, bool node);
void attention_bwd(Replay& r, const ExecDims& x);
void logsumexp(Replay& r, double rows_n, double cols);
void local_ids(Replay& r, double T);
void loss_fwd(Replay& r, const ExecDims& x, int tp);
void loss_bwd(Replay& r, const ExecDims& x);

}  // namespace paraplan::planner::replay_ops
