// The backend-independent parts of the communicator: the timed public operations, the groups of the
// rank grid, and the fake backend.
#include "paraplan/exec/communicator.hpp"

#include "comm_internal.hpp"
#include "errors.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <stdexcept>

namespace paraplan::exec {

namespace {

void check_chunks(const at::Tensor& flat, int n, const char* op) {
  if (!flat.is_contiguous() || flat.dim() != 1 || flat.numel() % n != 0)
    throw std::invalid_argument(std::string(op) + ": needs a contiguous 1-D tensor of " + std::to_string(n) +
                                " equal chunks, got " + std::to_string(flat.numel()) + " elements");
}

class DoneOp final : public PendingOp {
 public:
  void wait() override {}
};

}  // namespace

std::string error_message(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

void Communicator::allreduce(at::Tensor& t) {
  timed(kAllReduce, [&] { do_allreduce(t); });
}

std::unique_ptr<PendingOp> Communicator::do_allreduce_async(at::Tensor& t) {
  allreduce(t);
  return std::make_unique<DoneOp>();
}

void Communicator::allgather(at::Tensor& flat) {
  check_chunks(flat, size(), "allgather");
  timed(kAllGather, [&] { do_allgather(flat); });
}

void Communicator::reduce_scatter(at::Tensor& flat, at::Tensor& out) {
  check_chunks(flat, size(), "reduce_scatter");
  if (out.numel() * size() != flat.numel())
    throw std::invalid_argument("reduce_scatter: output holds " + std::to_string(out.numel()) + " elements, chunk is " +
                                std::to_string(flat.numel() / size()));
  timed(kReduceScatter, [&] { do_reduce_scatter(flat, out); });
}

void Communicator::broadcast(at::Tensor& t, int root) {
  timed(kBroadcast, [&] { do_broadcast(t, root); });
}

void Communicator::send(const at::Tensor& t, int dst) {
  timed(kSendRecv, [&] { do_send(t, dst); });
}

void Communicator::recv(at::Tensor& t, int src) {
  timed(kSendRecv, [&] { do_recv(t, src); });
}

void Communicator::recv_tagged(at::Tensor& t, int src, int tag) {
  timed(kSendRecv, [&] { do_recv_tagged(t, src, tag); });
}

void Communicator::exchange(const at::Tensor& out, int dst, at::Tensor& in, int src) {
  timed(kSendRecv, [&] { do_exchange(out, dst, in, src); });
}

void Communicator::barrier() {
  timed(kBarrier, [&] { do_barrier(); });
}

void Communicator::set_label(const std::string& label) {
  const char* names[kOps] = {"all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv", "barrier"};
  for (int i = 0; i < kOps; ++i) classes_[i] = std::string("comm.") + names[i] + "." + label;
}

double ProcessGroups::blocked_seconds() const {
  // Each communicator counts once: axes with the same ranks share one (dp_cp is dp when cp = 1), and an
  // axis that spans the world may be the world's own.
  std::vector<const Communicator*> seen;
  double s = 0;
  auto add = [&](const Communicator* c) {
    if (!c || std::find(seen.begin(), seen.end(), c) != seen.end()) return;
    seen.push_back(c);
    s += c->blocked_seconds();
  };
  add(world.get());
  for (const auto& a : axis) add(a.get());
  for (const auto& e : extra) add(e.get());  // subgroups (shared key/value heads, tied embeddings)
  return s;
}

void ProcessGroups::reset_blocked_seconds() {
  if (world) world->reset_blocked_seconds();
  for (auto& a : axis)
    if (a) a->reset_blocked_seconds();
  for (auto& e : extra) e->reset_blocked_seconds();
}

std::shared_ptr<Communicator> ProcessGroups::subgroup(const std::string& name, int me, int n) {
  std::shared_ptr<Communicator> c;
  if (n == 1)
    c = make_fake_communicator(0, 1);
  else if (make_subgroup)
    c = make_subgroup(name, me, n);
  else
    c = make_fake_communicator(me, n);
  extra.push_back(c);
  return c;
}

// ---- fake ----

namespace {

class FakeCommunicator final : public Communicator {
 public:
  FakeCommunicator(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return size_ == 1 ? "self" : "fake"; }

 protected:
  void do_allreduce(at::Tensor&) override {}  // every other rank contributed zeros
  void do_allgather(at::Tensor& flat) override {
    // The other ranks' chunks get copies of this rank's: finite values of the right scale, so the
    // compute that follows costs what it would.
    const int64_t c = flat.numel() / size_;
    at::Tensor own = flat.narrow(0, rank_ * c, c);
    for (int i = 0; i < size_; ++i)
      if (i != rank_) flat.narrow(0, i * c, c).copy_(own);
  }
  void do_reduce_scatter(at::Tensor& flat, at::Tensor& out) override {
    const int64_t c = flat.numel() / size_;
    out.copy_(flat.narrow(0, rank_ * c, c));
  }
  void do_broadcast(at::Tensor&, int) override {}
  void do_send(const at::Tensor&, int) override {}
  void do_recv(at::Tensor& t, int) override { t.zero_(); }
  std::unique_ptr<PendingOp> do_send_tagged(const at::Tensor&, int, int) override { return std::make_unique<DoneOp>(); }
  void do_recv_tagged(at::Tensor& t, int, int) override { t.zero_(); }
  void do_exchange(const at::Tensor&, int, at::Tensor& in, int) override { in.zero_(); }
  void do_barrier() override {}

 private:
  int rank_, size_;
};

class FakeGroups final : public ProcessGroups {
 public:
  void publish(const std::string& key, const std::string& value) override { values_[key] = value; }
  std::string lookup(const std::string& key) override {
    auto it = values_.find(key);
    if (it == values_.end()) throw std::runtime_error("fake process group: nothing published under " + key);
    return it->second;
  }

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace

std::unique_ptr<Communicator> make_fake_communicator(int rank, int size) {
  return std::make_unique<FakeCommunicator>(rank, size);
}

void build_axis_groups(ProcessGroups& g, const MakeGroup& make) {
  using planner::Axis;
  const planner::RankGrid& grid = g.grid;
  auto slot = [&](Axis a) -> std::shared_ptr<Communicator>& { return g.axis[static_cast<int>(a)]; };
  for (Axis a : {Axis::tp, Axis::cp, Axis::dp, Axis::pp, Axis::ep, Axis::dp_cp}) {
    const int n = grid.size(a);
    if (a == Axis::dp_cp && grid.size(Axis::cp) == 1) {
      slot(a) = slot(Axis::dp);  // the same ranks
    } else if (a == Axis::dp_cp && grid.size(Axis::dp) == 1) {
      slot(a) = slot(Axis::cp);
    } else if (n == 1) {
      slot(a) = make_fake_communicator(0, 1);
    } else {
      const std::string name = std::string(planner::to_string(a)) + "/" + std::to_string(grid.group_id(a, g.rank));
      slot(a) = make(a, name, grid.index_in_group(a, g.rank), n);
    }
  }
}

std::unique_ptr<ProcessGroups> make_fake_groups(int rank, const planner::RankGrid& grid) {
  auto g = std::make_unique<FakeGroups>();
  g->grid = grid;
  g->rank = rank;
  g->world = std::make_unique<FakeCommunicator>(rank, grid.world());
  // Every group as this rank sees it (its index and size), none of them connected.
  build_axis_groups(*g, [](planner::Axis, const std::string&, int me, int n) { return make_fake_communicator(me, n); });
  return g;
}

}  // namespace paraplan::exec
