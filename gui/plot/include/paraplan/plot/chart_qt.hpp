#pragma once
// A teaching chart (teach/chart.hpp) as a Qt Charts QChart: lines with value axes, or grouped bars
// with a category axis; titles and axis labels with their units. Used live by the GUI's Learn tab and
// off-screen by plot.hpp.
#include <QChart>

#include "paraplan/teach/chart.hpp"

namespace paraplan::plot {

QChart* make_chart(const teach::Chart& c);  // the caller owns it (or hands it to a QChartView)

// A round tick spacing (1, 2 or 5 x 10^k) that cuts `span` into about `ticks` intervals.
double nice_step(double span, int ticks);

}  // namespace paraplan::plot
