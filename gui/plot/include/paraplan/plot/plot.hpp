#pragma once
// Off-screen rendering of the teaching library's charts to PNG or SVG, drawn by Qt Charts — the same
// code the GUI's Learn tab draws them with (chart_qt.hpp). This header has no Qt in it, so the CLI can
// include it; the CLI links this library only when Qt6 was found (PARAPLAN_HAVE_PLOT).
#include <string>
#include <vector>

#include "paraplan/teach/chart.hpp"

namespace paraplan::plot {

// The charts side by side (two per row), `width` x `height` pixels per chart; PNG when the path ends in
// .png, SVG when it ends in .svg. Creates an off-screen QApplication when none exists. Throws
// std::runtime_error naming the path when the extension is neither or the file cannot be written.
void write_charts(const std::vector<teach::Chart>& charts, const std::string& path, int width = 640, int height = 420);

}  // namespace paraplan::plot
