#include "pipeline_runner.hpp"

#include <torch/autograd.h>
#include <torch/csrc/autograd/engine.h>

#include <map>
#include <stdexcept>
#include <tuple>

#include "paraplan/exec/memory_meter.hpp"
#include "paraplan/pipeline_schedule.hpp"

namespace paraplan::exec {

using planner::OpType;
using planner::ScheduleOp;

namespace {

// A micro-batch between its F and its B (and W) on one model chunk.
struct Flight {
  at::Tensor input;                           // the received activation (a leaf needing its gradient)
  torch::autograd::Edge output;               // where the chunk's output (or loss) enters the graph
  std::vector<std::function<void()>> w;       // weight gradients kept for the W pass
};

// A tensor handed to another model chunk: in flight to another stage, or waiting here for this
// stage's own next chunk (ZBV's turn at the last stage).
struct Sent {
  at::Tensor tensor;
  std::unique_ptr<PendingOp> op;  // null for a hand-over on this stage
  int release = 0;                // the op at whose start it is dropped
};

}  // namespace

struct PipelineRunner::Impl {
  const planner::Plan& plan;
  Communicator& pp;
  Model& model;
  ZeroEngine& engine;
  int stage;
  planner::Schedule schedule;
  std::vector<int> release;   // send_release for this stage
  std::vector<int> last_grads;  // per local chunk: its last op that computes weight gradients
  std::map<std::pair<int, int64_t>, Flight> flights;  // (model chunk, micro-batch)
  std::vector<Sent> sent;
  std::map<std::tuple<int, int, int64_t>, at::Tensor> local;  // (type, receiving chunk, mb) -> hand-over
  std::string log;
  std::vector<int64_t> after;
  int peak = -1;

  Impl(const planner::Plan& p, Communicator& c, Model& m, ZeroEngine& e, int s)
      : plan(p), pp(c), model(m), engine(e), stage(s),
        schedule(planner::make_schedule(p.parallel.pp_schedule, p.parallel.pp, p.parallel.virtual_stages,
                                        p.micro_batches())) {
    release = planner::send_release(schedule)[static_cast<size_t>(stage)];
    const auto& ops = schedule.stages[static_cast<size_t>(stage)];
    last_grads.assign(static_cast<size_t>(schedule.v), -1);
    const OpType grads = schedule.split_backward ? OpType::W : OpType::B;
    for (size_t k = 0; k < ops.size(); ++k)
      if (ops[k].type == grads) last_grads[static_cast<size_t>(ops[k].chunk)] = static_cast<int>(k);
  }

  // The message for op `type` of chunk `chunk` on micro-batch mb: one tag each within a step.
  int tag(OpType type, int chunk, int64_t mb) const {
    const int64_t n = (static_cast<int64_t>(type) * schedule.p * schedule.v + chunk) * schedule.m + mb;
    return (1 << 30) + static_cast<int>(n % (1 << 30));
  }

  at::Tensor activation_like() const {
    const int64_t rows = model.tokens_per_rank_activation(plan.training.micro_batch * plan.training.seq_len);
    const ZeroEngineOptions& o = engine.options();
    return at::empty({rows, plan.model.hidden}, at::TensorOptions().dtype(o.compute).device(o.device));
  }

  // The tensor op `op` receives: from another stage, or handed over on this one.
  at::Tensor receive(OpType type, int chunk, int64_t mb, int from_chunk) {
    const int from = schedule.stage_of(from_chunk);
    if (from == stage) {
      auto it = local.find({static_cast<int>(type), chunk, mb});
      if (it == local.end()) throw std::logic_error("pipeline: nothing handed over for chunk " + std::to_string(chunk));
      at::Tensor t = it->second;
      local.erase(it);
      return t;
    }
    at::Tensor t = activation_like();
    pp.recv_tagged(t, from, tag(type, chunk, mb));
    return t;
  }

  void send(const at::Tensor& t, OpType type, int to_chunk, int64_t mb, int k) {
    const int to = schedule.stage_of(to_chunk);
    if (to == stage) {
      local[{static_cast<int>(type), to_chunk, mb}] = t;
      return;
    }
    sent.push_back({t, pp.send_tagged(t, to, tag(type, to_chunk, mb)), release[static_cast<size_t>(k)]});
  }

  // Drops what was sent and is known to have arrived by op k (k = ops.size(): the end of the step).
  void drop_sent(int k) {
    for (auto it = sent.begin(); it != sent.end();) {
      if (it->release <= k) {
        it->op->wait();
        it = sent.erase(it);
      } else {
        ++it;
      }
    }
  }

  void forward(int k, const ScheduleOp& op, const BatchSource& batch, double scale, double& loss_sum) {
    const int c = schedule.model_chunk(stage, op.chunk);
    at::Tensor x;
    if (c > 0) {
      x = receive(OpType::F, c, op.mb, c - 1).detach();
      x.requires_grad_(true);
    }
    drop_sent(k);
    const bool last = model.is_last_chunk(c);
    at::Tensor out = model.forward_chunk(c, x, batch(op.mb, c == 0, last), scale);
    Flight f;
    f.input = x;
    f.output = torch::autograd::impl::gradient_edge(out);
    if (last)
      loss_sum += out.item<double>();
    else
      send(out.detach(), OpType::F, c + 1, op.mb, k);
    flights[{c, op.mb}] = std::move(f);
  }

  void backward(int k, const ScheduleOp& op) {
    const int c = schedule.model_chunk(stage, op.chunk);
    Flight& f = flights.at({c, op.mb});
    engine.gather(model.last_unit(c));
    at::Tensor dy;
    if (model.is_last_chunk(c))
      dy = at::ones({}, at::TensorOptions().dtype(at::kFloat).device(engine.options().device));  // the loss's seed
    else
      dy = receive(OpType::B, c, op.mb, c + 1);
    drop_sent(k);
    const bool split = schedule.split_backward;
    if (split)
      engine.set_deferred(&f.w);
    else
      engine.begin_grads(c, last_grads[static_cast<size_t>(op.chunk)] == k);
    torch::autograd::Engine::get_default_engine().execute({f.output}, {dy}, /*keep_graph=*/false,
                                                          /*create_graph=*/false, /*accumulate_grad=*/true);
    dy.reset();
    f.output = torch::autograd::Edge();
    engine.set_deferred(nullptr);
    if (!split) engine.end_grads(c);
    if (c > 0) {
      at::Tensor dx = f.input.grad();
      f.input.mutable_grad().reset();
      f.input.reset();
      send(dx, OpType::B, c - 1, op.mb, k);
    }
    if (!split) flights.erase({c, op.mb});
  }

  void weights(int k, const ScheduleOp& op) {
    const int c = schedule.model_chunk(stage, op.chunk);
    drop_sent(k);
    auto it = flights.find({c, op.mb});
    engine.begin_grads(c, last_grads[static_cast<size_t>(op.chunk)] == k, /*w_pass=*/true);
    at::NoGradGuard no_grad;  // as inside the backward, where these were made
    for (auto& fn : it->second.w) {
      fn();
      fn = nullptr;  // what it kept goes with it
    }
    engine.end_grads(c);
    flights.erase(it);
  }
};

PipelineRunner::PipelineRunner(const planner::Plan& plan, Communicator& pp, Model& model, ZeroEngine& engine, int stage)
    : impl_(std::make_unique<Impl>(plan, pp, model, engine, stage)) {}

PipelineRunner::~PipelineRunner() = default;

double PipelineRunner::run(const BatchSource& batch, double scale) {
  Impl& m = *impl_;
  const auto& ops = m.schedule.stages[static_cast<size_t>(m.stage)];
  double loss_sum = 0;
  std::vector<ScheduleOp> done;
  m.after.clear();
  int64_t best = -1;
  m.peak = -1;
  const bool metered = counting_allocator_installed();
  for (size_t k = 0; k < ops.size(); ++k) {
    const ScheduleOp& op = ops[k];
    if (metered) reset_window_peak();
    memory_mark(planner::to_string(std::vector<ScheduleOp>{op}, m.schedule.v).c_str());
    switch (op.type) {
      case OpType::F: m.forward(static_cast<int>(k), op, batch, scale, loss_sum); break;
      case OpType::B: m.backward(static_cast<int>(k), op); break;
      case OpType::W: m.weights(static_cast<int>(k), op); break;
    }
    done.push_back(op);
    if (metered) {
      const int64_t w = window_peak();
      if (w > best) {
        best = w;
        m.peak = static_cast<int>(k);
      }
      m.after.push_back(memory_snapshot().current_total);
    }
  }
  m.drop_sent(static_cast<int>(ops.size()));
  if (!m.flights.empty() || !m.local.empty())
    throw std::logic_error("pipeline: the schedule left micro-batches in flight at the end of the step");
  m.log = planner::to_string(done, m.schedule.v);
  return loss_sum;
}

const std::string& PipelineRunner::op_log() const { return impl_->log; }
int PipelineRunner::peak_op() const { return impl_->peak; }
const std::vector<int64_t>& PipelineRunner::bytes_after_op() const { return impl_->after; }

}  // namespace paraplan::exec
