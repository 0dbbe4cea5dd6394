// paraplan validate [--json]: predict every published run in data/validation and compare.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/timing.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::cli {

using namespace planner;

Command add_validate_command(CLI::App& app) {
  auto json_out = std::make_shared<bool>(false);
  auto calibration = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "validate",
      "Predict the step time of every published training run in data/validation (Narayanan et al. 2021\n"
      "Table 1; Korthikanti et al. 2022 Table 5) and print predicted vs published, the error per row and\n"
      "the mean and max |error| per source. Every row uses the same hardware data and calibration\n"
      "(--calibration NAME|FILE; default published).");
  sub->add_flag("--json", *json_out, "print JSON: rows and per-source summaries");
  sub->add_option("--calibration", *calibration,
                  "time-model calibration of every row: a built-in name (none, published; default published) or a "
                  "profile file from `paraplan calibrate`")
      ->type_name("NAME|FILE");
  return {sub, [json_out, calibration] {
            std::vector<PublishedRun> runs = published_runs();
            if (!calibration->empty()) {
              const Calibration cal = load_calibration(*calibration, "--calibration");
              for (PublishedRun& r : runs) r.plan.cluster.calibration = cal;
            }
            const std::vector<ValidationRow> rows = validate_runs(runs);
            const std::vector<SourceSummary> sums = summarize(rows);
            if (*json_out) {
              nlohmann::json j = {{"rows", nlohmann::json::array()}, {"sources", nlohmann::json::array()}};
              for (const auto& r : rows) {
                const auto& p = r.run.plan;
                j["rows"].push_back({{"source", r.run.source},
                                     {"model", r.run.model},
                                     {"gpus", p.cluster.gpus},
                                     {"tp", p.parallel.tp},
                                     {"pp", p.parallel.pp},
                                     {"dp", p.parallel.dp},
                                     {"virtual_stages", p.parallel.virtual_stages},
                                     {"recompute", to_string(p.training.recompute)},
                                     {"sequence_parallel", p.parallel.sequence_parallel},
                                     {"published_step_s", r.published_step_s},
                                     {"predicted_step_s", r.predicted_step_s},
                                     {"error", r.error}});
              }
              for (const auto& s : sums)
                j["sources"].push_back({{"source", s.source}, {"rows", s.rows}, {"mean_abs_error", s.mean_abs_error},
                                        {"max_abs_error", s.max_abs_error}});
              std::cout << j.dump(2) << "\n";
              return 0;
            }
            fmt::print("{:<17} {:<11} {:>5} {:>10} {:>2} {:>9} {:>3} {:>13} {:>13} {:>8}\n", "source", "model", "GPUs",
                       "tp/pp/dp", "v", "recompute", "sp", "published (s)", "predicted (s)", "error");
            for (const auto& r : rows) {
              const auto& p = r.run.plan;
              fmt::print("{:<17} {:<11} {:>5} {:>10} {:>2} {:>9} {:>3} {:>13.2f} {:>13.2f} {:>+7.1f}%\n", r.run.source,
                         r.run.model, p.cluster.gpus, fmt::format("{}/{}/{}", p.parallel.tp, p.parallel.pp, p.parallel.dp),
                         p.parallel.virtual_stages, to_string(p.training.recompute),
                         p.parallel.sequence_parallel ? "yes" : "no", r.published_step_s, r.predicted_step_s,
                         100 * r.error);
            }
            fmt::print("\n");
            for (const auto& s : sums)
              fmt::print("{:<17} {} rows: mean |error| {}, max |error| {}\n", s.source, s.rows,
                         percent(s.mean_abs_error, 2), percent(s.max_abs_error, 2));
            fmt::print("(Narayanan rows publish TFLOP/s per GPU; their step time is derived with the paper's Eq. 3 "
                       "FLOPs: t = F / (X * GPUs).)\n");
            if (!runs.empty()) print_calibration(runs.front().plan.cluster.gpu, runs.front().plan.cluster.calibration);
            return 0;
          }};
}

}  // namespace paraplan::cli
