// One rank of the communicator test (test_comm.cpp starts 2 or 4 of these with RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, PROBE_GRID=dp,pp,cp,tp and PROBE_MESH, the mesh order, innermost first, as
// "tp,cp,dp,pp"). Every collective runs on inputs whose result is known by hand; every group's members,
// as the process groups connect them, must be the planner's rank grid's. The exit code says whether
// every result matched, and stderr says which did not.
#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <sched.h>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "paraplan/exec/communicator.hpp"
#include "paraplan/exec/launch_env.hpp"

using namespace paraplan::exec;
namespace planner = paraplan::planner;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::cerr << "rank " << std::getenv("RANK") << ": " << what << "\n";
  }
}

bool same(const at::Tensor& a, const at::Tensor& b) { return a.sizes() == b.sizes() && at::equal(a, b); }

// Collectives on one group of n ranks where this rank is r.
void check_group(Communicator& c, const std::string& name) {
  const int n = c.size(), r = c.rank();
  const auto f = at::TensorOptions().dtype(at::kFloat);
  // allreduce of (r + 1) * [1, 2, 3]: sum over ranks of (r + 1) = n (n + 1) / 2.
  at::Tensor t = at::arange(1, 4, f) * (r + 1);
  c.allreduce(t);
  expect(same(t, at::arange(1, 4, f) * (n * (n + 1) / 2)), name + " allreduce");
  // async allreduce: the same.
  at::Tensor ta = at::full({5}, static_cast<double>(r), f);
  auto op = c.allreduce_async(ta);
  op->wait();
  expect(same(ta, at::full({5}, n * (n - 1) / 2.0, f)), name + " allreduce_async");
  // allgather: chunk i ends up holding rank i's values 10 i + [0, 1, 2].
  at::Tensor flat = at::zeros({3 * n}, f);
  flat.narrow(0, 3 * r, 3).copy_(at::arange(0, 3, f) + 10 * r);
  c.allgather(flat);
  at::Tensor expect_flat = at::empty({3 * n}, f);
  for (int i = 0; i < n; ++i) expect_flat.narrow(0, 3 * i, 3).copy_(at::arange(0, 3, f) + 10 * i);
  expect(same(flat, expect_flat), name + " allgather");
  // reduce_scatter: rank j contributes j + [0 .. 2n); rank r receives sum_j (j + 2r + {0, 1}) =
  // n(n-1)/2 + n (2r + {0, 1}).
  at::Tensor in = at::arange(0, 2 * n, f) + r, out = at::zeros({2}, f);
  c.reduce_scatter(in, out);
  const double base = n * (n - 1) / 2.0;
  expect(same(out, at::tensor({base + n * 2.0 * r, base + n * (2.0 * r + 1)}, f)), name + " reduce_scatter");
  // broadcast from the last rank.
  at::Tensor b = at::full({4}, static_cast<double>(r), f);
  c.broadcast(b, n - 1);
  expect(same(b, at::full({4}, static_cast<double>(n - 1), f)), name + " broadcast");
  // send / recv around the ring: receive the left neighbour's rank.
  if (n > 1) {
    at::Tensor s = at::full({2}, static_cast<double>(r), f), got = at::zeros({2}, f);
    if (r % 2 == 0) {
      c.send(s, (r + 1) % n);
      c.recv(got, (r + n - 1) % n);
    } else {
      c.recv(got, (r + n - 1) % n);
      c.send(s, (r + 1) % n);
    }
    expect(same(got, at::full({2}, static_cast<double>((r + n - 1) % n), f)), name + " send/recv");
    // Uneven point-to-point (as a pipeline schedule issues it): rank 0 sends to every other rank in
    // turn, and collects their replies in reverse order. Ranks make different numbers of calls, so the
    // tags must be counted per peer, not per group.
    if (r == 0) {
      for (int d = 1; d < n; ++d) c.send(at::full({1}, 100.0 + d, f), d);
      for (int d = n - 1; d >= 1; --d) {
        at::Tensor reply = at::zeros({1}, f);
        c.recv(reply, d);
        expect(reply.item<double>() == 200.0 + d, name + " fan-in from " + std::to_string(d));
      }
    } else {
      at::Tensor mine = at::zeros({1}, f);
      c.recv(mine, 0);
      expect(mine.item<double>() == 100.0 + r, name + " fan-out to " + std::to_string(r));
      c.send(at::full({1}, 200.0 + r, f), 0);
    }
  }
  c.barrier();
}

}  // namespace

int main() {
  const auto env = launch_env();
  if (!env) {
    std::cerr << "comm_probe: RANK/WORLD_SIZE not set\n";
    return 2;
  }
  int dims[4] = {env->world_size, 1, 1, 1};
  if (const char* g = std::getenv("PROBE_GRID")) std::sscanf(g, "%d,%d,%d,%d", &dims[0], &dims[1], &dims[2], &dims[3]);
  planner::ParallelPlan par;
  par.dp = dims[0];
  par.pp = dims[1];
  par.cp = dims[2];
  par.tp = dims[3];
  std::vector<planner::Axis> mesh{planner::Axis::tp, planner::Axis::cp, planner::Axis::dp, planner::Axis::pp};
  if (const char* m = std::getenv("PROBE_MESH")) {
    mesh.clear();
    std::stringstream names(m);
    for (std::string n; std::getline(names, n, ',');)
      for (planner::Axis a : planner::kMeshAxes)
        if (n == planner::to_string(a)) mesh.push_back(a);
  }
  const planner::RankGrid grid(par, mesh);
  GlooOptions opt;
  opt.timeout = std::chrono::seconds(std::getenv("PROBE_TIMEOUT") ? std::atoi(std::getenv("PROBE_TIMEOUT")) : 60);
  std::unique_ptr<ProcessGroups> groups;
  try {
    groups = make_gloo_groups(*env, grid, opt);
  } catch (const std::exception& e) {
    std::cerr << "comm_probe: " << e.what() << "\n";
    return 3;
  }
  // gloo's TCP event loop threads run as SCHED_BATCH (comm_gloo.cpp: woken, they must not preempt a
  // thread holding the pair's lock): every group has one, so at least the world group's.
  int batch = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task"))
    if (sched_getscheduler(std::stoi(e.path().filename().string())) == SCHED_BATCH) ++batch;
  expect(batch >= 1, "gloo's event loop thread runs as SCHED_BATCH");
  check_group(*groups->world, "world");
  using planner::Axis;
  for (Axis a : {Axis::tp, Axis::cp, Axis::dp, Axis::pp, Axis::dp_cp}) {
    const std::string name = planner::to_string(a);
    Communicator& c = groups->of(a);
    expect(c.size() == grid.size(a), name + " group size");
    expect(c.rank() == grid.index_in_group(a, env->rank), name + " group rank");
    if (c.size() > 1) check_group(c, name);
    // Who is really in this rank's group: each member adds a one at its world rank. The ranks the
    // process group connects must be the planner grid's group, in the grid's order.
    at::Tensor members = at::zeros({grid.world()}, at::kFloat);
    members[env->rank] = 1.0f;
    c.allreduce(members);
    at::Tensor order = at::zeros({c.size()}, at::kFloat);
    order[c.rank()] = static_cast<float>(env->rank);
    c.allreduce(order);
    std::vector<int> got;
    for (int i = 0; i < c.size(); ++i) got.push_back(static_cast<int>(order[i].item<float>()));
    expect(got == grid.group(a, env->rank), name + " group's members are the planner grid's");
    expect(members.sum().item<float>() == static_cast<float>(c.size()), name + " group has no other members");
  }
  // The fake communicator keeps shapes: rank 1 of 4 alone.
  planner::ParallelPlan four;
  four.dp = 4;
  auto fake = make_fake_groups(1, planner::RankGrid(four, mesh));
  at::Tensor ff = at::arange(0, 8, at::kFloat);
  fake->dp().allgather(ff);
  expect(same(ff, at::tensor({2.f, 3.f, 2.f, 3.f, 2.f, 3.f, 2.f, 3.f})), "fake allgather copies the own chunk");
  at::Tensor fo = at::zeros({2}, at::kFloat), fi = at::arange(0, 8, at::kFloat);
  fake->dp().reduce_scatter(fi, fo);
  expect(same(fo, at::tensor({2.f, 3.f})), "fake reduce_scatter keeps the own chunk");
  groups->world->barrier();
  return failures == 0 ? 0 : 1;
}
