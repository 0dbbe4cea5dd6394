#pragma once
// A chart described without Qt: the teaching library says what to draw (series, axes, units), the
// Qt Charts code of the GUI draws it — live in the Learn tab, or off-screen into a PNG/SVG file for
// `paraplan demo --plot` (gui/plot). No hand-drawn graphics anywhere.
#include <string>
#include <vector>

namespace paraplan::teach {

struct Series {
  std::string name;
  std::vector<double> x, y;
  bool points = false;  // lines charts: markers only, not joined (a scatter of predicted against measured)
};

struct Chart {
  enum class Kind { lines, bars } kind = Kind::lines;
  std::string title;
  std::string x_label, y_label;  // with units
  std::vector<Series> series;    // bars: one value per category in y, x unused
  std::vector<std::string> categories;  // bars: the category labels
  bool log_x = false, log_y = false;  // lines charts: logarithmic axes (when every value is > 0)
};

}  // namespace paraplan::teach
