// Published collective timings (nccl-tests tables) -> one probe of the device they were measured on.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

#include "paraplan/comm.hpp"
#include "paraplan/csv_row.hpp"
#include "paraplan/import.hpp"
#include "paraplan/measurements.hpp"
#include "paraplan/presets.hpp"

namespace paraplan::planner {

namespace {

// The column line: these four, one of the two measures, and optionally ranks_per_node, in any order.
constexpr const char* kKeys[] = {"device", "collective", "ranks", "bytes"};
constexpr const char* kMeasures[] = {"time_us", "busbw_gb_per_s"};
constexpr const char* kOptional = "ranks_per_node";

bool is_column_line(const std::vector<std::string>& cells) {
  const std::set<std::string> have(cells.begin(), cells.end());
  if (have.size() != cells.size()) return false;
  size_t known = 0;
  for (const char* k : kKeys) {
    if (!have.count(k)) return false;
    ++known;
  }
  size_t measures = 0;
  for (const char* k : kMeasures) measures += have.count(k);
  if (measures == 0) return false;
  return have.size() == known + measures + have.count(kOptional);
}

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

// The cells of the first line that is neither empty nor a '#' comment.
std::vector<std::string> column_line(const std::string& text) {
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line[0] != '#') return csv::split(line);
  }
  return {};
}

}  // namespace

bool is_collective_table(const std::string& text) { return is_column_line(column_line(text)); }

ImportedProbe imported_probe_from_csv(const std::string& text, const std::string& origin) {
  ImportedProbe out;
  out.probe.host = "published: " + std::filesystem::path(origin).filename().string();
  const std::vector<std::string> columns = column_line(text);
  const bool by_time = std::count(columns.begin(), columns.end(), "time_us") > 0;
  const bool by_busbw = std::count(columns.begin(), columns.end(), "busbw_gb_per_s") > 0;
  if (by_time == by_busbw)
    throw PlanError(origin + ": columns", "", by_time ? "give time_us or busbw_gb_per_s, not both"
                                                      : "need time_us (one operation, us) or busbw_gb_per_s (nccl-tests' bus bandwidth)");
  csv::for_each_row(text, origin, {"device", "collective", "ranks", "bytes"}, [&](csv::Row& row, int) {
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
    r.ranks = static_cast<int>(row.integer("ranks", 2, 2, 65536));
    r.bytes = static_cast<double>(row.integer("bytes", 1, 1, int64_t{1} << 50));
    if (row.cells.count(kOptional)) {
      // a group over ranks / ranks_per_node nodes; as many as the group holds: one node
      r.ranks_per_node = static_cast<int>(row.integer(kOptional, 0, 1, 65536));
      if (r.ranks_per_node > 0 && r.ranks % r.ranks_per_node != 0)
        row.errors.add(row.field(kOptional), row.text(kOptional),
                       "must divide ranks (" + std::to_string(r.ranks) + "): every node holds as many of the group's ranks");
      if (r.ranks_per_node >= r.ranks) r.ranks_per_node = 0;
    }
    if (by_time) {
      r.seconds = row.positive("time_us") * 1e-6;
      if (!row.has("time_us")) row.errors.add(row.field("time_us"), "", "is required");
    } else {
      // nccl-tests' bus bandwidth: busbw = bytes x bus factor (all-reduce 2(n-1)/n) / time, GB of 1e9 bytes
      const double busbw = row.positive("busbw_gb_per_s") * 1e9;
      if (!row.has("busbw_gb_per_s")) row.errors.add(row.field("busbw_gb_per_s"), "", "is required");
      if (busbw > 0) r.seconds = r.bytes * bus_factor(collective_of(r.kind), r.ranks) / busbw;
    }
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
