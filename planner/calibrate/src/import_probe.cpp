// Published collective timings (nccl-tests tables) -> one probe of the device they were measured on.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "paraplan/error.hpp"
#include "paraplan/import.hpp"
#include "paraplan/presets.hpp"

namespace paraplan::planner {

namespace {

constexpr const char* kColumns = "device,collective,ranks,bytes,time_us";

std::vector<std::string> cells_of(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  std::string c;
  while (std::getline(ss, c, ',')) cells.push_back(c);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// A cell as a finite number > 0 (whole when `whole`), or 0 with the error added.
double number(const std::string& cell, const std::string& field, bool whole, Violations& errors) {
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  if (cell.empty() || end != cell.c_str() + cell.size() || !std::isfinite(v) || v <= 0 ||
      (whole && v != std::floor(v))) {
    errors.add(field, cell, whole ? "must be a whole number > 0" : "must be a number > 0");
    return 0;
  }
  return v;
}

}  // namespace

bool is_collective_table(const std::string& text) {
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    return line == kColumns;
  }
  return false;
}

ImportedProbe imported_probe_from_csv(const std::string& text, const std::string& origin) {
  ImportedProbe out;
  const std::string file = std::filesystem::path(origin).filename().string();
  out.probe.host = "published: " + file;
  std::string comment;  // the table's '#' lines say who measured it: kept as the probe's software
  Violations errors;
  std::stringstream in(text);
  std::string line;
  bool header = false;
  for (int n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] == '#') {
      const size_t from = line.find_first_not_of("# ");
      if (from != std::string::npos) comment += (comment.empty() ? "" : " ") + line.substr(from);
      continue;
    }
    const std::string where = origin + ":" + std::to_string(n);
    if (!header) {
      if (line != kColumns) errors.add(where, line, std::string("must be the column line \"") + kColumns + "\"");
      header = true;
      errors.throw_if_any();
      continue;
    }
    const std::vector<std::string> c = cells_of(line);
    if (c.size() != 5) {
      errors.add(where, line, "must have the 5 cells of \"" + std::string(kColumns) + "\"");
      continue;
    }
    if (out.probe.device.empty()) {
      try {
        hardware_preset(c[0], where + ": device");
        out.probe.device = c[0];
      } catch (const PlanError& e) {
        for (const auto& v : e.violations()) errors.add(v.field, v.value, v.rule);
      }
    } else if (c[0] != out.probe.device) {
      errors.add(where + ": device", c[0], "must be the table's one device (" + out.probe.device + ")");
    }
    ProbeResult r;
    r.kind = c[1];
    if (r.kind != "all_reduce" && r.kind != "all_gather" && r.kind != "reduce_scatter" && r.kind != "send_recv")
      errors.add(where + ": collective", c[1], "must be one of all_reduce, all_gather, reduce_scatter, send_recv");
    const double ranks = number(c[2], where + ": ranks", true, errors);
    if (ranks > 0 && (ranks < 2 || ranks > 1024)) errors.add(where + ": ranks", c[2], "must be between 2 and 1024");
    r.ranks = static_cast<int>(std::clamp(ranks, 0.0, 1024.0));
    r.bytes = number(c[3], where + ": bytes", true, errors);
    r.seconds = number(c[4], where + ": time_us", false, errors) * 1e-6;
    r.dtype = "fp32";  // the bytes are what counts for a collective
    r.repeats = 1;
    out.results.push_back(r);
  }
  if (!header) errors.add(origin, "", std::string("has no column line \"") + kColumns + "\"");
  errors.throw_if_any();
  if (out.results.empty()) throw PlanError("file", origin, "holds a column line but no rows to import");
  out.probe.software = nlohmann::json{{"published", comment}}.dump();
  out.probe.hardware = nlohmann::json{{"gpu", out.probe.device}}.dump();
  return out;
}

}  // namespace paraplan::planner
