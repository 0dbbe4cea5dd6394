// The gloo backend: c10d::ProcessGroupGloo held by its concrete type, which compiles unchanged on
// LibTorch 1.13 (ProcessGroupGloo : ProcessGroup) and 2.x (ProcessGroupGloo : Backend) —
// libtorch-notes.md §1. One TCPStore at MASTER_ADDR:MASTER_PORT; each grid axis gets its own group
// over a PrefixStore.
#include <ATen/ATen.h>

// A LibTorch without gloo (or a wheel that does not ship gloo's headers) still builds the executor,
// for NCCL: make_gloo_groups then says what is missing.
#if defined(USE_C10D_GLOO) && __has_include(<gloo/config.h>)
#define PARAPLAN_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#include <stdexcept>
#include <string>
#include <chrono>
#include <thread>
#include <cstdio>
#include <set>

#include "comm_internal.hpp"
#include "store_groups.hpp"
#include "thread_policy.hpp"
#include "errors.hpp"
#include "paraplan/exec/communicator.hpp"

namespace paraplan::exec {

#ifdef PARAPLAN_HAVE_GLOO
namespace {

using GlooPtr = c10::intrusive_ptr<c10d::ProcessGroupGloo>;

using WorkPtr = c10::intrusive_ptr<c10d::Work>;

class GlooOp final : public PendingOp {
 public:
  GlooOp(WorkPtr w, Communicator* owner, Communicator::Op op) : work_(std::move(w)), owner_(owner), op_(op) {}
  void wait() override {
    const OpScope scope(owner_->op_class(op_));
    const auto t0 = std::chrono::steady_clock::now();
    work_->wait();
    owner_->add_blocked_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }

 private:
  WorkPtr work_;
  Communicator* owner_;
  Communicator::Op op_;  // the class its wait is counted in
};

class StagedDone final : public PendingOp {
 public:
  void wait() override {}
};

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(GlooPtr pg, int rank, int size) : pg_(std::move(pg)), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "gloo"; }

 protected:
  void host_allreduce(at::Tensor& t) {
    std::vector<at::Tensor> v{t};
    WorkPtr w = pg_->allreduce(v);
    w->wait();
    // gloo's worker thread drops its reference to the work (and so to t) only after wait() has returned;
    // a temporary all-reduced here and dropped by the caller would then be freed a scheduling delay
    // later, and counted in whatever peak comes next. Wait until this is the last reference — sleeping,
    // not yielding: with more runnable threads than cores (two ranks and their gloo workers on two cores),
    // a yield loop kept the worker that must drop the reference off the core, and each all-reduce took
    // 2.7-4 ms against 0.1 ms for an all-gather of the same size (the probe on the 2-core machine).
    for (int polls = 0; w.use_count() > 1; ++polls) {
      if (polls < 16)
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  std::unique_ptr<PendingOp> do_allreduce_async(at::Tensor& t) override {
    if (t.is_cuda()) {  // staged through the host: finished here
      do_allreduce(t);
      return std::make_unique<StagedDone>();
    }
    std::vector<at::Tensor> v{t};
    return std::make_unique<GlooOp>(pg_->allreduce(v), this, kAllReduce);
  }

  // CUDA tensors (ranks sharing one GPU, PARAPLAN_GPU_COMM=gloo: NCCL refuses two ranks on one device):
  // gloo moves host memory, so each operation runs on a host copy and the result is copied back.
  template <class F>
  static void staged(at::Tensor& t, F&& op) {
    if (!t.is_cuda()) {
      op(t);
      return;
    }
    at::Tensor h = t.to(at::kCPU);
    op(h);
    t.copy_(h);
  }
  void do_allreduce(at::Tensor& t) override {
    staged(t, [&](at::Tensor& x) { host_allreduce(x); });
  }
  void do_allgather(at::Tensor& flat) override {
    staged(flat, [&](at::Tensor& x) { host_allgather(x); });
  }
  void do_reduce_scatter(at::Tensor& flat, at::Tensor& out) override {
    staged(flat, [&](at::Tensor& f) { staged(out, [&](at::Tensor& o) { host_reduce_scatter(f, o); }); });
  }
  void do_broadcast(at::Tensor& t, int root) override {
    staged(t, [&](at::Tensor& x) { host_broadcast(x, root); });
  }
  void do_send(const at::Tensor& t, int dst) override { host_send(t.is_cuda() ? t.to(at::kCPU) : t, dst); }
  void do_recv(at::Tensor& t, int src) override {
    staged(t, [&](at::Tensor& x) { host_recv(x, src); });
  }
  void do_exchange(const at::Tensor& out, int dst, at::Tensor& in, int src) override {
    const at::Tensor o = out.is_cuda() ? out.to(at::kCPU) : out;
    staged(in, [&](at::Tensor& x) { host_exchange(o, dst, x, src); });
  }
  // LibTorch 1.13's gloo group has no reduce_scatter and no flat allgather (libtorch-notes.md §1): both
  // run as rings of paired send/recv, in place (Patarasuk & Yuan 2009, "Bandwidth optimal all-reduce
  // algorithms for clusters of workstations": size()-1 steps, each passing one chunk to the next rank).
  void host_allgather(at::Tensor& flat) {
    const int n = size_, r = rank_;
    if (n == 1) return;
    const int64_t c = flat.numel() / n;
    const int next = (r + 1) % n, prev = (r + n - 1) % n;
    // Step k: pass on the chunk received in step k-1 (own chunk first); receive the one before it.
    for (int k = 0; k < n - 1; ++k) {
      const int send_chunk = ((r - k) % n + n) % n;
      const int recv_chunk = ((r - k - 1) % n + n) % n;
      at::Tensor s = flat.narrow(0, send_chunk * c, c);
      at::Tensor d = flat.narrow(0, recv_chunk * c, c);
      host_exchange(s, next, d, prev);
    }
  }
  void host_reduce_scatter(at::Tensor& flat, at::Tensor& out) {
    const int n = size_, r = rank_;
    const int64_t c = flat.numel() / n;
    if (n == 1) {
      out.copy_(flat);
      return;
    }
    const int next = (r + 1) % n, prev = (r + n - 1) % n;
    at::Tensor incoming = at::empty({c}, flat.options());
    // Step k: send the partial sum of chunk r-k-1, receive the partial sum of chunk r-k-2 and add this
    // rank's part; after n-1 steps chunk r holds the sum over all ranks.
    for (int k = 0; k < n - 1; ++k) {
      const int send_chunk = ((r - k - 1) % n + n) % n;
      const int recv_chunk = ((r - k - 2) % n + n) % n;
      at::Tensor s = flat.narrow(0, send_chunk * c, c);
      host_exchange(s, next, incoming, prev);
      flat.narrow(0, recv_chunk * c, c).add_(incoming);
    }
    out.copy_(flat.narrow(0, r * c, c));
  }
  void host_broadcast(at::Tensor& t, int root) {
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    pg_->broadcast(v, o)->wait();
  }
  void host_send(const at::Tensor& t, int dst) {
    std::vector<at::Tensor> v{t};
    pg_->send(v, dst, send_tag(dst))->wait();
  }
  std::unique_ptr<PendingOp> do_send_tagged(const at::Tensor& t, int dst, int tag) override {
    std::vector<at::Tensor> v{t.is_cuda() ? t.to(at::kCPU) : t};  // the work keeps the host copy
    return std::make_unique<GlooOp>(pg_->send(v, dst, tag), this, kSendRecv);
  }
  void do_recv_tagged(at::Tensor& t, int src, int tag) override {
    staged(t, [&](at::Tensor& x) {
      std::vector<at::Tensor> v{x};
      pg_->recv(v, src, tag)->wait();
    });
  }
  void host_recv(at::Tensor& t, int src) {
    std::vector<at::Tensor> v{t};
    pg_->recv(v, src, recv_tag(src))->wait();
  }
  void host_exchange(const at::Tensor& out, int dst, at::Tensor& in, int src) {
    // Both posted before either is waited for.
    std::vector<at::Tensor> s{out}, r{in};
    auto ws = pg_->send(s, dst, send_tag(dst));
    auto wr = pg_->recv(r, src, recv_tag(src));
    ws->wait();
    wr->wait();
  }
  void do_barrier() override { pg_->barrier()->wait(); }

 private:
  // Tags count the messages of each direction of each pair: the k-th send from a to b is the k-th
  // receive of b from a, whatever else either rank exchanged with others (messages between two ranks
  // do not overtake each other, as in MPI). A single per-group counter needed every rank to make the
  // same calls in the same order, which uneven point-to-point (pipeline schedules) does not.
  int send_tag(int dst) { return static_cast<int>(sent_.at(static_cast<size_t>(dst))++ % (1 << 20)); }
  int recv_tag(int src) { return static_cast<int>(received_.at(static_cast<size_t>(src))++ % (1 << 20)); }
  GlooPtr pg_;
  int rank_, size_;
  std::vector<uint64_t> sent_ = std::vector<uint64_t>(static_cast<size_t>(size_), 0);
  std::vector<uint64_t> received_ = std::vector<uint64_t>(static_cast<size_t>(size_), 0);
};


void warn_once(const std::string& what) {
  static bool warned = false;
  if (warned) return;
  warned = true;
  std::fprintf(stderr, "paraplan-worker: %s\n", what.c_str());
}

GlooPtr make_group(const c10::intrusive_ptr<c10d::Store>& store, const std::string& prefix, int rank, int size,
                   const GlooOptions& opt) {
  auto o = c10d::ProcessGroupGloo::Options::create();
  // The device starts gloo's TCP event loop thread (gloo/transport/tcp/device.cc: the Device owns a
  // Loop, which runs epoll_wait level-triggered); its scheduling policy: thread_policy.hpp
  // event_loop_policy (36 of 36 2-rank collectives of three `paraplan probe --quick` runs fast as
  // SCHED_BATCH, against 13 of 36 slow before: docs/calibration.md).
  const std::set<int> before = thread_ids();
  o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  std::set<int> started;
  for (int tid : thread_ids())
    if (!before.count(tid)) started.insert(tid);
  if (const std::string err = set_thread_policy(started, event_loop_policy()); !err.empty())
    warn_once("gloo's event loop keeps the default scheduling policy (" + err +
              "): small collectives may stall for a scheduler tick");
  o->threads = opt.threads;
  o->timeout = opt.timeout;
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
  return c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, size, o);
}

}  // namespace

std::unique_ptr<ProcessGroups> make_gloo_groups(const LaunchEnv& env, const planner::RankGrid& grid,
                                                const GlooOptions& opt) {
  if (grid.world() != env.world_size)
    throw std::invalid_argument("the rank grid " + grid.describe() + " has " + std::to_string(grid.world()) +
                                " ranks but WORLD_SIZE = " + std::to_string(env.world_size));
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  c10::intrusive_ptr<c10d::Store> store = connect_store(env, opt.timeout);
  auto groups = std::make_unique<StoreGroups>(env, store, opt.on_peer_abort);
  groups->grid = grid;
  groups->rank = env.rank;
  try {
    groups->world = std::make_unique<GlooCommunicator>(make_group(store, "world", env.rank, env.world_size, opt),
                                                       env.rank, env.world_size);
    build_axis_groups(*groups, [&](planner::Axis, const std::string& name, int me, int n) {
      return std::make_unique<GlooCommunicator>(make_group(store, name, me, n, opt), me, n);
    });
    groups->make_subgroup = [store, opt](const std::string& name, int me, int n) -> std::unique_ptr<Communicator> {
      return std::make_unique<GlooCommunicator>(make_group(store, name, me, n, opt), me, n);
    };
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(env.rank) + ": building the gloo process groups through " +
                             where + " failed within " + std::to_string(opt.timeout.count() / 1000) +
                             " s (another rank may have stopped): " + error_message(e));
  }
  return groups;
}

#else
std::unique_ptr<ProcessGroups> make_gloo_groups(const LaunchEnv&, const planner::RankGrid&, const GlooOptions&) {
  throw std::runtime_error("this paraplan-worker was built against a LibTorch without gloo (USE_C10D_GLOO or "
                           "gloo's headers missing): CPU workers cannot communicate");
}
#endif  // PARAPLAN_HAVE_GLOO

#ifndef PARAPLAN_CUDA_TORCH
bool nccl_available() { return false; }
std::unique_ptr<ProcessGroups> make_nccl_groups(const LaunchEnv&, const planner::RankGrid&, const GlooOptions&) {
  throw std::runtime_error("the NCCL communicator needs a paraplan-worker built against a CUDA LibTorch "
                           "(this one was built against a CPU-only LibTorch; see scripts/gpu-check)");
}
#endif

}  // namespace paraplan::exec
