// paraplan-probe: the measuring process of `paraplan probe` (started by it, as paraplan-worker is by
// `paraplan run`). --stage compute: one process, GEMMs, copies and the kernel cost on the device;
// --stage collectives: one rank of RANK / WORLD_SIZE local processes, collectives by message size.
// Rank 0 prints one line per measurement, "result {json}", and "progress TEXT" for the terminal; the
// CLI stores the results only once every stage has finished.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <dlfcn.h>
#include <sys/prctl.h>
#include <torch/version.h>

#include <csignal>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "device.hpp"
#include "errors.hpp"
#include "paraplan/exec/launch_env.hpp"
#include "thread_policy.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/rank_grid.hpp"
#include "probe.hpp"

using namespace paraplan;
using namespace paraplan::exec;

namespace {

struct Args {
  std::string stage;
  std::string device = "cpu";  // cpu or cuda
  std::string dtypes = "fp32";
  bool quick = false;
  int timeout_s = 120;
};

void set_threads(int n) {  // as paraplan-worker: ATen's pool and OpenBLAS's
  at::set_num_threads(n);
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
}

std::vector<at::ScalarType> parse_dtypes(const std::string& list) {
  std::vector<at::ScalarType> out;
  std::stringstream ss(list);
  std::string d;
  while (std::getline(ss, d, ',')) {
    if (d == "fp32") out.push_back(at::kFloat);
    else if (d == "bf16") out.push_back(at::kBFloat16);
    else if (d == "fp16") out.push_back(at::kHalf);
    else throw planner::PlanError("--dtypes", d, "must be fp32, bf16 or fp16");
  }
  return out;
}

void print(const ProbeLine& r, const std::string& progress) {
  if (!r.kind.empty())
    std::cout << "result "
              << nlohmann::json{{"kind", r.kind}, {"dtype", r.dtype},   {"m", r.m},           {"n", r.n},
                                {"k", r.k},       {"bytes", r.bytes},   {"ranks", r.ranks},   {"seconds", r.seconds},
                                {"repeats", r.repeats}}
                     .dump()
              << "\n";
  if (!progress.empty()) std::cout << "progress " << progress << "\n";
  std::cout << std::flush;
}

int run(const Args& a) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // the CLI gone (interrupted): stop measuring
  const bool cuda = a.device == "cuda";
  if (cuda && !cuda_build())
    throw planner::PlanError("--device", "cuda", "this paraplan-probe was built against a CPU-only LibTorch");
  ProbeScale scale;
  scale.quick = a.quick;
  if (cuda) scale.max_call_s = 1.0;  // a GPU runs the 16k cubes in milliseconds
  if (a.quick) {
    scale.min_time_s = 0.005;
    scale.min_repeats = 2;
  }
  const std::optional<LaunchEnv> env = launch_env();
  // Each rank on its own cores, as paraplan-worker keeps CPU workers (thread_policy.hpp worker_cores),
  // so that the collectives measured are those of the runs.
  if (!cuda && env) {
    std::string err;
    pin_worker(env->local_rank, env->local_world_known ? env->local_world_size : 0, 1, err);
    if (!err.empty()) std::fprintf(stderr, "paraplan-probe: not pinned to its cores (%s)\n", err.c_str());
  }
  if (!cuda) set_threads(1);  // one worker, one thread: the cpu preset's peak (data/hardware/cpu.json)
  const int local = env ? env->local_rank : 0;
  const at::Device device = cuda ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local)) : at::Device(at::kCPU);
  if (a.stage == "compute") {
    std::cout << "info "
              << nlohmann::json{{"libtorch", TORCH_VERSION}, {"compiler", __VERSION__}, {"threads", at::get_num_threads()},
                                {"cuda_devices", cuda_device_count()}}
                     .dump()
              << "\n";
    probe_compute(device, parse_dtypes(a.dtypes), scale, print);
    return 0;
  }
  if (a.stage != "collectives") throw planner::PlanError("--stage", a.stage, "must be compute or collectives");
  if (!env) throw planner::PlanError("--stage", a.stage, "needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (paraplan probe sets them)");
  // The ranks as one data-parallel group of a plan with dp = WORLD_SIZE.
  const planner::Plan plan = planner::plan_from_json(
      {{"model", "tiny-llama"},
       {"training", {{"seq_len", 16}, {"micro_batch", 1}, {"precision", cuda ? "bf16" : "fp32"}}},
       {"parallel", {{"dp", env->world_size}}},
       {"cluster", {{"gpu", cuda ? "h100-sxm-80gb" : "cpu"}, {"gpus", env->world_size}}}});
  GlooOptions go;
  go.timeout = std::chrono::seconds(a.timeout_s);
  auto groups = cuda ? make_nccl_groups(*env, planner::RankGrid(plan), go) : make_gloo_groups(*env, planner::RankGrid(plan), go);
  probe_collectives(groups->dp(), device, scale, [&](const ProbeLine& r, const std::string& p) {
    if (groups->rank == 0) print(r, p);
  });
  groups->world->barrier();
  groups->finish();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"paraplan-probe: the measuring process of `paraplan probe` (start it through `paraplan probe`)."};
  Args a;
  app.add_option("--stage", a.stage, "compute (one process) or collectives (one of WORLD_SIZE ranks)")->required();
  app.add_option("--device", a.device, "cpu or cuda");
  app.add_option("--dtypes", a.dtypes, "GEMM dtypes, comma-separated: fp32, bf16, fp16");
  app.add_flag("--quick", a.quick, "the smallest grid and sizes (tests)");
  app.add_option("--timeout", a.timeout_s, "seconds to wait for the other ranks");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  const char* rank = std::getenv("RANK");
  const std::string who = std::string("paraplan-probe: rank ") + (rank ? rank : "0");
  return run_reporting_errors(who, [&] { return run(a); });
}
