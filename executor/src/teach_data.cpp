#include "paraplan/exec/teach_data.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

namespace paraplan::exec {

namespace fs = std::filesystem;

std::string default_fortunes_dir() { return "/usr/share/games/fortunes"; }

namespace {

void split_fortunes(const fs::path& file, std::vector<std::string>& out) {
  std::ifstream in(file);
  if (!in) throw DataError(file.string() + ": cannot open");
  std::string line, entry;
  auto flush = [&] {
    if (entry.find_first_not_of(" \t\n") != std::string::npos) out.push_back(entry);
    entry.clear();
  };
  while (std::getline(in, line)) {
    if (line == "%") flush();
    else entry += line + "\n";
  }
  flush();
}

}  // namespace

std::vector<std::string> fortune_documents(const std::string& path) {
  if (!fs::exists(path))
    throw DataError(path + ": no such file or directory (the fortune cookies come with the Debian package "
                           "fortunes: apt-get install fortunes)");
  std::vector<std::string> out;
  if (fs::is_directory(path)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(path)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && !e.is_symlink() && ext != ".dat" && ext != ".u8") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) split_fortunes(f, out);
  } else {
    split_fortunes(path, out);
  }
  if (out.empty()) throw DataError(path + ": no fortune entries (entries are separated by lines holding \"%\")");
  return out;
}

std::string Addition::prompt() const { return std::to_string(a) + "+" + std::to_string(b) + "="; }
std::string Addition::answer() const {
  std::string s = std::to_string(a + b);
  return {s.rbegin(), s.rend()};
}
std::string Addition::text() const { return prompt() + answer(); }

bool held_out(int64_t a, int64_t b, int every) {
  // splitmix64's finaliser (Steele, Lea & Flood 2014) over the pair.
  uint64_t z = static_cast<uint64_t>(a) * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(b);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z % static_cast<uint64_t>(every) == 0;
}

std::vector<Addition> addition_problems(int n, int digits, uint64_t seed, bool evaluation) {
  if (digits < 1 || digits > 9) throw DataError("--digits = " + std::to_string(digits) + ": must be 1 to 9");
  int64_t lo = 1;
  for (int i = 1; i < digits; ++i) lo *= 10;
  const int64_t hi = lo * 10 - 1;
  if (digits == 1) lo = 0;
  std::mt19937_64 g(seed);
  std::vector<Addition> out;
  while (static_cast<int>(out.size()) < n) {
    const int64_t span = hi - lo + 1;
    const Addition p{lo + static_cast<int64_t>(g() % static_cast<uint64_t>(span)),
                     lo + static_cast<int64_t>(g() % static_cast<uint64_t>(span))};
    if (held_out(p.a, p.b) == evaluation) out.push_back(p);
  }
  return out;
}

std::vector<Problem> task_problems(const std::string& task, int n, int size, uint64_t seed, bool evaluation) {
  std::vector<Problem> out;
  if (task == "addition") {
    for (const Addition& a : addition_problems(n, size, seed, evaluation)) out.push_back({a.prompt(), a.answer()});
    return out;
  }
  if (task != "copy") throw DataError("--task = " + task + ": the tasks are \"addition\" and \"copy\"");
  if (size < 1 || size > 32) throw DataError("--task-size = " + std::to_string(size) + ": copy strings have 1 to 32 letters");
  std::mt19937_64 g(seed);
  while (static_cast<int>(out.size()) < n) {
    std::string w;
    int64_t h = 0;
    for (int i = 0; i < size; ++i) {
      w.push_back(static_cast<char>('a' + g() % 26));
      h = h * 31 + w.back();
    }
    if (held_out(h, size) == evaluation) out.push_back({w + "=", w});
  }
  return out;
}

std::string answer_of(const std::string& c) { return c.substr(0, c.find('\n')); }

}  // namespace paraplan::exec
