#pragma once
// Communication between ranks. One interface, three backends:
// - gloo: c10d::ProcessGroupGloo on CPU tensors (allreduce, broadcast, send/recv, barrier natively;
//   allgather and reduce_scatter as rings of send/recv, in place, because LibTorch 1.13's gloo group has
//   no reduce_scatter and no flat allgather — libtorch-notes.md §1);
// - nccl: NCCL's C API on CUDA tensors (only with a CUDA LibTorch);
// - fake: one process stands for rank r of n; collectives return correctly shaped data without
//   talking to anyone, so one rank's memory and compute are exact while the numbers are not.
// Public header without LibTorch: tensors are forward-declared.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "paraplan/exec/launch_env.hpp"
#include "paraplan/exec/op_timer.hpp"
#include "paraplan/rank_grid.hpp"

namespace at {
class Tensor;
}

namespace paraplan::exec {

// An operation in flight; wait() blocks until it is done.
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;

  // Each operation below counts the time this rank spends blocked in it (blocked_seconds): the timing
  // lives here once, the backends implement the protected do_* steps.
  // Sum over the group, in place.
  void allreduce(at::Tensor& t);
  // Starts a sum; the tensor must not be touched until wait(), whose time is counted. Backends without
  // an asynchronous path finish it before returning.
  std::unique_ptr<PendingOp> allreduce_async(at::Tensor& t) { return do_allreduce_async(t); }
  // flat holds size() equal chunks; on entry chunk rank() holds this rank's part, on return every
  // chunk holds its owner's part.
  void allgather(at::Tensor& flat);
  // flat holds size() equal chunks (its contents are destroyed); out (one chunk) receives the sum over
  // ranks of chunk rank().
  void reduce_scatter(at::Tensor& flat, at::Tensor& out);
  void broadcast(at::Tensor& t, int root);
  void send(const at::Tensor& t, int dst);
  void recv(at::Tensor& t, int src);
  // Point-to-point with a message tag (pipeline stages: a tag per activation and gradient, so that a
  // stage may receive in another order than its neighbour sends). send_tagged starts a send; it
  // completes once dst has posted the matching receive (gloo and NCCL both wait for it), so a stage must
  // not block on it before its own receives; t must stay alive until wait(), whose time is counted.
  // Tags from 2^30 up (below, the backends count messages per peer). NCCL has no tags: it matches in
  // order, so there the receiver must take messages in the order they were sent.
  std::unique_ptr<PendingOp> send_tagged(const at::Tensor& t, int dst, int tag) { return do_send_tagged(t, dst, tag); }
  void recv_tagged(at::Tensor& t, int src, int tag);
  // Sends `out` to dst while receiving `in` from src, both posted at once (ring steps, pipeline
  // neighbours that trade activations and gradients).
  void exchange(const at::Tensor& out, int dst, at::Tensor& in, int src);
  void barrier();

  // The group this communicator serves ("dp", "tp", ..., "world"): its calls are timed as the op class
  // comm.<collective>.<label> (op_timer.hpp).
  void set_label(const std::string& label);
  enum Op { kAllReduce, kAllGather, kReduceScatter, kBroadcast, kSendRecv, kBarrier, kOps };
  const char* op_class(Op op) const { return classes_[op].c_str(); }

  // Seconds this rank spent blocked in the calls above (exposed communication).
  double blocked_seconds() const { return blocked_s_; }
  void reset_blocked_seconds() { blocked_s_ = 0; }
  void add_blocked_seconds(double s) { blocked_s_ += s; }  // waits on async operations

 protected:
  virtual void do_allreduce(at::Tensor& t) = 0;
  virtual std::unique_ptr<PendingOp> do_allreduce_async(at::Tensor& t);  // default: allreduce, timed
  virtual void do_allgather(at::Tensor& flat) = 0;
  virtual void do_reduce_scatter(at::Tensor& flat, at::Tensor& out) = 0;
  virtual void do_broadcast(at::Tensor& t, int root) = 0;
  virtual void do_send(const at::Tensor& t, int dst) = 0;
  virtual void do_recv(at::Tensor& t, int src) = 0;
  virtual std::unique_ptr<PendingOp> do_send_tagged(const at::Tensor& t, int dst, int tag) = 0;
  virtual void do_recv_tagged(at::Tensor& t, int src, int tag) = 0;
  virtual void do_exchange(const at::Tensor& out, int dst, at::Tensor& in, int src) = 0;
  virtual void do_barrier() = 0;

 private:
  // Adds the time of one blocking call to blocked_s_, and to its op class.
  template <class F>
  void timed(Op op, F&& f) {
    const OpScope scope(op_class(op));
    const auto t0 = std::chrono::steady_clock::now();
    f();
    blocked_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  double blocked_s_ = 0;
  std::string classes_[kOps] = {"comm.all_reduce.world", "comm.all_gather.world", "comm.reduce_scatter.world",
                                "comm.broadcast.world",  "comm.send_recv.world",  "comm.barrier.world"};
};

// A communicator for each group of the planner's rank grid (rank_grid.hpp: tp, cp, ep, dp, pp and the
// gradient group dp_cp), plus the world. Groups with the same members share one communicator (dp_cp is
// dp when cp = 1); a group of one is a communicator that talks to no one.
struct ProcessGroups {
  planner::RankGrid grid;
  int rank = 0;  // world rank
  std::unique_ptr<Communicator> world;
  std::shared_ptr<Communicator> axis[planner::kAxisCount];  // indexed by planner::Axis
  Communicator& of(planner::Axis a) { return *axis[static_cast<int>(a)]; }
  Communicator& dp() { return of(planner::Axis::dp); }
  Communicator& gradients() { return of(planner::Axis::dp_cp); }  // ZeRO shards and reduces over it
  double blocked_seconds() const;
  void reset_blocked_seconds();
  // A group of some of the ranks (collective among its members only): `name` is the same on every
  // member and unique in the world, `me` this rank's index in it, `n` its size. A group of one talks to
  // no one. Used for the ranks that share a key/value head under tensor parallelism.
  std::shared_ptr<Communicator> subgroup(const std::string& name, int me, int n);
  std::function<std::unique_ptr<Communicator>(const std::string& name, int me, int n)> make_subgroup;  // by the backend
  std::vector<std::shared_ptr<Communicator>> extra;  // subgroups made so far (their blocked time counts)
  // Run-wide values rank 0 publishes (the run id); others block until it is there. Fake groups keep
  // them locally.
  virtual void publish(const std::string& key, const std::string& value) = 0;
  virtual std::string lookup(const std::string& key) = 0;
  // The normal end, after the last collective: the store's host waits for every rank before it closes.
  virtual void finish() {}
  // This rank failed with `error`: tells every other rank to stop (their watch ends them within a
  // second) and returns the message to report — the error itself, or what caused it: a peer's abort, or
  // the ranks whose heartbeat stopped.
  virtual std::string report_failure(const std::string& error) { return error; }
  virtual ~ProcessGroups() = default;
};

struct GlooOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};  // store connect and every collective
  int threads = 1;                                                // gloo's own threads per group
  // Runs on the watch thread when another rank aborted or the store's host is gone, just before this
  // process ends with exit code 1 (e.g. to mark the run failed in the run store).
  std::function<void(const std::string& why)> on_peer_abort;
};

// Connects to the store at env.master_addr:master_port (rank 0 serves it unless torchrun's agent does),
// then builds the world group and this rank's group along every axis of the grid. Errors name the
// address and the timeout.
std::unique_ptr<ProcessGroups> make_gloo_groups(const LaunchEnv& env, const planner::RankGrid& grid,
                                                const GlooOptions& opt);
// Rank `rank` of the grid, alone.
std::unique_ptr<ProcessGroups> make_fake_groups(int rank, const planner::RankGrid& grid);
// NCCL on CUDA tensors; the unique ids travel through the c10d store. Throws when this build has no
// CUDA LibTorch.
std::unique_ptr<ProcessGroups> make_nccl_groups(const LaunchEnv& env, const planner::RankGrid& grid,
                                                const GlooOptions& opt);
bool nccl_available();

}  // namespace paraplan::exec
