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

Command add_models_command(CLI::App& app) {
  auto json_out = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("models", "List the model presets (use the id as \"model\" in a plan)");
  sub->add_flag("--json", *json_out, "print JSON");
  return {sub, [json_out] {
            nlohmann::json all = nlohmann::json::array();
            if (!*json_out)
              fmt::print("{:<14} {:>16} {:>7} {:>7} {:>9}  {}\n", "id", "parameters", "layers", "hidden", "heads/kv",
                         "description");
            for (const PresetInfo& p : model_presets()) {
              const ModelSpec m = model_preset(p.id);
              const ParamCount c = count_params(m);
              if (*json_out) {
                nlohmann::json j = model_to_json(m);
                j["id"] = p.id;
                j["params"] = c.total;
                j["active_params"] = c.active;
                j["source"] = p.source;
                all.push_back(j);
                continue;
              }
              fmt::print("{:<14} {:>16} {:>7} {:>7} {:>9}  {}\n", p.id, count(static_cast<double>(c.total)), m.layers,
                         m.hidden, fmt::format("{}/{}", m.heads, m.kv_heads), p.description);
            }
            if (*json_out) std::cout << all.dump(2) << "\n";
            return 0;
          }};
}

Command add_hardware_command(CLI::App& app) {
  auto json_out = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("hardware", "List the GPU presets (use the id as cluster.gpu in a plan)");
  sub->add_flag("--json", *json_out, "print JSON");
  return {sub, [json_out] {
            nlohmann::json all = nlohmann::json::array();
            if (!*json_out)
              fmt::print("{:<14} {:>9} {:>11} {:>9} {:>10} {:>10}  {}\n", "id", "mem GiB", "bf16 TFLOP/s",
                         "HBM TB/s", "NVLink GB/s", "net GB/s", "name (GB = 1e9 B, TB = 1e12 B, per direction)");
            for (const PresetInfo& p : hardware_presets()) {
              const GpuSpec g = hardware_preset(p.id);
              if (*json_out) {
                nlohmann::json j = gpu_to_json(g);
                j["source"] = p.source;
                all.push_back(j);
                continue;
              }
              const double peak = g.peak_bf16_flops > 0 ? g.peak_bf16_flops : g.peak_fp16_flops > 0 ? g.peak_fp16_flops
                                                                                                    : g.peak_fp32_flops;
              fmt::print("{:<14} {:>9.1f} {:>11.1f} {:>9.2f} {:>10.0f} {:>10.1f}  {}\n", p.id,
                         g.memory_bytes / double(1ull << 30), peak / 1e12, g.hbm_bytes_per_s / 1e12,
                         g.intra_node_bytes_per_s / 1e9, g.inter_node_bytes_per_s / 1e9, g.name);
            }
            if (*json_out) std::cout << all.dump(2) << "\n";
            return 0;
          }};
}

}  // namespace paraplan::cli
