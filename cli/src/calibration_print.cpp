// The calibration a prediction used: which profile, and per time-model parameter its value and origin.
#include <fmt/format.h>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/validation.hpp"

namespace paraplan::cli {

using namespace planner;

void print_calibration(const GpuSpec& gpu, const Calibration& cal) {
  const Efficiency e = effective_efficiency(gpu, cal);
  const std::vector<ParamSource> src = parameter_sources(cal);
  fmt::print("\nTime-model parameters of {} under calibration \"{}\"{}{}\n", gpu.id.empty() ? gpu.name : gpu.id,
             cal.name, cal.origin.empty() || cal.origin == cal.name ? "" : " (" + cal.origin + ")",
             cal.provenance.empty() ? "" : ":\n  " + cal.provenance);
  // A profile fitted on another GPU: its figures (and its held-out errors) are of that GPU's runs.
  // A built-in profile of this GPU, when there is one, is named with the option that selects it.
  if (fitted_on_another_gpu(gpu, cal)) {
    fmt::print("  note: fitted on {} rows, not {}: how far it carries to another GPU is in docs/validation.md "
               "(\"Other GPUs\"); `paraplan calibrate` fits one from this GPU's own runs or probes\n",
               cal.device, gpu.id.empty() ? gpu.name : gpu.id);
    for (const std::string& own : builtin_calibrations_of(gpu.id))
      fmt::print("  a profile fitted on {} rows is built in: --calibration {} (what it was fitted on and how far "
                 "off it is held out: paraplan validate, docs/validation.md)\n",
                 gpu.id, own);
  }
  const auto& fields = efficiency_fields();
  for (size_t i = 0; i < fields.size(); ++i) {
    const EfficiencyField& f = fields[i];
    const double v = e.*f.member;
    const std::string unit = f.unit;
    fmt::print("  {:<22} {:>10}  {:<9} {}\n", f.name, unit == "s" ? seconds(v) : fmt::format("{:.4g}", v),
               to_string(src[i]), unit == "s" ? "" : unit);
  }
}

void print_moe_track_record(const ModelSpec& model) {
  if (!model.moe) return;
  const TrackRecord t = moe_track_record();
  if (t.rows == 0) return;
  std::string sources;
  for (const std::string& s : t.sources) sources += (sources.empty() ? "" : ", ") + s;
  fmt::print("\nMoE step times are the model's least certain: on the {} published runs of MoE models it was checked "
             "against ({}; {} of them in no fit) it predicted {:+.1f}% to {:+.1f}% of the measured step time, {} of {} "
             "too fast (mean |error| {:.1f}%; `paraplan validate`, docs/validation.md).\n",
             t.rows, sources, t.in_no_fit, 100 * t.min_error, 100 * t.max_error, t.too_fast, t.rows,
             100 * t.mean_abs_error);
}

}  // namespace paraplan::cli
