// paraplan models | hardware: the built-in presets.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "format.hpp"
#include "paraplan/model.hpp"
#include "paraplan/params.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"

namespace paraplan::cli {

using namespace planner;

namespace {

// A command that lists presets: a table (header, then a row per preset), or with --json one JSON array
// holding each preset's object.
template <class Header, class ToJson, class PrintRow>
Command add_preset_listing(CLI::App& app, const char* name, const char* help, std::vector<PresetInfo> (*presets)(),
                           Header header, ToJson to_json, PrintRow print_row) {
  auto json_out = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(name, help);
  sub->add_flag("--json", *json_out, "print JSON");
  return {sub, [=] {
            if (*json_out) {
              nlohmann::json all = nlohmann::json::array();
              for (const PresetInfo& p : presets()) all.push_back(to_json(p));
              std::cout << all.dump(2) << "\n";
              return 0;
            }
            header();
            for (const PresetInfo& p : presets()) print_row(p);
            return 0;
          }};
}

}  // namespace

Command add_models_command(CLI::App& app) {
  return add_preset_listing(
      app, "models", "List the model presets (use the id as \"model\" in a plan)", model_presets,
      [] {
        fmt::print("{:<14} {:>16} {:>7} {:>7} {:>9}  {}\n", "id", "parameters", "layers", "hidden", "heads/kv",
                   "description");
      },
      [](const PresetInfo& p) {
        const ModelSpec m = model_preset(p.id);
        const ParamCount c = count_params(m);
        nlohmann::json j = model_to_json(m);
        j["id"] = p.id;
        j["params"] = c.total;
        j["active_params"] = c.active;
        j["source"] = p.source;
        return j;
      },
      [](const PresetInfo& p) {
        const ModelSpec m = model_preset(p.id);
        const ParamCount c = count_params(m);
        fmt::print("{:<14} {:>16} {:>7} {:>7} {:>9}  {}\n", p.id, count(static_cast<double>(c.total)), m.layers,
                   m.hidden, fmt::format("{}/{}", m.heads, m.kv_heads), p.description);
      });
}

Command add_hardware_command(CLI::App& app) {
  return add_preset_listing(
      app, "hardware", "List the GPU presets (use the id as cluster.gpu in a plan)", hardware_presets,
      [] {
        fmt::print("{:<14} {:>9} {:>11} {:>9} {:>10} {:>7} {:>10}  {}\n", "id", "mem GiB", "bf16 TFLOP/s", "HBM TB/s",
                   "NVLink GB/s", "domain", "net GB/s", "name (GB = 1e9 B, TB = 1e12 B, per direction; domain: GPUs on one NVLink)");
      },
      [](const PresetInfo& p) {
        nlohmann::json j = gpu_to_json(hardware_preset(p.id));
        j["source"] = p.source;
        return j;
      },
      [](const PresetInfo& p) {
        const GpuSpec g = hardware_preset(p.id);
        const double peak = g.peak_bf16_flops > 0 ? g.peak_bf16_flops : g.peak_fp16_flops > 0 ? g.peak_fp16_flops
                                                                                              : g.peak_fp32_flops;
        // The NVLink domain: a rack's trays (GB200 NVL72), else one 8-GPU server; a CPU worker has none.
        const std::string domain = g.is_cpu ? "-"
                                   : g.nvlink_tray_gpus > 0 && g.nvlink_domain_trays > 0
                                       ? std::to_string(g.nvlink_tray_gpus * g.nvlink_domain_trays)
                                       : "8";
        fmt::print("{:<14} {:>9.1f} {:>11.1f} {:>9.2f} {:>10.0f} {:>7} {:>10.1f}  {}\n", p.id,
                   g.memory_bytes / double(1ull << 30), peak / 1e12, g.hbm_bytes_per_s / 1e12,
                   g.intra_node_bytes_per_s / 1e9, domain, g.inter_node_bytes_per_s / 1e9, g.name);
      });
}

}  // namespace paraplan::cli
