// paraplan search FILE.json [--gpus N] [--top K] [--sort throughput|memory|cost] [--json] [--write DIR]
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/report.hpp"
#include "paraplan/search.hpp"

namespace paraplan::cli {

using namespace planner;

namespace {

struct SearchCliOptions {
  std::string file;
  std::vector<std::string> overrides;
  int gpus = 0, top = 10, threads = 0;
  std::string sort = "throughput";
  std::string write_dir;
  bool json = false;
};

std::string layout(const Plan& p) {
  const auto& x = p.parallel;
  std::string sched = to_string(x.pp_schedule);
  if (x.virtual_stages > 1) sched += fmt::format("/v{}", x.virtual_stages);
  return fmt::format("{:>5} {:>3} {:>3} {:>3} {:>3} {:>4} {:>3} {:>14} {:>3} {:>9} {:>16}", x.dp, x.tp, x.pp, x.cp, x.ep,
                     x.zero, x.sequence_parallel ? "sp" : "-", x.pp > 1 ? sched : "-", p.training.micro_batch,
                     to_string(p.training.recompute), to_string(p.training.offload));
}

void print_rows(const std::vector<Candidate>& rows) {
  fmt::print("{:>4} {:>5} {:>3} {:>3} {:>3} {:>3} {:>4} {:>3} {:>14} {:>3} {:>9} {:>16} {:>10} {:>12} {:>6} {:>9}\n", "#",
             "dp", "tp", "pp", "cp", "ep", "zero", "sp", "schedule", "mb", "recompute", "offload", "step (s)",
             "tokens/s", "MFU", "peak GiB");
  int i = 0;
  for (const Candidate& c : rows)
    fmt::print("{:>4} {} {:>10.3f} {:>12} {:>6} {:>9}\n", ++i, layout(c.plan), c.step_s, count(c.tokens_per_s),
               percent(c.mfu), gib(c.peak_bytes));
}

// The plan file as the search's starting point: its model, training and cluster. Its parallel degrees
// (made for some layout, perhaps for another cluster size) are dropped so that the rest validates on a
// one-GPU layout; the search sets every degree anyway. The cluster size is --gpus, else cluster.gpus,
// else, as in plan-format.md, the product of the file's degrees.
Plan load_plan_for_search(const std::string& file, const std::vector<std::string>& overrides, int gpus) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json doc = parse_json_text(ss.str(), file);
  for (const auto& o : overrides) apply_override(doc, o);
  if (!doc.is_object()) plan_from_json(doc);  // not a plan: throws the plan reader's own message
  if (!doc.contains("cluster") || !doc["cluster"].is_object()) doc["cluster"] = nlohmann::json::object();
  nlohmann::json& cluster = doc["cluster"];
  if (gpus <= 0) {
    if (cluster.contains("gpus")) {
      const auto& g = cluster["gpus"];
      if (!g.is_number_integer() || g.get<int64_t>() < 1 || g.get<int64_t>() > (1 << 24))
        throw PlanError("cluster.gpus", g.dump(), "must be an integer from 1 to 16777216");
      gpus = g.get<int>();
    } else {
      int64_t product = 1;
      if (doc.contains("parallel") && doc["parallel"].is_object())
        for (const char* k : {"dp", "tp", "pp", "cp"})
          if (doc["parallel"].contains(k) && doc["parallel"][k].is_number_integer())
            product *= std::max<int64_t>(1, doc["parallel"][k].get<int64_t>());
      gpus = static_cast<int>(std::min<int64_t>(product, 1 << 24));
    }
  }
  if (doc.contains("parallel") && doc["parallel"].is_object()) {
    for (const char* k : {"dp", "tp", "pp", "cp", "ep", "zero", "sequence_parallel", "pp_schedule", "virtual_stages",
                          "layer_split"})
      doc["parallel"].erase(k);
  }
  const bool per_node_given = cluster.contains("gpus_per_node");
  cluster["gpus"] = 1;
  const auto dir = std::filesystem::path(file).parent_path();
  Plan p = plan_from_json(doc, dir.empty() ? "." : dir.string());
  p.cluster.gpus = gpus;
  // Without gpus_per_node: the default for the searched count (CPU workers: one machine holding every
  // worker; a rack-scale NVLink domain: the part of it the job holds; plan-format.md).
  if (!per_node_given) p.cluster.gpus_per_node = default_gpus_per_node(p.cluster.gpu, gpus);
  return p;
}

nlohmann::json candidate_json(const Candidate& c) {
  return {{"plan", plan_to_json(c.plan)},
          {"step_s", c.step_s},
          {"tokens_per_s", c.tokens_per_s},
          {"mfu", c.mfu},
          {"peak_bytes", whole_bytes(c.peak_bytes)},
          {"cost_per_million_tokens", c.cost_per_million_tokens}};
}

}  // namespace

Command add_search_command(CLI::App& app) {
  auto [sub, o] = subcommand<SearchCliOptions>(app, "search", R"(Try every valid split of the plan's model and training over the cluster — dp, tp, pp, cp, ep, ZeRO
stage, sequence parallelism, pipeline schedule and virtual stages, micro-batch, recompute, offload —
drop those that do not fit, rank the rest, and show the Pareto front of peak memory vs step time.
The plan file's model, training (seq_len, global_batch, precision, optimizer, LoRA) and cluster are
kept; of its parallel section only the overlap switches (tp_comm_overlap, ep_comm_overlap, dp_overlap,
pp_comm_overlap) are, and it may be missing. The cluster must be whole nodes once it spans more than one (cluster.gpus_per_node).
docs/search.md. Example:
  paraplan search data/examples/llama3-8b.json --gpus 64 --top 5
  paraplan search data/examples/llama3-8b.json --write plans/   # then: paraplan plan plans/rank-01.json)");
  add_plan_file(*sub, o->file);
  add_overrides(*sub, o->overrides, "training.seq_len=4096");
  add_calibration_option(*sub, o->overrides);
  sub->add_option("--gpus", o->gpus, "cluster size to search (default: cluster.gpus of the plan)")->check(kPositive);
  sub->add_option("--top", o->top, "how many of the best plans to show (default 10)")->check(CLI::Range(1, 100000));
  sub->add_option("--sort", o->sort,
                  "rank by throughput (default), memory (lowest peak) or cost (per million tokens; needs a price:\n"
                  "--set cluster.price_per_gpu_hour=2.5)")
      ->check(CLI::IsMember({"throughput", "memory", "cost"}));
  sub->add_option("--threads", o->threads, "worker threads (default: one per hardware thread)")->check(kPositive);
  sub->add_option("--write", o->write_dir, "write the ranked plans as DIR/rank-01.json ... (plan files for plan/run)");
  sub->add_flag("--json", o->json, "print JSON: counts, top plans and Pareto front, each with its plan document");
  return {sub, [o] {
            Plan base = load_plan_for_search(o->file, o->overrides, o->gpus);
            SearchOptions so;
            so.gpus = o->gpus;
            so.top_k = o->top;
            so.threads = o->threads;
            so.sort = o->sort == "memory" ? SearchSort::memory : o->sort == "cost" ? SearchSort::cost : SearchSort::throughput;
            const bool tty = isatty(STDERR_FILENO);
            auto last = std::chrono::steady_clock::now();
            so.progress = [&](uint64_t done, uint64_t total) {
              const auto now = std::chrono::steady_clock::now();
              if (!tty || (now - last < std::chrono::milliseconds(200) && done != total)) return;
              last = now;
              fmt::print(stderr, "\rsearching: {:3.0f}% ({} of {} layouts)", 100.0 * done / total, done, total);
              if (done == total) fmt::print(stderr, "\r\033[K");
            };
            const SearchResult r = search(base, so);
            const int gpus = o->gpus > 0 ? o->gpus : base.cluster.gpus;
            if (!o->write_dir.empty()) {
              std::filesystem::create_directories(o->write_dir);
              for (size_t i = 0; i < r.top.size(); ++i)
                std::ofstream(fmt::format("{}/rank-{:02}.json", o->write_dir, i + 1))
                    << plan_to_json(r.top[i].plan).dump(2) << "\n";
            }
            if (o->json) {
              nlohmann::json j = {{"gpus", gpus},
                                  {"evaluated", r.evaluated},
                                  {"fitting", r.fitting},
                                  {"equivalent", r.equivalent},
                                  {"pruned", r.pruned},
                                  {"seconds", r.seconds},
                                  {"sort", o->sort},
                                  {"top", nlohmann::json::array()},
                                  {"pareto", nlohmann::json::array()}};
              for (const auto& c : r.top) j["top"].push_back(candidate_json(c));
              for (const auto& c : r.pareto) j["pareto"].push_back(candidate_json(c));
              std::cout << j.dump(2) << "\n";
              return r.top.empty() ? 3 : 0;
            }
            fmt::print("{} on {} x {}: {} plans evaluated in {} ({} plans/s), {} fit in {} each; {} pruned "
                       "(larger micro-batches of layouts where nothing fit)\n",
                       base.model.name, gpus, base.cluster.gpu.name, count(static_cast<double>(r.evaluated)),
                       seconds(r.seconds), count(r.evaluated / std::max(r.seconds, 1e-9)),
                       count(static_cast<double>(r.fitting)), gib_unit(base.cluster.gpu.memory_bytes),
                       count(static_cast<double>(r.pruned)));
            if (r.equivalent > 0)
              fmt::print("{} of them predict the same memory and time as their layout one ZeRO stage lower (as when dp x cp = 1 "
                         "leaves ZeRO nothing to shard): each is listed once, at its lowest stage\n",
                         count(static_cast<double>(r.equivalent)));
            if (r.top.empty()) {
              fmt::print("No plan fits: try more GPUs (--gpus), a shorter sequence or a smaller global batch.\n");
              return 3;
            }
            fmt::print("\nBest {} by {} (step time per optimizer step; peak memory of the worst rank, GiB = 2^30 B):\n",
                       r.top.size(), o->sort);
            print_rows(r.top);
            fmt::print("\nPareto front — no other plan has both lower peak memory and a shorter step:\n");
            print_rows(r.pareto);
            if (!o->write_dir.empty()) fmt::print("\nWrote {} plan files to {}/\n", r.top.size(), o->write_dir);
            print_moe_track_record(base.model);
            print_calibration(base.cluster.gpu, base.cluster.calibration);
            return 0;
          }};
}

}  // namespace paraplan::cli
