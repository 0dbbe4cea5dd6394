#pragma once
// Strict readers for the text formats `paraplan export` writes, so that tests check that the output parses
// (and what it says) without Python packages: the subset of TOML (torchtitan) and YAML (accelerate) that
// paraplan emits, Megatron-LM's bash array of flags, and the Slurm script. Anything outside the subset is
// an error, never skipped.
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace cfgtest {

using nlohmann::json;

inline std::runtime_error parse_error(const std::string& what, size_t line) {
  return std::runtime_error(what + " (line " + std::to_string(line) + ")");
}

// ---- TOML: tables, bare keys, integers, floats, booleans, basic strings, (nested, multi-line) arrays.
class TomlReader {
 public:
  explicit TomlReader(const std::string& text) : s_(text) {}

  json parse() {
    json root = json::object();
    json* table = &root;
    std::set<std::string> tables;
    for (;;) {
      skip_blank_lines();
      if (at_end()) return root;
      if (s_[i_] == '[') {
        ++i_;
        std::string name;
        while (!at_end() && s_[i_] != ']' && s_[i_] != '\n') name += s_[i_++];
        expect(']');
        end_of_line();
        if (!tables.insert(name).second) throw parse_error("table [" + name + "] defined twice", line_);
        table = &root;
        size_t start = 0;
        for (;;) {
          const size_t dot = name.find('.', start);
          const std::string part = name.substr(start, dot - start);
          check_bare(part);
          json& next = (*table)[part];
          if (next.is_null()) next = json::object();
          if (!next.is_object()) throw parse_error("table " + name + " redefines a key", line_);
          table = &next;
          if (dot == std::string::npos) break;
          start = dot + 1;
        }
        continue;
      }
      std::string key;
      while (!at_end() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '-'))
        key += s_[i_++];
      check_bare(key);
      skip_spaces();
      expect('=');
      skip_spaces();
      if (table->contains(key)) throw parse_error("duplicate key " + key, line_);
      (*table)[key] = value();
      end_of_line();
    }
  }

 private:
  bool at_end() const { return i_ >= s_.size(); }
  void skip_spaces() {
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void skip_comment() {
    if (!at_end() && s_[i_] == '#')
      while (!at_end() && s_[i_] != '\n') ++i_;
  }
  void skip_blank_lines() {  // spaces, comments and newlines
    for (;;) {
      skip_spaces();
      skip_comment();
      if (at_end() || s_[i_] != '\n') return;
      ++i_;
      ++line_;
    }
  }
  void end_of_line() {
    skip_spaces();
    skip_comment();
    if (at_end()) return;
    if (s_[i_] != '\n') throw parse_error(std::string("unexpected '") + s_[i_] + "' after a value", line_);
    ++i_;
    ++line_;
  }
  void expect(char c) {
    if (at_end() || s_[i_] != c) throw parse_error(std::string("expected '") + c + "'", line_);
    ++i_;
  }
  void check_bare(const std::string& k) const {
    if (k.empty()) throw parse_error("empty or invalid key", line_);
  }
  json value() {
    if (at_end()) throw parse_error("missing value", line_);
    const char c = s_[i_];
    if (c == '"') {
      ++i_;
      std::string out;
      while (!at_end() && s_[i_] != '"') {
        if (s_[i_] == '\n') throw parse_error("newline in a string", line_);
        if (s_[i_] == '\\') {
          ++i_;
          if (at_end()) break;
          const char e = s_[i_];
          if (e == 'n') out += '\n';
          else if (e == 't') out += '\t';
          else if (e == '"' || e == '\\') out += e;
          else throw parse_error("unknown escape", line_);
          ++i_;
        } else {
          out += s_[i_++];
        }
      }
      expect('"');
      return out;
    }
    if (c == '[') {
      ++i_;
      json arr = json::array();
      for (;;) {
        skip_blank_lines();
        if (!at_end() && s_[i_] == ']') {
          ++i_;
          return arr;
        }
        arr.push_back(value());
        skip_blank_lines();
        if (!at_end() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return arr;
      }
    }
    std::string word;
    while (!at_end() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == '-' ||
                         s_[i_] == '+' || s_[i_] == '_'))
      word += s_[i_++];
    if (word == "true") return true;
    if (word == "false") return false;
    size_t used = 0;
    if (word.find_first_of(".eE") == std::string::npos) {
      const long long v = std::stoll(word, &used);
      if (used == word.size()) return v;
    } else {
      const double v = std::stod(word, &used);
      if (used == word.size()) return v;
    }
    throw parse_error("not a TOML value: " + word, line_);
  }

  const std::string& s_;
  size_t i_ = 0, line_ = 1;
};

inline json parse_toml(const std::string& text) { return TomlReader(text).parse(); }

// ---- YAML: block mappings indented by two spaces; scalars true/false, integers, 'single-quoted' and plain
// strings. Sequences, flow collections, anchors and multi-line scalars are errors.
inline json yaml_scalar(const std::string& v, size_t line) {
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
    std::string out;
    for (size_t i = 1; i + 1 < v.size(); ++i) {
      out += v[i];
      if (v[i] == '\'') {
        if (v[i + 1] != '\'') throw parse_error("lone quote in a quoted scalar", line);
        ++i;
      }
    }
    return out;
  }
  if (v == "true") return true;
  if (v == "false") return false;
  if (!v.empty() && (std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '-')) {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size()) return n;
  }
  if (v.empty() || std::string("[]{}&*!|>%@`\"'-?,").find(v[0]) != std::string::npos || v.find(": ") != std::string::npos ||
      v.find(" #") != std::string::npos || v == "no" || v == "yes" || v == "null" || v == "~")
    throw parse_error("ambiguous plain scalar: " + v, line);
  return v;
}

inline json parse_yaml(const std::string& text) {
  json root = json::object();
  struct Frame {
    size_t indent;
    json* map;
  };
  std::vector<Frame> stack{{0, &root}};
  json* pending = nullptr;  // the mapping opened by a "key:" line, waiting for its indented block
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find('\t') != std::string::npos) throw parse_error("tab in YAML", line_no);
    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    if (indent == line.size() || line[indent] == '#') continue;
    if (indent % 2) throw parse_error("indentation not a multiple of two", line_no);
    if (pending) {
      if (indent != stack.back().indent + 2) throw parse_error("a mapping key needs an indented block", line_no);
      stack.push_back({indent, pending});
      pending = nullptr;
    } else {
      while (stack.size() > 1 && indent < stack.back().indent) stack.pop_back();
      if (indent != stack.back().indent) throw parse_error("unexpected indentation", line_no);
    }
    const std::string body = line.substr(indent);
    const size_t colon = body.find(':');
    if (colon == std::string::npos || colon == 0) throw parse_error("not a key: value line", line_no);
    const std::string key = body.substr(0, colon);
    for (char c : key)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) throw parse_error("bad key " + key, line_no);
    json& map = *stack.back().map;
    if (map.contains(key)) throw parse_error("duplicate key " + key, line_no);
    std::string rest = body.substr(colon + 1);
    if (rest.empty()) {
      map[key] = json::object();
      pending = &map[key];
      continue;
    }
    if (rest[0] != ' ') throw parse_error("no space after ':'", line_no);
    rest = rest.substr(1);
    if (const size_t hash = rest.find(" #"); hash != std::string::npos && rest[0] != '\'') rest = rest.substr(0, hash);
    while (!rest.empty() && rest.back() == ' ') rest.pop_back();
    map[key] = yaml_scalar(rest, line_no);
  }
  if (pending) throw parse_error("mapping key without a block at the end", line_no);
  return root;
}

// ---- Megatron-LM: the bash array MEGATRON_ARGS=( ... ), one flag and at most one value per line.
struct Flags {
  std::map<std::string, std::string> values;  // flag -> value ("" for a switch)
  std::vector<std::string> words;             // every word in order: what bash puts in the array
  bool has(const std::string& f) const { return values.count(f) > 0; }
  const std::string& at(const std::string& f) const {
    const auto it = values.find(f);
    if (it == values.end()) throw std::runtime_error("no flag " + f);
    return it->second;
  }
};

inline Flags parse_megatron(const std::string& text) {
  const size_t open = text.find("MEGATRON_ARGS=(\n");
  if (open == std::string::npos) throw std::runtime_error("no MEGATRON_ARGS=( line");
  const size_t close = text.find("\n)\n", open);
  if (close == std::string::npos) throw std::runtime_error("MEGATRON_ARGS is not closed");
  Flags f;
  size_t start = text.find('\n', open) + 1, line_no = 0;
  while (start <= close) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    std::vector<std::string> words;
    for (size_t i = 0; i < line.size();) {
      if (line[i] == ' ') {
        ++i;
        continue;
      }
      if (line[i] == '#') break;  // a comment runs to the end of the line
      std::string w;
      if (line[i] == '\'') {
        const size_t q = line.find('\'', i + 1);
        if (q == std::string::npos) throw parse_error("unclosed quote", line_no);
        w = line.substr(i + 1, q - i - 1);
        i = q + 1;
      } else {
        while (i < line.size() && line[i] != ' ') {
          if (std::string("\"$`\\;&|<>()").find(line[i]) != std::string::npos)
            throw parse_error(std::string("unquoted shell character ") + line[i], line_no);
          w += line[i++];
        }
      }
      words.push_back(w);
    }
    if (words.empty()) continue;
    if (words[0].rfind("--", 0) != 0) throw parse_error("line does not start with a flag: " + words[0], line_no);
    if (words.size() > 2) throw parse_error("more than one value for " + words[0], line_no);
    if (!f.values.emplace(words[0], words.size() == 2 ? words[1] : "").second)
      throw parse_error("flag given twice: " + words[0], line_no);
    f.words.insert(f.words.end(), words.begin(), words.end());
  }
  return f;
}

// ---- The Slurm script of --format torchrun.
struct Sbatch {
  std::map<std::string, std::string> options;   // #SBATCH --key=value
  json plan;                                    // the plan in the heredoc
  std::map<std::string, std::string> torchrun;  // --key=value of the torchrun line
  std::vector<std::string> torchrun_words;      // the whole torchrun line, word by word
  std::string srun;                             // the srun line
};

inline Sbatch parse_sbatch(const std::string& text) {
  Sbatch b;
  if (text.rfind("#!/bin/bash\n", 0) != 0) throw std::runtime_error("no #!/bin/bash line");
  const std::string open = "<<'PARAPLAN_PLAN_JSON'\n", close = "\nPARAPLAN_PLAN_JSON\n";
  const size_t a = text.find(open), z = text.find(close);
  if (a == std::string::npos || z == std::string::npos || z < a) throw std::runtime_error("no plan heredoc");
  b.plan = json::parse(text.substr(a + open.size(), z - a - open.size()));
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("#SBATCH --", 0) == 0) {
      const size_t eq = line.find('=');
      if (eq == std::string::npos) throw std::runtime_error("#SBATCH option without '=': " + line);
      b.options[line.substr(10, eq - 10)] = line.substr(eq + 1);
    } else if (line.rfind("srun ", 0) == 0) {
      b.srun = line;
    } else if (line.rfind("#   torchrun ", 0) == 0) {
      std::string w;
      for (size_t i = 4; i <= line.size(); ++i) {
        if (i == line.size() || line[i] == ' ') {
          if (!w.empty()) {
            b.torchrun_words.push_back(w);
            if (const size_t eq = w.find('='); w.rfind("--", 0) == 0 && eq != std::string::npos)
              b.torchrun[w.substr(0, eq)] = w.substr(eq + 1);
          }
          w.clear();
        } else {
          w += line[i];
        }
      }
    }
  }
  return b;
}

}  // namespace cfgtest
