#include "gather.hpp"

#include <map>

#include "paraplan/exec/memory_meter.hpp"

namespace paraplan::exec {

using planner::Axis;

namespace {

RankPosition position(const planner::RankGrid& grid, int rank) {
  return {grid.index_in_group(Axis::pp, rank), grid.index_in_group(Axis::tp, rank)};
}

// Copies a slice into its place in the whole tensor (rows past the real vocabulary are padding).
void place(at::Tensor& whole, const ParamInfo& p, const at::Tensor& slice) {
  if (p.shard_dim < 0) {
    whole.copy_(slice);
    return;
  }
  const int64_t d = p.shard_dim, size = p.full_shape[static_cast<size_t>(d)];
  const int64_t n = std::max<int64_t>(0, std::min(p.shape[static_cast<size_t>(d)], size - p.shard_start));
  if (n > 0) whole.narrow(d, p.shard_start, n).copy_(slice.narrow(d, 0, n));
}

}  // namespace

WholeModel gather_model(ZeroEngine& engine, ProcessGroups& groups, const planner::Plan& plan,
                        const std::function<bool(const ParamInfo&)>& keep) {
  CategoryScope cat(MemCategory::other);
  const planner::RankGrid& grid = groups.grid;
  const bool contributes = groups.dp().rank() == 0;
  std::vector<std::pair<ParamInfo, at::Tensor>> mine;
  engine.visit_full([&](const ParamInfo& p, const at::Tensor& t) {
    if (contributes && keep(p)) mine.emplace_back(p, t.detach().clone());
  });
  Communicator& world = *groups.world;
  WholeModel out;
  if (groups.rank != 0) {
    if (contributes)
      for (const auto& [p, t] : mine) world.send(t.contiguous(), 0);
    return out;
  }
  const ModelLayout whole = model_layout(plan.model, plan.training.lora);
  std::map<std::string, size_t> index;
  for (const UnitLayout& u : whole.units)
    for (const ParamInfo& p : u.params) {
      if (!keep(p)) continue;
      index[p.name] = out.params.size();
      out.params.push_back(p);
      out.tensors.push_back(at::zeros(p.shape, at::TensorOptions().dtype(engine.options().compute)));
    }
  auto put = [&](const ParamInfo& p, const at::Tensor& t) {
    at::Tensor& dst = out.tensors.at(index.at(p.name));
    place(dst, p, t.to(at::kCPU));
  };
  for (const auto& [p, t] : mine) put(p, t);
  for (int q = 1; q < grid.world(); ++q) {
    if (grid.index_in_group(Axis::dp, q) != 0) continue;
    const ModelLayout theirs = rank_layout(plan, position(grid, q));
    for (const UnitLayout& u : theirs.units)
      for (const ParamInfo& p : u.params) {
        if (!keep(p)) continue;
        at::Tensor t = at::empty(p.shape, at::TensorOptions().dtype(engine.options().compute).device(engine.options().device));
        world.recv(t, q);
        put(p, t);
      }
  }
  return out;
}

}  // namespace paraplan::exec
