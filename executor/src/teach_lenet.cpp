// The chapter's first exercise: LeNet-5 on Fashion-MNIST, data parallel over this world's ranks with
// the same global batch at every world size. Rank r trains on slice r of each global batch; which
// images make a global batch depends only on (seed, epoch), so every world size sees the same batches
// and, up to the order of floating-point sums, takes the same steps.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdint>
#include <random>

#include "lenet.hpp"
#include "paraplan/exec/idx.hpp"
#include "teach_worker.hpp"

namespace paraplan::exec {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Images as fp32 [n, 1, 28, 28], normalised with Fashion-MNIST's training mean and standard deviation
// of the pixel values scaled to [0, 1] (0.2860, 0.3530: computed over the 60,000 training images).
at::Tensor image_tensor(const ImageSet& s, int64_t n) {
  at::Tensor u8 = at::from_blob(const_cast<uint8_t*>(s.images.data()), {n, 1, s.rows, s.cols}, at::kByte);
  return u8.to(at::kFloat).div_(255.0).sub_(0.2860).div_(0.3530);
}

at::Tensor label_tensor(const ImageSet& s, int64_t n) {
  return at::from_blob(const_cast<uint8_t*>(s.labels.data()), {n}, at::kByte).to(at::kLong);
}

// The order of the training images in `epoch`: a Fisher-Yates shuffle driven by mt19937_64, whose
// output sequence the C++ standard fixes (unlike std::shuffle's use of it), so it is the same
// permutation on every rank and every platform.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, int epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  std::mt19937_64 g(seed * 1000003ull + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(g() % static_cast<uint64_t>(i + 1));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

}  // namespace

int run_lenet(const LenetOptions& o) {
  auto groups = data_parallel_groups(o.timeout_s);
  Communicator& comm = groups->dp();
  const int rank = comm.rank(), world = comm.size();
  if (o.global_batch % world != 0)
    throw std::runtime_error("--global-batch = " + std::to_string(o.global_batch) + ": must be divisible by the " +
                             std::to_string(world) + " workers (the same global batch at every worker count)");
  const ImageSet train = load_fashion_mnist(o.data_dir, "train");
  const ImageSet test = load_fashion_mnist(o.data_dir, "t10k");
  const int64_t n_train = o.train_samples > 0 ? std::min(o.train_samples, train.n) : train.n;
  const int64_t n_test = o.test_samples > 0 ? std::min(o.test_samples, test.n) : test.n;
  const at::Tensor x_train = image_tensor(train, train.n), y_train = label_tensor(train, train.n);
  const at::Tensor x_test = image_tensor(test, n_test), y_test = label_tensor(test, n_test);
  const int64_t local_batch = o.global_batch / world;
  const int64_t steps_per_epoch = n_train / o.global_batch;  // the last partial batch is dropped
  if (steps_per_epoch == 0)
    throw std::runtime_error("--train-samples = " + std::to_string(n_train) + ": fewer than one global batch (" +
                             std::to_string(o.global_batch) + ")");

  LeNet5 model(o.seed);
  comm.broadcast(model.flat(), 0);  // DDP's start: every replica has rank 0's weights
  FlatAdam opt(model.numel(), o.lr);
  if (rank == 0)
    emit({{"event", "start"}, {"workers", world}, {"params", model.numel()}, {"train_images", n_train},
          {"test_images", n_test}, {"global_batch", o.global_batch}, {"local_batch", local_batch},
          {"steps_per_epoch", steps_per_epoch}, {"epochs", o.epochs}, {"threads", at::get_num_threads()},
          {"data", train.origin}});
  // This rank's test shard: evaluation is data parallel too; the counts are summed.
  const int64_t shard = (n_test + world - 1) / world, t0i = std::min(n_test, rank * shard);
  const int64_t t_n = std::min(n_test, t0i + shard) - t0i;
  int64_t step = 0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const std::vector<int64_t> order = permutation(n_train, o.seed, epoch);
    const auto t_epoch = Clock::now();
    comm.reset_blocked_seconds();
    double loss_sum = 0;
    for (int64_t k = 0; k < steps_per_epoch; ++k) {
      const auto t_step = Clock::now();
      const double comm_before = comm.blocked_seconds();
      const at::Tensor idx =
          at::from_blob(const_cast<int64_t*>(order.data()) + k * o.global_batch + rank * local_batch, {local_batch},
                        at::kLong);
      const double loss = ddp_step(model, opt, comm, x_train.index_select(0, idx), y_train.index_select(0, idx),
                                   o.global_batch);
      loss_sum += loss;
      ++step;
      if (rank == 0 && (step % o.log_every == 0 || k + 1 == steps_per_epoch))
        emit({{"event", "step"}, {"epoch", epoch}, {"step", step}, {"step_in_epoch", k + 1},
              {"steps_per_epoch", steps_per_epoch}, {"loss", loss}, {"step_s", since(t_step)},
              {"comm_s", comm.blocked_seconds() - comm_before}, {"elapsed_s", since(t_epoch)}});
    }
    const double train_s = since(t_epoch), comm_s = comm.blocked_seconds();
    // Every rank's epoch time and communication time, gathered (one chunk of 2 per rank).
    at::Tensor times = at::zeros({2 * world}, at::kDouble);
    times[2 * rank] = train_s;
    times[2 * rank + 1] = comm_s;
    comm.allgather(times);
    const auto [correct, test_loss] = evaluate(model, x_test.narrow(0, t0i, t_n), y_test.narrow(0, t0i, t_n));
    at::Tensor counts = at::tensor({static_cast<double>(correct), test_loss}, at::kDouble);
    comm.allreduce(counts);
    if (rank == 0) {
      std::vector<double> epoch_s, comm_rank_s;
      for (int r = 0; r < world; ++r) {
        epoch_s.push_back(times[2 * r].item<double>());
        comm_rank_s.push_back(times[2 * r + 1].item<double>());
      }
      emit({{"event", "epoch"}, {"epoch", epoch}, {"step", step}, {"train_loss", loss_sum / static_cast<double>(steps_per_epoch)},
            {"epoch_s", epoch_s}, {"comm_s", comm_rank_s},
            {"samples", steps_per_epoch * o.global_batch},
            {"test_correct", counts[0].item<double>()}, {"test_images", n_test},
            {"test_accuracy", counts[0].item<double>() / static_cast<double>(n_test)},
            {"test_loss", counts[1].item<double>() / static_cast<double>(n_test)}});
    }
  }
  comm.barrier();
  if (rank == 0) emit({{"event", "done"}});
  groups->finish();
  return 0;
}

}  // namespace paraplan::exec
