#include "paraplan/presets.hpp"

#include <nlohmann/json.hpp>

#include "paraplan/embedded_data.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::planner {

using nlohmann::json;

namespace {

const embedded::EmbeddedFile* find(std::span<const embedded::EmbeddedFile> files, const std::string& id) {
  for (const auto& f : files)
    if (f.id && id == f.id) return &f;
  return nullptr;
}

std::vector<std::string> ids(std::span<const embedded::EmbeddedFile> files) {
  std::vector<std::string> out;
  for (const auto& f : files)
    if (f.id) out.push_back(f.id);
  return out;
}

[[noreturn]] void unknown(const std::string& field, const std::string& id, const std::vector<std::string>& known,
                          const char* list_command) {
  const std::string guess = closest_match(id, known);
  std::string rule = "is not a preset";
  if (!guess.empty()) rule += " (did you mean \"" + guess + "\"?)";
  rule += "; see `paraplan " + std::string(list_command) + "`";
  throw PlanError(field, "\"" + id + "\"", rule);
}

std::vector<PresetInfo> infos(std::span<const embedded::EmbeddedFile> files) {
  std::vector<PresetInfo> out;
  for (const auto& f : files) {
    if (!f.id) continue;
    const json j = json::parse(f.text);
    PresetInfo p;
    p.id = f.id;
    p.name = j.value("name", p.id);
    p.description = j.value("description", "");
    if (j.contains("source") && j["source"].is_string()) p.source = j["source"].get<std::string>();
    if (j.contains("sources") && j["sources"].is_object())
      for (auto it = j["sources"].begin(); it != j["sources"].end(); ++it)
        p.source += (p.source.empty() ? "" : "; ") + it.key() + ": " + it.value().get<std::string>();
    out.push_back(p);
  }
  return out;
}

}  // namespace

std::vector<PresetInfo> model_presets() { return infos(embedded::models()); }
std::vector<PresetInfo> hardware_presets() { return infos(embedded::hardware()); }

bool is_model_preset(const std::string& id) { return find(embedded::models(), id) != nullptr; }

ModelSpec model_preset(const std::string& id, const std::string& field) {
  const auto* f = find(embedded::models(), id);
  if (!f) unknown(field, id, ids(embedded::models()), "models");
  Violations errors;
  ModelSpec m = model_from_json(json::parse(f->text), "data/models/" + id + ".json", ".", errors);
  errors.throw_if_any();
  m.preset = id;
  return m;
}

GpuSpec hardware_preset(const std::string& id, const std::string& field) {
  const auto* f = find(embedded::hardware(), id);
  if (!f) unknown(field, id, ids(embedded::hardware()), "hardware");
  Violations errors;
  GpuSpec g = gpu_from_json(json::parse(f->text), "data/hardware/" + id + ".json", errors);
  errors.throw_if_any();
  g.id = id;
  g.custom = false;
  return g;
}

}  // namespace paraplan::planner
