// paraplan probe [--db FILE] [--gpu ID] [--ranks 2,4]: measures this machine for the calibration — GEMMs,
// copies and the kernel cost in one paraplan-probe process, then collectives over 2, 4, ... local
// processes — and stores the results in one transaction once every stage is done.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "format.hpp"
#include "launcher.hpp"
#include "paraplan/error.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/store.hpp"

namespace paraplan::cli {

const char* git_revision();

using namespace planner;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct ProbeOptions {
  std::string db = "runs.sqlite";
  std::string gpu = "cpu";
  std::string ranks;  // default: 2, 4 on CPU; 2, 4, ... up to the local GPUs
  bool quick = false;
  int timeout_s = 120;
};

int local_gpus() {
  int n = 0;
  while (fs::exists("/dev/nvidia" + std::to_string(n))) ++n;
  return n;
}

std::vector<int> parse_ranks(const std::string& list) {
  std::vector<int> out;
  std::stringstream ss(list);
  std::string w;
  while (std::getline(ss, w, ',')) {
    char* end = nullptr;
    const long v = std::strtol(w.c_str(), &end, 10);
    if (w.empty() || *end || v < 2 || v > 64) throw PlanError("--ranks", w, "must be a comma-separated list of process counts from 2 to 64");
    out.push_back(static_cast<int>(v));
  }
  return out;
}

// One stage: its processes, their progress on the terminal, rank 0's results collected.
void run_stage(const std::string& exe, const std::string& what, const std::vector<std::string>& args, int ranks,
               int threads, std::vector<ProbeResult>& results, json& info) {
  std::vector<WorkerProcess> procs;
  const int port = free_local_port();
  for (int r = 0; r < ranks; ++r) {
    WorkerProcess w{exe, args, worker_thread_env(threads)};
    if (ranks > 1) {
      const auto rank_env = local_rank_env(r, ranks, port);
      w.env.insert(w.env.end(), rank_env.begin(), rank_env.end());
    }
    procs.push_back(std::move(w));
  }
  std::string bad;
  const LaunchOutcome out = run_workers(procs, [&](int rank, const std::string& line, bool err) {
    if (err) {
      std::cerr << line << "\n";
      return;
    }
    if (rank != 0) return;
    if (line.rfind("progress ", 0) == 0) {
      fmt::print("  {}\n", line.substr(9));
      std::fflush(stdout);
    } else if (line.rfind("info ", 0) == 0) {
      info = json::parse(line.substr(5), nullptr, false);
    } else if (line.rfind("result ", 0) == 0) {
      const json j = json::parse(line.substr(7), nullptr, false);
      if (j.is_discarded()) {
        bad = line;
        return;
      }
      results.push_back({j.value("kind", ""), j.value("dtype", ""), j.value("m", 0.0), j.value("n", 0.0), j.value("k", 0.0),
                         j.value("bytes", 0.0), j.value("ranks", 1), j.value("seconds", 0.0), j.value("repeats", 0)});
    }
  });
  if (!out.ok)
    throw std::runtime_error(what + ": " + (out.error.rfind("paraplan-probe: ", 0) == 0 ? out.error.substr(16) : out.error));
  if (!bad.empty()) throw std::runtime_error(what + ": an unreadable result line: " + bad);
}

int run_probe(const ProbeOptions& o) {
  const GpuSpec gpu = hardware_preset(o.gpu, "--gpu");
  const std::string exe = sibling_executable("paraplan-probe", "PARAPLAN_PROBE");
  if (!fs::exists(exe)) {
    std::cerr << "paraplan probe: the probe is not built: " << exe
              << " does not exist.\n  It needs LibTorch (Debian: apt-get install libtorch-dev libgloo-dev), then "
                 "rebuild (scripts/test); or point PARAPLAN_PROBE at a paraplan-probe binary.\n";
    return 3;
  }
  std::vector<int> ranks;
  if (!o.ranks.empty()) {
    ranks = parse_ranks(o.ranks);
  } else if (gpu.is_cpu) {
    ranks = {2, 4};
  } else {
    for (int n = 2; n <= local_gpus(); n *= 2) ranks.push_back(n);
  }
  std::string dtypes = "fp32";
  if (!gpu.is_cpu) {
    dtypes.clear();
    for (const auto& [name, peak] : {std::pair{"bf16", gpu.peak_bf16_flops}, std::pair{"fp16", gpu.peak_fp16_flops},
                                     std::pair{"fp32", gpu.peak_fp32_flops}})
      if (peak > 0) dtypes += (dtypes.empty() ? "" : ",") + std::string(name);
  }
  const std::string device = gpu.is_cpu ? "cpu" : "cuda";
  std::vector<std::string> common{"--device", device, "--timeout", std::to_string(o.timeout_s)};
  if (o.quick) common.push_back("--quick");
  std::string rank_list;
  for (int n : ranks) rank_list += (rank_list.empty() ? "" : ", ") + std::to_string(n);
  fmt::print("probing {} ({}) for calibration: GEMMs ({}), copies, the cost of a kernel{}\n", o.gpu,
             gpu.is_cpu ? cpu_model() : gpu.name, dtypes,
             ranks.empty() ? "" : ", then collectives over " + rank_list + " processes");
  fmt::print("results are stored in {} when every stage is done: an interrupted probe stores nothing\n", o.db);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<ProbeResult> results;
  json info = json::object();
  try {
    std::vector<std::string> args{"--stage", "compute", "--dtypes", dtypes};
    args.insert(args.end(), common.begin(), common.end());
    fmt::print("[compute, 1 process]\n");
    run_stage(exe, "compute", args, 1, 1, results, info);
    for (int n : ranks) {
      fmt::print("[collectives, {} processes]\n", n);
      args = {"--stage", "collectives"};
      args.insert(args.end(), common.begin(), common.end());
      json ignored;
      run_stage(exe, "collectives over " + std::to_string(n) + " processes", args, n, 1, results, ignored);
    }
  } catch (const std::exception& e) {
    std::cerr << "paraplan probe: interrupted in " << e.what() << "\n  nothing was stored in " << o.db << "\n";
    return 1;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ProbeRecord rec;
  rec.device = o.gpu;
  rec.hardware = json{{"gpu", gpu.id}, {"gpu_name", gpu.name}, {"cpu_model", cpu_model()},
                      {"cpu_threads", std::thread::hardware_concurrency()}}
                     .dump();
  info["paraplan"] = "0.1.0";
  rec.software = info.dump();
  rec.git_revision = git_revision();
  rec.host = host_name();
  rec.seconds = wall;
  const int64_t id = Store(o.db).add_probe(rec, results);
  fmt::print("probe {}: {} measurements in {} stored in {}; fit them: paraplan calibrate --db {} --use probes\n", id,
             results.size(), seconds(wall), o.db, o.db);
  return 0;
}

}  // namespace

Command add_probe_command(CLI::App& app) {
  auto [sub, o] = subcommand<ProbeOptions>(app, "probe", R"(Measure this machine for `paraplan calibrate`: GEMM throughput over a grid of shapes (M, N, K from
64 to 16384; on a CPU the shapes that would take over 0.1 s per call are left out), memory-bound
bandwidth (copies of 4 KiB to 256 MiB), the fixed cost of a kernel (tiny adds back to back), and
all-reduce, all-gather, reduce-scatter and send/recv by message size over 2, 4, ... local processes
(gloo on CPU workers; NCCL on GPUs, nccl-tests' algbw and busbw). One worker thread per process, as
`paraplan run` gives CPU workers. Progress on the terminal; the results are stored in one transaction
when every stage is done (a full CPU probe takes about a minute). Examples:
  paraplan probe --db runs.sqlite
  paraplan probe --gpu h100-sxm-80gb --ranks 2,4,8   # on a GPU machine (a CUDA build))");
  sub->add_option("--db", o->db, "run store, a SQLite file (default runs.sqlite)");
  sub->add_option("--gpu", o->gpu, "the hardware preset this machine is (default cpu; a GPU preset probes CUDA device 0..)");
  sub->add_option("--ranks", o->ranks, "process counts for the collectives, e.g. 2,4 (default: 2, 4 on CPU; 2, 4, ... up to the local GPUs)");
  sub->add_flag("--quick", o->quick, "the smallest grid and message sizes (seconds; for tests)");
  sub->add_option("--timeout", o->timeout_s, "seconds the processes wait for each other (default 120)")->check(kPositive);
  return {sub, [o] { return run_probe(*o); }};
}

}  // namespace paraplan::cli
