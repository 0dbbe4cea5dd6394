#pragma once
// What the export checkers (export_checkers.hpp) share: the result type, number parsing, commented
// command lines, and torchrun's command line (the Megatron-LM and torchtitan headers and the Slurm script of
// --format torchrun all launch with it).
#include <cctype>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace exportcheck {

// The rules an export breaks, one line each.
struct Problems {
  std::vector<std::string> list;
  void require(bool ok, const std::string& rule) {
    if (!ok) list.push_back(rule);
  }
};

// Parses `text` with `parse` into `into`. Returns the one problem to report when the parser throws
// ("<failure>: <its message>"), else nothing.
template <class T, class Parse>
std::vector<std::string> parse_or_problem(T& into, Parse parse, const std::string& text, const std::string& failure) {
  try {
    into = parse(text);
  } catch (const std::exception& e) {
    return {failure + ": " + e.what()};
  }
  return {};
}

// The value at `key` of a JSON object, `absent` when the object or key is missing or holds another type (the
// schema checks report a wrong type; the rules then see the default).
template <class T>
T get_or(const nlohmann::json& o, const std::string& key, T absent) {
  if (!o.is_object() || !o.contains(key)) return absent;
  try {
    return o.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    return absent;
  }
}
inline std::string get_or(const nlohmann::json& o, const std::string& key, const char* absent) {
  return get_or<std::string>(o, key, std::string(absent));
}

// A whole non-negative decimal integer ("8"), else -1.
inline long long whole(const std::string& s) {
  if (s.empty() || s.size() > 18) return -1;
  long long v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// A decimal number as Python's float() reads it ("0", "0.1", "1e-3"), else false.
inline bool is_float(const std::string& s) {
  if (s.empty()) return false;
  size_t used = 0;
  try {
    (void)std::stod(s, &used);
  } catch (...) {
    return false;
  }
  return used == s.size();
}

inline std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> out;
  std::string w;
  for (char c : line + " ") {
    if (c == ' ' || c == '\t') {
      if (!w.empty()) out.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  return out;
}

// The first line of `text` that starts with `#` and holds `command` as a word, with `\` continuation lines
// (also comments) joined, as words from `command` on; empty when there is none.
inline std::vector<std::string> commented_command(const std::string& text, const std::string& command) {
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("#", 0) != 0) continue;
    std::vector<std::string> w = words_of(lines[i].substr(1));
    size_t at = 0;
    while (at < w.size() && w[at] != command) ++at;
    if (at == w.size()) continue;
    std::vector<std::string> out(w.begin() + static_cast<long>(at), w.end());
    for (size_t j = i + 1; !out.empty() && out.back() == "\\" && j < lines.size() && lines[j].rfind("#", 0) == 0; ++j) {
      out.pop_back();
      for (const auto& x : words_of(lines[j].substr(1))) out.push_back(x);
    }
    return out;
  }
  return {};
}

// ---- torchrun: pytorch/pytorch torch/distributed/run.py get_args_parser() at 010929fd3f40.
struct TorchrunLine {
  std::map<std::string, std::string> options;  // dash spelling ("--nproc-per-node") -> value
  std::set<std::string> switches;               // "--no-python", "--standalone", "-m", "--run-path"
  std::string script;                           // training_script (the first positional word)
  long long world = -1;                         // nnodes x nproc-per-node, -1 if not both whole numbers
};

// `words` starts with "torchrun". Flags with a value: get_args_parser's add_argument calls with action=env or
// a type (each also spelled with underscores); switches: action=check_env. Anything else before the script
// is an argparse error ("unrecognized arguments").
inline TorchrunLine check_torchrun(const std::vector<std::string>& words, Problems& out) {
  static const std::set<std::string> valued{
      "--nnodes",        "--nproc-per-node", "--rdzv-backend", "--rdzv-endpoint",   "--rdzv-id",       "--rdzv-conf",
      "--max-restarts",  "--monitor-interval", "--start-method", "--event-log-handler", "--role",        "--log-dir",
      "-r",              "--redirects",      "-t",             "--tee",             "--local-ranks-filter", "--node-rank",
      "--master-addr",   "--master-port",    "--local-addr",   "--logs-specs",      "--numa-binding",  "--signals-to-handle"};
  static const std::set<std::string> switches{"--standalone", "-m", "--module", "--no-python", "--run-path"};
  TorchrunLine t;
  if (words.empty() || words[0] != "torchrun") {
    out.require(false, "torchrun: no torchrun command line");
    return t;
  }
  size_t i = 1;
  for (; i < words.size() && words[i].rfind("-", 0) == 0; ++i) {
    std::string flag = words[i], value;
    const size_t eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    for (size_t k = 2; k < flag.size(); ++k)
      if (flag[k] == '_') flag[k] = '-';  // "--nproc_per_node" is an alias of "--nproc-per-node"
    if (switches.count(flag)) {
      out.require(eq == std::string::npos, "torchrun: " + flag + " takes no value");
      t.switches.insert(flag == "--module" ? "-m" : flag);
    } else if (valued.count(flag)) {
      if (eq == std::string::npos) {
        out.require(i + 1 < words.size(), "torchrun: " + flag + " needs a value");
        if (i + 1 < words.size()) value = words[++i];
      }
      t.options[flag] = value;
    } else {
      out.require(false, "torchrun: unrecognized argument " + words[i] + " (run.py get_args_parser)");
    }
  }
  out.require(i < words.size(), "torchrun: no training script (run.py: training_script is required)");
  if (i < words.size()) t.script = words[i];
  // run.py parse_min_max_nnodes / determine_local_world_size: a fixed plan needs whole numbers here.
  const long long nodes = t.options.count("--nnodes") ? whole(t.options["--nnodes"]) : 1;
  const long long per_node = t.options.count("--nproc-per-node") ? whole(t.options["--nproc-per-node"]) : 1;
  out.require(nodes >= 1, "torchrun: --nnodes must be a whole number of nodes");
  out.require(per_node >= 1, "torchrun: --nproc-per-node must be a whole number of processes");
  if (nodes >= 1 && per_node >= 1) t.world = nodes * per_node;
  // A c10d rendezvous needs its endpoint (host:port); the static one uses --master-addr/--master-port.
  if (t.options.count("--rdzv-backend") && t.options["--rdzv-backend"] == "c10d") {
    const std::string& ep = t.options["--rdzv-endpoint"];
    const size_t colon = ep.rfind(':');
    out.require(colon != std::string::npos && colon > 0 && whole(ep.substr(colon + 1)) > 0,
                "torchrun: --rdzv-backend c10d needs --rdzv-endpoint HOST:PORT, got '" + ep + "'");
  }
  return t;
}

}  // namespace exportcheck
