#include "paraplan/teach/table.hpp"

#include <algorithm>

namespace paraplan::teach {

namespace {

// Display width of UTF-8 text: code points, not bytes (headers carry "×", "—", "≈").
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

}  // namespace

std::string render(const TextTable& t) {
  std::vector<size_t> w(t.headers.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(row[i]));
  };
  widen(t.headers);
  for (const auto& r : t.rows) widen(r);
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t i = 0; i < w.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      const std::string pad(w[i] - width(cell), ' ');
      out += (i ? "  " : "") + (i == 0 ? cell + pad : pad + cell);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(t.headers);
  for (const auto& r : t.rows) out += line(r);
  for (const auto& n : t.notes) out += n + "\n";
  return out;
}

}  // namespace paraplan::teach
