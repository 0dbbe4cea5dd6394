#include "paraplan/calibration.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <utility>

#include "paraplan/embedded_data.hpp"
#include "paraplan/error.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::planner {

using nlohmann::json;

const char* to_string(ParamSource s) {
  switch (s) {
    case ParamSource::datasheet: return "datasheet";
    case ParamSource::measured: return "measured";
    case ParamSource::fitted: return "fitted";
  }
  return "?";
}

const std::vector<EfficiencyField>& efficiency_fields() {
  static const std::vector<EfficiencyField> fields{
      {"gemm", &Efficiency::gemm, "fraction of peak", "large GEMMs (maximum achievable matmul FLOP/s)", 1e-3, 1},
      {"attention", &Efficiency::attention, "fraction of peak", "fused attention kernels, forward and backward", 1e-3, 1},
      {"memory", &Efficiency::memory, "fraction of HBM bandwidth", "memory-bound kernels", 1e-3, 1},
      {"optimizer_memory", &Efficiency::optimizer_memory, "x memory-bound bandwidth",
       "the optimizer step's update, against the memory-bound kernels' bandwidth (hbm x memory)", 0.1, 10},
      {"kernel_overhead_s", &Efficiency::kernel_overhead_s, "s", "device-side fixed cost per kernel", 0, 1},
      {"gemm_k_fill", &Efficiency::gemm_k_fill, "elements of k", "a GEMM tile's fixed work (prologue, epilogue) as extra k", 0, 65536},
      {"intra_node", &Efficiency::intra_node, "fraction of link bandwidth", "collectives inside a node (bus bandwidth)", 1e-3, 1},
      {"intra_node_latency_s", &Efficiency::intra_node_latency_s, "s", "latency of a collective inside a node", 0, 1},
      {"inter_node", &Efficiency::inter_node, "fraction of link bandwidth", "collectives across nodes (bus bandwidth)", 1e-3, 1},
      {"inter_node_latency_s", &Efficiency::inter_node_latency_s, "s", "latency of a collective across nodes", 0, 1},
      {"intra_node_hop_s", &Efficiency::intra_node_hop_s, "s", "latency per step (ring hop) of a collective inside a node", 0, 1},
      {"inter_node_hop_s", &Efficiency::inter_node_hop_s, "s", "latency per step (ring hop, tree level) across nodes", 0, 1},
      {"host_overhead_s", &Efficiency::host_overhead_s, "s",
       "host-side cost per kernel (dispatch, autograd): added on CPU workers, overlapped with the device on GPUs", 0, 1},
      {"microbatch_overhead_s", &Efficiency::microbatch_overhead_s, "s", "host time per micro-batch and stage outside kernels", 0, 1},
      {"step_overhead_s", &Efficiency::step_overhead_s, "s", "host time per optimizer step outside kernels", 0, 1},
      {"host_cores", &Efficiency::host_cores, "cores",
       "CPU workers: cores one machine's workers share (more workers than cores run slower); 0: a core each", 0, 1e6},
      {"peer_wait_s", &Efficiency::peer_wait_s, "s",
       "CPU workers outnumbering host_cores: wait per collective step for a peer off its core (a scheduler slice)", 0, 1},
  };
  return fields;
}

namespace {

// The fit looks every parameter up on each prediction of each row (effective_efficiency): a scan that
// compared each name with strcmp took half of a 1,473-row fit's time (perf, Calibrate.ShippedProfiles
// AreWhatTheCommandFits), a hash map a third. Lengths are compared first, so most fields cost an integer
// compare and at most three names share a length.
const EfficiencyField* field_named(const std::string& name) {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const EfficiencyField& f : efficiency_fields()) v.emplace_back(f.name);
    return v;
  }();
  const std::string_view n(name);
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == n) return &efficiency_fields()[i];
  return nullptr;
}

std::vector<std::string> field_names() {
  std::vector<std::string> names;
  for (const EfficiencyField& f : efficiency_fields()) names.push_back(f.name);
  return names;
}

}  // namespace

Calibration calibration_from_json(const json& doc, const std::string& origin, const std::string& field) {
  Violations errors;
  Calibration c;
  c.origin = origin;
  if (!doc.is_object() || !doc.contains("name") || !doc["name"].is_string() || !doc.contains("parameters") ||
      !doc["parameters"].is_object()) {
    throw PlanError(field, "\"" + origin + "\"",
                    "is not a calibration profile: it needs \"name\" and a \"parameters\" object (docs/calibration.md)");
  }
  c.name = doc["name"].get<std::string>();
  c.provenance = doc.value("provenance", std::string());
  if (doc.contains("device") && doc["device"].is_string()) c.device = doc["device"].get<std::string>();
  for (const auto& [name, p] : doc["parameters"].items()) {
    const std::string where = field + " (" + origin + "): parameters." + name;
    if (!field_named(name)) {
      const std::string guess = closest_match(name, field_names());
      errors.add(where, "", "is not a parameter of the time model" + (guess.empty() ? "" : " (did you mean \"" + guess + "\"?)"));
      continue;
    }
    CalibratedParam cp;
    cp.name = name;
    const bool has_value = p.is_object() && p.contains("value"), has_factor = p.is_object() && p.contains("factor");
    if (has_value == has_factor || !p[has_value ? "value" : "factor"].is_number()) {
      errors.add(where, p.dump(), "must hold a number as \"value\" or as \"factor\" (of the hardware's value), not both");
      continue;
    }
    cp.is_factor = has_factor;
    cp.value = p[has_value ? "value" : "factor"].get<double>();
    if (!(cp.value >= 0) || cp.value > 1e6) {
      errors.add(where, std::to_string(cp.value), "must be a finite number >= 0");
      continue;
    }
    const std::string src = p.value("source", std::string("fitted"));
    if (src == "fitted") cp.source = ParamSource::fitted;
    else if (src == "measured") cp.source = ParamSource::measured;
    else if (src == "datasheet") cp.source = ParamSource::datasheet;
    else errors.add(where + ".source", "\"" + src + "\"", "must be fitted, measured or datasheet");
    cp.note = p.value("note", std::string());
    c.params.push_back(cp);
  }
  errors.throw_if_any();
  return c;
}

json calibration_to_json(const Calibration& c) {
  json params = json::object();
  for (const CalibratedParam& p : c.params)
    params[p.name] = {{p.is_factor ? "factor" : "value", p.value}, {"source", to_string(p.source)}, {"note", p.note}};
  json doc = {{"name", c.name}, {"provenance", c.provenance}, {"parameters", params}};
  if (!c.device.empty()) doc["device"] = c.device;
  return doc;
}

std::vector<std::string> builtin_calibration_names() {
  std::vector<std::string> names{"none"};
  for (const auto& f : embedded::calibration())
    if (f.id) names.push_back(f.id);
  return names;
}

Calibration builtin_calibration(const std::string& name, const std::string& field) {
  if (name == "none") return {};
  for (const auto& f : embedded::calibration())
    if (f.id && name == f.id) {
      Calibration c = calibration_from_json(json::parse(f.text), name, field);
      c.origin = name;
      return c;
    }
  const auto names = builtin_calibration_names();
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  const std::string guess = closest_match(name, names);
  throw PlanError(field, "\"" + name + "\"",
                  "is not a calibration" + (guess.empty() ? "" : " (did you mean \"" + guess + "\"?)") + "; known: " +
                      known + ", or the path of a profile file ending in .json");
}

Calibration load_calibration(const std::string& name_or_path, const std::string& field, const std::string& base_dir) {
  namespace fs = std::filesystem;
  if (fs::path(name_or_path).extension() != ".json") return builtin_calibration(name_or_path, field);
  fs::path p(name_or_path);
  if (p.is_relative()) p = fs::path(base_dir) / p;
  std::ifstream in(p);
  if (!in) throw PlanError(field, "\"" + name_or_path + "\"", "file cannot be read (does it exist?)");
  std::stringstream text;
  text << in.rdbuf();
  Calibration c = calibration_from_json(parse_json_text(text.str(), p.string()), name_or_path, field);
  c.origin = fs::absolute(p).lexically_normal().string();  // stays valid wherever the plan is written
  return c;
}

bool fitted_on_another_gpu(const GpuSpec& gpu, const Calibration& cal) {
  return !cal.device.empty() && cal.device != gpu.id;
}

std::vector<std::string> builtin_calibrations_of(const std::string& device) {
  // Each built-in profile's device, read once: the GUI asks on every evaluation of a plan whose profile is
  // another GPU's, and parsing every embedded profile each time would put that on each control change.
  static const std::vector<std::pair<std::string, std::string>> devices = [] {
    std::vector<std::pair<std::string, std::string>> v;
    for (const std::string& name : builtin_calibration_names())
      if (name != "none") v.emplace_back(name, builtin_calibration(name).device);
    return v;
  }();
  std::vector<std::string> out;
  if (device.empty()) return out;
  for (const auto& [name, of] : devices)
    if (of == device) out.push_back(name);
  return out;
}

Efficiency effective_efficiency(const GpuSpec& gpu, const Calibration& cal) {
  Efficiency e = gpu.efficiency;
  for (const CalibratedParam& p : cal.params) {
    const EfficiencyField* f = field_named(p.name);
    if (!f) continue;  // checked when the profile was read
    e.*(f->member) = p.is_factor ? e.*(f->member) * p.value : p.value;
  }
  return e;
}

std::vector<ParamSource> parameter_sources(const Calibration& cal) {
  std::vector<ParamSource> out;
  for (const EfficiencyField& f : efficiency_fields()) {
    ParamSource s = ParamSource::datasheet;
    for (const CalibratedParam& p : cal.params)
      if (p.name == f.name) s = p.source;
    out.push_back(s);
  }
  return out;
}

}  // namespace paraplan::planner
