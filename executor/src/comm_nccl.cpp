// The NCCL backend (compiled only against a CUDA LibTorch, PARAPLAN_CUDA_TORCH): NCCL's C API on CUDA
// tensors, enqueued on the default stream, which ATen's kernels also use unless a caller sets another,
// so stream order alone keeps collectives and compute in sequence. Unique ids travel through the c10d
// store (ncclGetUniqueId on the group's first rank, ncclCommInitRank on all; NCCL user guide,
// "Creating a communicator with options" / "Creating more communicators").
#include <ATen/ATen.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "comm_internal.hpp"
#include "paraplan/exec/communicator.hpp"
#include "store_groups.hpp"

namespace paraplan::exec {

namespace {

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string("NCCL ") + what + ": " + ncclGetErrorString(r));
}
void check(cudaError_t r, const char* what) {
  if (r != cudaSuccess) throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(r));
}

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return ncclFloat32;
    case at::kBFloat16: return ncclBfloat16;
    case at::kHalf: return ncclFloat16;
    case at::kDouble: return ncclFloat64;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    default: break;
  }
  throw std::invalid_argument(std::string("NCCL: unsupported dtype ") + c10::toString(t.scalar_type()));
}

void check_cuda(const at::Tensor& t, const char* op) {
  if (!t.is_cuda() || !t.is_contiguous())
    throw std::invalid_argument(std::string("NCCL ") + op + ": needs a contiguous CUDA tensor");
}

// An operation already ordered on the stream.
class Enqueued final : public PendingOp {
 public:
  void wait() override {}
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, std::chrono::milliseconds timeout)
      : comm_(comm), rank_(rank), size_(size), timeout_(timeout) {}
  ~NcclCommunicator() override {
    if (!aborted_) ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }


 protected:
  void do_allreduce(at::Tensor& t) override {
    check_cuda(t, "allreduce");
    check(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), ncclSum, comm_, stream_),
          "allreduce");
    sync();
  }
  std::unique_ptr<PendingOp> do_allreduce_async(at::Tensor& t) override {
    // Enqueued behind the backward kernels that produced t and before the optimizer's: nothing to wait for
    // on the host.
    check_cuda(t, "allreduce");
    check(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), ncclSum, comm_, stream_),
          "allreduce");
    return std::make_unique<Enqueued>();
  }
  void do_allgather(at::Tensor& flat) override {
    check_cuda(flat, "allgather");
    const size_t c = static_cast<size_t>(flat.numel() / size_);
    char* base = static_cast<char*>(flat.data_ptr());
    // In place: the send buffer is this rank's chunk of the receive buffer (NCCL docs, "In-place operations").
    check(ncclAllGather(base + rank_ * c * flat.element_size(), base, c, nccl_type(flat), comm_, stream_), "allgather");
    sync();
  }
  void do_reduce_scatter(at::Tensor& flat, at::Tensor& out) override {
    check_cuda(flat, "reduce_scatter");
    check(ncclReduceScatter(flat.data_ptr(), out.data_ptr(), static_cast<size_t>(out.numel()), nccl_type(flat), ncclSum,
                            comm_, stream_),
          "reduce_scatter");
    sync();
  }
  void do_broadcast(at::Tensor& t, int root) override {
    check(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), root, comm_, stream_),
          "broadcast");
    sync();
  }
  void do_send(const at::Tensor& t, int dst) override {
    check(ncclSend(t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), dst, comm_, stream_), "send");
    sync();
  }
  // On a stream of its own, so that a receive enqueued after it on the default stream is not held up
  // behind it (NCCL completes a send only when the peer receives: two stages that each send before they
  // receive would otherwise wait for each other). The send stream first waits for the kernels that
  // produced t.
  void do_recv_tagged(at::Tensor& t, int src, int) override { do_recv(t, src); }
  std::unique_ptr<PendingOp> do_send_tagged(const at::Tensor& t, int dst, int) override {
    if (!send_stream_) check(cudaStreamCreateWithFlags(&send_stream_, cudaStreamNonBlocking), "stream create");
    cudaEvent_t ready;
    check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "event create");
    check(cudaEventRecord(ready, stream_), "event record");
    check(cudaStreamWaitEvent(send_stream_, ready, 0), "stream wait");
    check(cudaEventDestroy(ready), "event destroy");
    check(ncclSend(t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), dst, comm_, send_stream_), "send");
    return std::make_unique<StreamOp>(this);
  }
  void do_recv(at::Tensor& t, int src) override {
    check(ncclRecv(t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), src, comm_, stream_), "recv");
    sync();
  }
  void do_barrier() override {
    at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA));
    do_allreduce(one);
  }
  void do_exchange(const at::Tensor& out, int dst, at::Tensor& in, int src) override {
    check(ncclGroupStart(), "group start");
    check(ncclSend(out.data_ptr(), static_cast<size_t>(out.numel()), nccl_type(out), dst, comm_, stream_), "send");
    check(ncclRecv(in.data_ptr(), static_cast<size_t>(in.numel()), nccl_type(in), src, comm_, stream_), "recv");
    check(ncclGroupEnd(), "group end");
    sync();
  }

 private:
  // Waits for the stream, but not forever: a peer that died leaves NCCL's kernels spinning, and
  // cudaStreamSynchronize would never return. Poll the stream and NCCL's asynchronous error; past the
  // timeout (GlooOptions::timeout, the same as the gloo backend's), abort the communicator and throw,
  // so that the worker exits and the launcher stops the others (NCCL user guide, "Fault tolerance":
  // ncclCommGetAsyncError / ncclCommAbort).
  void sync() { sync(stream_); }
  void sync(cudaStream_t stream) {
    const auto start = std::chrono::steady_clock::now();
    for (int polls = 0;; ++polls) {
      const cudaError_t q = cudaStreamQuery(stream);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) check(q, "stream query");
      ncclResult_t async = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &async), "get async error");
      if (async != ncclSuccess && async != ncclInProgress) abort(std::string("asynchronous error: ") + ncclGetErrorString(async));
      if (std::chrono::steady_clock::now() - start > timeout_)
        abort("no progress for " + std::to_string(timeout_.count() / 1000) + " s: a peer died or hangs");
      if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));  // spin first: short collectives
    }
  }
  [[noreturn]] void abort(const std::string& why) {
    ncclCommAbort(comm_);
    aborted_ = true;
    throw std::runtime_error("NCCL rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " + why +
                             "; communicator aborted");
  }
  // A send on send_stream_: wait() polls that stream as sync() polls the default one.
  class StreamOp final : public PendingOp {
   public:
    explicit StreamOp(NcclCommunicator* c) : c_(c) {}
    void wait() override { c_->sync(c_->send_stream_); }

   private:
    NcclCommunicator* c_;
  };
  ncclComm_t comm_;
  int rank_, size_;
  std::chrono::milliseconds timeout_;
  bool aborted_ = false;
  cudaStream_t stream_ = nullptr;  // the legacy default stream
  cudaStream_t send_stream_ = nullptr;
};

ncclComm_t make_comm(c10d::Store& store, const std::string& key, int rank, int size) {
  ncclUniqueId id;
  if (rank == 0) {
    check(ncclGetUniqueId(&id), "get unique id");
    const auto* p = reinterpret_cast<const uint8_t*>(&id);
    store.set(key, std::vector<uint8_t>(p, p + sizeof id));
  } else {
    const std::vector<uint8_t> v = store.get(key);
    if (v.size() != sizeof id) throw std::runtime_error("NCCL unique id under " + key + " has the wrong size");
    std::memcpy(&id, v.data(), sizeof id);
  }
  ncclComm_t comm;
  check(ncclCommInitRank(&comm, size, id, rank), "communicator init");
  return comm;
}

}  // namespace

bool nccl_available() { return true; }

std::unique_ptr<ProcessGroups> make_nccl_groups(const LaunchEnv& env, const planner::RankGrid& grid,
                                                const GlooOptions& opt) {
  check(cudaSetDevice(env.local_rank), "set device");
  auto groups = std::make_unique<StoreGroups>(env, connect_store(env, opt.timeout), opt.on_peer_abort);
  groups->grid = grid;
  groups->rank = env.rank;
  c10d::Store& store = *groups->store();
  groups->world = std::make_unique<NcclCommunicator>(make_comm(store, "nccl/world", env.rank, env.world_size), env.rank,
                                                     env.world_size, opt.timeout);
  build_axis_groups(*groups, [&](planner::Axis, const std::string& name, int me, int n) {
    return std::make_unique<NcclCommunicator>(make_comm(store, "nccl/" + name, me, n), me, n, opt.timeout);
  });
  StoreGroups* g = groups.get();
  groups->make_subgroup = [g, opt](const std::string& name, int me, int n) -> std::unique_ptr<Communicator> {
    return std::make_unique<NcclCommunicator>(make_comm(*g->store(), "nccl/" + name, me, n), me, n, opt.timeout);
  };
  return groups;
}

}  // namespace paraplan::exec
