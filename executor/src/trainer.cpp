#include "paraplan/exec/trainer.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "adamw.hpp"
#include "checkpoint.hpp"
#include "gather.hpp"
#include "device.hpp"
#include "zero_engine.hpp"
#include "model.hpp"
#include "pipeline_runner.hpp"
#include "paraplan/exec/crc32.hpp"
#include "paraplan/exec/dataset.hpp"
#include "paraplan/exec/train_checkpoint.hpp"
#include "paraplan/memory.hpp"
#include "paraplan/params.hpp"
#include "paraplan/pipeline.hpp"
#include "paraplan/plan_io.hpp"
#include "train_state.hpp"

namespace paraplan::exec {

using namespace planner;

namespace {

at::Device device_for(const Plan& plan, int local_rank) {
  if (plan.cluster.gpu.is_cpu) return at::kCPU;
  if (!cuda_build())
    throw std::runtime_error("cluster.gpu = " + plan.cluster.gpu.id +
                             ": this paraplan-worker was built against a CPU-only LibTorch; use cluster.gpu = \"cpu\" "
                             "or build against a CUDA LibTorch (scripts/gpu-check)");
  if (gpu_ranks_over_gloo() && cuda_device_count() > 0)
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank % cuda_device_count()));
  if (local_rank >= cuda_device_count())
    throw std::runtime_error("LOCAL_RANK = " + std::to_string(local_rank) + " but only " +
                             std::to_string(cuda_device_count()) + " CUDA device(s) are visible");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

// Names each communicator after the group it serves, for the step's op classes (op_timer.hpp); a
// communicator shared by two axes (dp_cp is dp when cp = 1) keeps the plainer name.
void label_groups(ProcessGroups& g) {
  if (g.world) g.world->set_label("world");
  for (Axis a : {Axis::dp_cp, Axis::ep, Axis::pp, Axis::cp, Axis::tp, Axis::dp})
    if (auto& c = g.axis[static_cast<int>(a)]; c && c->size() > 1) c->set_label(to_string(a));
}

}  // namespace

// Where this rank sits on the grid: its pipeline stage, its tensor-parallel rank.
RankPosition position_of(const ProcessGroups& g) {
  return {g.grid.index_in_group(Axis::pp, g.rank), g.grid.index_in_group(Axis::tp, g.rank)};
}

struct Trainer::Impl {
  TrainOptions opt;
  ProcessGroups& groups;
  Plan& plan;
  RankPosition pos;
  ModelLayout layout;
  at::Device device;
  std::shared_ptr<Communicator> kv_group;  // the ranks sharing this rank's key/value head (kv_heads < tp)
  std::shared_ptr<Communicator> tied_group;  // first and head stage, for a tied table's two copies
  int tied_unit = -1;
  size_t tied_param = 0;
  std::unique_ptr<ZeroEngine> engine;
  std::unique_ptr<Model> model;
  std::unique_ptr<PipelineRunner> runner;
  std::unique_ptr<AdamW> optimizer;
  std::unique_ptr<TokenDataset> data;
  int64_t micro_batches = 1;
  int step = 0;
  double loss_total = 0;  // the step's loss, all-reduced in place (CPU)

  Impl(const TrainOptions& o, ProcessGroups& g)
      : opt(o), groups(g), plan(opt.plan), pos(position_of(g)), layout(rank_layout(plan, pos)),
        device(device_for(plan, o.local_rank)) {
    Violations v;
    check_executor_support(plan, v);
    v.throw_if_any();
    if (groups.dp().size() != plan.parallel.dp)
      throw PlanError("parallel.dp", std::to_string(plan.parallel.dp),
                      "the data-parallel group has " + std::to_string(groups.dp().size()) + " ranks");
    const bool bf16 = plan.training.precision == Precision::bf16;
    ZeroEngineOptions eo;
    eo.zero = plan.parallel.zero;
    eo.device = device;
    eo.compute = bf16 ? at::kBFloat16 : at::kFloat;
    eo.grad = (bf16 && plan.training.grad_dtype != GradDtype::fp32) ? at::kBFloat16 : at::kFloat;
    eo.master = bf16;
    eo.nf4 = plan.training.lora && plan.training.lora->base == LoraBase::nf4;
    // Readers first: a missing or malformed checkpoint fails before anything is allocated.
    std::optional<CheckpointReader> reader;
    std::optional<AdapterReader> adapter;
    if (!opt.load_dir.empty()) reader.emplace(opt.load_dir, plan.model);
    if (!opt.adapter_dir.empty()) adapter.emplace(opt.adapter_dir);
    const ByteTokenizer tok(plan.model.vocab);
    data = std::make_unique<TokenDataset>(
        opt.data.empty() ? synthetic_documents(20000, opt.seed) : read_documents(opt.data), tok,
        opt.data.empty() ? std::string("the built-in synthetic corpus") : opt.data);
    Communicator& tp = groups.of(Axis::tp);
    const KvHeads kv = kv_heads_of(plan.model, plan.parallel.tp, pos.tp_rank);
    if (kv.replicas > 1)
      kv_group = groups.subgroup("kv/" + std::to_string(groups.grid.group_id(Axis::tp, groups.rank)) + "/" +
                                     std::to_string(kv.first),
                                 pos.tp_rank % kv.replicas, kv.replicas);
    if (kv_group) kv_group->set_label("kv");  // its time: comm.<collective>.kv (op_timer.hpp)
    // Tied embeddings: the embedding unit is shared with the head when this rank holds both; with the two
    // on different stages, the first and the head's stage sum their copies' gradients (Megatron's
    // embedding group: the same data-parallel and tensor-parallel position on both stages).
    int embedding_unit = -1, head_unit = -1;
    for (size_t u = 0; u < layout.units.size(); ++u) {
      if (layout.units[u].kind == UnitKind::embedding) embedding_unit = static_cast<int>(u);
      if (layout.units[u].kind == UnitKind::head) head_unit = static_cast<int>(u);
    }
    if (plan.model.tied_embeddings && embedding_unit >= 0 && head_unit >= 0) eo.shared_unit = embedding_unit;
    if (tied_copy_on_head_stage(plan)) {
      const int head_stage = stage_of_chunk(plan, plan.parallel.chunks() - 1);
      if (pos.stage == 0 || pos.stage == head_stage) {
        tied_group = groups.subgroup("emb/" + std::to_string(groups.grid.index_in_group(Axis::dp, groups.rank)) + "/" +
                                         std::to_string(pos.tp_rank),
                                     pos.stage == 0 ? 0 : 1, 2);
        tied_group->set_label("tied_embedding");
        tied_unit = pos.stage == 0 ? embedding_unit : head_unit;
        const auto& params = layout.units[static_cast<size_t>(tied_unit)].params;
        for (size_t i = 0; i < params.size(); ++i)
          if (params[i].name == "model.embed_tokens.weight") tied_param = i;
      }
    }
    engine = std::make_unique<ZeroEngine>(layout, groups.gradients(), eo, &tp, kv_group.get());
    engine->fill([&](const ParamInfo& p, at::Tensor& dst) { fill_param(p, dst, reader, adapter); });
    TpGroup tpg{&tp, tp.size(), tp.rank(), plan.parallel.sequence_parallel};
    model = std::make_unique<Model>(plan, opt.extras, tpg, opt.seed, *engine);
    runner = std::make_unique<PipelineRunner>(plan, groups.of(Axis::pp), *model, *engine, pos.stage);
    AdamWOptions ao;
    ao.lr = opt.lr;
    ao.beta1 = opt.beta1;
    ao.beta2 = opt.beta2;
    ao.eps = opt.eps;
    ao.weight_decay = opt.weight_decay;
    ao.decoupled = plan.training.optimizer == Optimizer::adamw;
    optimizer = std::make_unique<AdamW>(*engine, ao);
    micro_batches = plan.micro_batches();
    label_groups(groups);
    synchronize(device);
    reset_peak(device);
  }

  // This rank's slice of a parameter: the whole tensor (initialised, or read from the checkpoint), cut
  // to the slice; rows past the real vocabulary stay zero.
  void fill_param(const ParamInfo& p, at::Tensor& dst, const std::optional<CheckpointReader>& reader,
                  const std::optional<AdapterReader>& adapter) const {
    const bool lora = p.role == Role::lora_a || p.role == Role::lora_b;
    if (!(lora && adapter) && !(!lora && reader)) {
      init_param(p, opt.seed, dst);  // draws only this rank's slice
      return;
    }
    ParamInfo whole = p;
    whole.shape = p.full_shape;
    at::Tensor full = p.shard_dim < 0 ? dst : at::empty(p.full_shape, dst.options());
    if (lora)
      adapter->read(whole, full);
    else
      reader->read(whole, full);
    if (p.shard_dim < 0) return;
    const int64_t d = p.shard_dim, size = p.full_shape[static_cast<size_t>(d)];
    const int64_t n = std::max<int64_t>(0, std::min(p.shape[static_cast<size_t>(d)], size - p.shard_start));
    dst.zero_();
    if (n > 0) dst.narrow(d, 0, n).copy_(full.narrow(d, p.shard_start, n));
  }

  TrainedWith trained_with() const {
    TrainedWith t;
    t.plan = plan;
    t.extras = opt.extras;
    t.lr = opt.lr;
    t.weight_decay = opt.weight_decay;
    t.beta1 = opt.beta1;
    t.beta2 = opt.beta2;
    t.eps = opt.eps;
    t.seed = opt.seed;
    t.data_tokens = data->tokens();
    t.data_crc32 = data->fingerprint();
    return t;
  }

  // Micro-batch k of the coming step: token ids and targets [micro_batch, seq_len] as the stage needs
  // them, and the global index of each sequence (dropout draws its masks from it).
  MicroBatch batch(int64_t k, bool want_ids, bool want_targets) {
    const int64_t mb = plan.training.micro_batch, s = plan.training.seq_len;
    MicroBatch out;
    out.step = step;
    at::Tensor ids = at::empty({mb, s}, at::kLong), tgt = at::empty({mb, s}, at::kLong);
    for (int e = 0; e < mb; ++e) {
      const int64_t idx = global_sequence_index(groups.dp().rank(), groups.dp().size(), static_cast<int>(mb), k, e);
      out.sequences.push_back(idx);
      data->sample(opt.seed, step, idx, s, ids.data_ptr<int64_t>() + e * s, tgt.data_ptr<int64_t>() + e * s);
    }
    if (want_ids) out.ids = device.is_cpu() ? ids : ids.to(device);
    if (want_targets) out.targets = device.is_cpu() ? tgt : tgt.to(device);
    return out;
  }
};

Trainer::Trainer(const TrainOptions& options, ProcessGroups& groups)
    : impl_(std::make_unique<Impl>(options, groups)) {}

Trainer::~Trainer() = default;

StepStats Trainer::step() {
  Impl& m = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  op_timer_begin_step();
  m.groups.reset_blocked_seconds();
  const double scale = 1.0 / (static_cast<double>(m.plan.training.global_batch) * static_cast<double>(m.plan.training.seq_len));
  m.engine->begin_step();
  const double loss_sum =
      m.runner->run([&m](int64_t k, bool ids, bool targets) { return m.batch(k, ids, targets); }, scale);
  m.engine->end_step();
  if (m.tied_group && m.plan.training.lora == std::nullopt) {
    at::Tensor g = m.engine->grad_of(m.tied_unit, m.tied_param);
    CategoryScope cat(MemCategory::buffers);
    m.tied_group->allreduce(g);
  }
  {
    const OpScope optimizer("optimizer");
    m.optimizer->step();
  }
  // On CPU the sum lives in the trainer, not in a storage of its own: gloo's worker thread drops its
  // reference to an all-reduced tensor only after wait() has returned, so a fresh 8-byte tensor per
  // step could outlive the step by a scheduling delay and show up in the next step's peak. The loss is
  // summed over the data-parallel ranks, then over the stages (only the last one's is not zero); the
  // tensor-parallel ranks each hold the whole of it.
  m.loss_total = loss_sum;
  at::Tensor total = m.device.is_cpu()
                         ? at::from_blob(&m.loss_total, {1}, at::TensorOptions().dtype(at::kDouble))
                         : at::full({1}, loss_sum, at::TensorOptions().dtype(at::kDouble).device(m.device));
  m.groups.dp().allreduce(total);
  m.groups.of(Axis::pp).allreduce(total);
  synchronize(m.device);
  ++m.step;
  StepStats s;
  s.step = m.step;
  s.loss = total.item<double>();
  s.step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.comm_s = m.groups.blocked_seconds();
  s.pp_s = m.plan.parallel.pp > 1 ? m.groups.of(Axis::pp).blocked_seconds() : 0.0;
  // The tensor-parallel ranks and pipeline stages of one data-parallel replica share its tokens: each
  // counts its share, so that the ranks' rates add up to the run's.
  const double sharers = static_cast<double>(m.plan.parallel.tp) * m.plan.parallel.pp;
  s.tokens_per_s = static_cast<double>(tokens_per_step()) / sharers / s.step_s;
  s.op_times = op_timer_end_step(s.step_s);
  return s;
}

const std::string& Trainer::schedule_log() const { return impl_->runner->op_log(); }
int Trainer::peak_op() const { return impl_->runner->peak_op(); }
int Trainer::stage() const { return impl_->pos.stage; }

MemoryStats Trainer::memory() const {
  const Impl& m = *impl_;
  MemoryStats out;
  if (m.device.is_cpu()) {
    if (!counting_allocator_installed()) return out;
    const MemorySnapshot snap = memory_snapshot();
    out.measured = true;
    out.at_peak = snap.at_peak;
    out.peak = snap.peak_total;
    return out;
  }
  // CUDA: the caching allocator's peak; the persistent categories are the engine's and optimizer's
  // buffers, activations the rest of the peak.
  out.measured = true;
  out.peak = peak_bytes(m.device);
  int64_t known = 0;
  for (int c = 0; c < kMemCategories; ++c) {
    const auto cat = static_cast<MemCategory>(c);
    const int64_t b = cat == MemCategory::optimizer ? m.optimizer->state_bytes() : m.engine->persistent_bytes(cat);
    out.at_peak[static_cast<size_t>(c)] = b;
    known += b;
  }
  out.at_peak[static_cast<size_t>(MemCategory::activations)] = out.peak - known;
  return out;
}

int64_t Trainer::trainable_params() const {
  return model_layout(impl_->plan.model, impl_->plan.training.lora).trainable_numel;
}

int64_t Trainer::tokens_per_step() const {
  return impl_->micro_batches * impl_->plan.training.micro_batch * impl_->plan.training.seq_len;
}

std::vector<float> Trainer::logits(const std::vector<int64_t>& ids, int64_t batch, int64_t seq) {
  at::Tensor t = at::from_blob(const_cast<int64_t*>(ids.data()), {batch, seq}, at::kLong).clone();
  if (!impl_->device.is_cpu()) t = t.to(impl_->device);
  const at::Tensor out = impl_->model->logits(t).to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
}

namespace {

bool is_adapter(const ParamInfo& p) { return p.role == Role::lora_a || p.role == Role::lora_b; }

}  // namespace

void Trainer::save_kind(const std::string& dir, int kind, uint64_t max_shard_bytes) {
  Impl& m = *impl_;
  const auto k = static_cast<SaveKind>(kind);
  const WholeModel whole = gather_model(*m.engine, m.groups, m.plan, [k](const ParamInfo& p) {
    return k == SaveKind::merged || (k == SaveKind::adapter) == is_adapter(p);
  });
  if (m.groups.rank == 0)
    save_checkpoint(whole.params, whole.tensors, m.plan.model, m.opt.extras, m.plan.training.lora, k, dir,
                    max_shard_bytes, m.engine->options().compute);
  m.groups.world->barrier();
}

void Trainer::save(const std::string& dir, uint64_t max_shard_bytes) {
  save_kind(dir, static_cast<int>(SaveKind::full), max_shard_bytes);
}

void Trainer::save_adapter(const std::string& dir) { save_kind(dir, static_cast<int>(SaveKind::adapter), UINT64_MAX); }

void Trainer::save_merged(const std::string& dir) { save_kind(dir, static_cast<int>(SaveKind::merged), 5ull << 30); }

}  // namespace paraplan::exec

namespace paraplan::exec {

std::string Trainer::write_checkpoint(const std::string& root) {
  namespace fs = std::filesystem;
  Impl& m = *impl_;
  Communicator& world = *m.groups.world;
  const int rank = m.groups.rank, n = world.size();
  const fs::path partial = fs::path(root) / partial_dir_name(m.step);
  fs::create_directories(partial);
  const std::string file = (partial / rank_file_name(rank)).string();
  write_rank_state(file, *m.engine, *m.optimizer, rank, m.step);
  sync_dir(partial.string());
  // Every rank's file size and CRC-32 to rank 0, which writes the index: [bytes, crc] per rank (exact
  // in doubles below 2^53).
  CategoryScope cat(MemCategory::other);
  at::Tensor info = at::zeros({2 * n}, at::TensorOptions().dtype(at::kDouble).device(m.device));
  info.narrow(0, 2 * rank, 2).copy_(at::tensor({static_cast<double>(fs::file_size(file)),
                                                static_cast<double>(file_crc32(file))}, at::kDouble));
  world.allgather(info);
  const at::Tensor all = info.to(at::kCPU);
  std::string dir = (fs::path(root) / step_dir_name(m.step)).string();
  if (rank == 0) {
    CheckpointIndex idx;
    idx.step = m.step;
    idx.world_size = n;
    idx.trained_with = trained_with_json(m.trained_with());
    idx.plan = planner::plan_to_json(m.plan);
    for (int r = 0; r < n; ++r)
      idx.files.push_back({rank_file_name(r), r, static_cast<uint64_t>(all[2 * r].item<double>()),
                           static_cast<uint32_t>(all[2 * r + 1].item<double>())});
    dir = publish_checkpoint(root, idx);
  }
  world.barrier();  // the step directory is complete before any rank trains on
  return dir;
}

int Trainer::resume(const std::string& path, int steps) {
  Impl& m = *impl_;
  const std::string dir = resolve_checkpoint(path);
  const std::string index_path = (std::filesystem::path(dir) / "index.json").string();
  const CheckpointIndex idx = read_index(index_path);
  check_trained_with(idx, trained_with_json(m.trained_with()), m.groups.world->size(), index_path);
  if (idx.step >= steps)
    throw planner::PlanError("--steps", std::to_string(steps),
                             "the checkpoint " + dir + " is at step " + std::to_string(idx.step) +
                                 " already; ask for more steps to train on from it");
  const CheckpointFile& f = file_of_rank(idx, m.groups.rank, index_path);
  verify_checkpoint_file(dir, f);
  read_rank_state((std::filesystem::path(dir) / f.name).string(), *m.engine, *m.optimizer, m.groups.rank, idx.step);
  m.step = idx.step;
  synchronize(m.device);
  reset_peak(m.device);  // the training steps' peak, as without a resume
  return idx.step;
}

int Trainer::steps_done() const { return impl_->step; }

}  // namespace paraplan::exec
