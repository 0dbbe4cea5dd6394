// Published collective timings (nccl-tests tables) -> one probe of the device they were measured on.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "paraplan/csv_row.hpp"
#include "paraplan/import.hpp"
#include "paraplan/presets.hpp"

namespace paraplan::planner {

namespace {

constexpr const char* kColumns = "device,collective,ranks,bytes,time_us";

// The table's '#' lines, joined: who measured it, kept as the probe's software.
std::string comments(const std::string& text) {
  std::stringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    const size_t from = line.find_first_not_of("# ");
    if (!line.empty() && line[0] == '#' && from != std::string::npos)
      out += (out.empty() ? "" : " ") + line.substr(from);
  }
  return out;
}

}  // namespace

bool is_collective_table(const std::string& text) {
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    return line == kColumns;
  }
  return false;
}

ImportedProbe imported_probe_from_csv(const std::string& text, const std::string& origin) {
  ImportedProbe out;
  out.probe.host = "published: " + std::filesystem::path(origin).filename().string();
  csv::for_each_row(text, origin, {"device", "collective", "ranks", "bytes", "time_us"}, [&](csv::Row& row, int) {
    const std::string device = row.text("device");
    if (out.probe.device.empty()) {
      try {
        hardware_preset(device, row.field("device"));
        out.probe.device = device;
      } catch (const PlanError& e) {
        for (const auto& v : e.violations()) row.errors.add(v.field, v.value, v.rule);
      }
    } else if (device != out.probe.device) {
      row.errors.add(row.field("device"), device, "must be the table's one device (" + out.probe.device + ")");
    }
    ProbeResult r;
    r.kind = row.text("collective");
    if (r.kind != "all_reduce" && r.kind != "all_gather" && r.kind != "reduce_scatter" && r.kind != "send_recv")
      row.errors.add(row.field("collective"), r.kind, "must be one of all_reduce, all_gather, reduce_scatter, send_recv");
    r.ranks = static_cast<int>(row.integer("ranks", 2, 2, 1024));
    r.bytes = static_cast<double>(row.integer("bytes", 1, 1, int64_t{1} << 50));
    r.seconds = row.positive("time_us") * 1e-6;
    if (!row.has("time_us")) row.errors.add(row.field("time_us"), "", "is required");
    r.dtype = "fp32";  // the bytes are what counts for a collective
    r.repeats = 1;
    out.results.push_back(r);
  });
  if (out.results.empty()) throw PlanError("file", origin, "holds a column line but no rows to import");
  out.probe.software = nlohmann::json{{"published", comments(text)}}.dump();
  out.probe.hardware = nlohmann::json{{"gpu", out.probe.device}}.dump();
  return out;
}

}  // namespace paraplan::planner
