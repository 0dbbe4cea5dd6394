#include "paraplan/plot/plot.hpp"

#include <QApplication>
#include <QChartView>
#include <QGridLayout>
#include <QPainter>
#include <QSvgGenerator>
#include <QWidget>

#include <cstdio>
#include <memory>
#include <stdexcept>

#include "paraplan/plot/chart_qt.hpp"

namespace paraplan::plot {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A QApplication for a process that has none (the CLI), on the offscreen platform unless one is set.
// The offscreen platform's warnings ("XDG_RUNTIME_DIR not set", "does not support propagateSizeHints")
// say nothing about the plot: in the CLI only critical messages get through.
void quiet_handler(QtMsgType type, const QMessageLogContext&, const QString& msg) {
  if (type == QtCriticalMsg || type == QtFatalMsg) fprintf(stderr, "%s\n", qPrintable(msg));
}

std::unique_ptr<QApplication> ensure_app() {
  if (QApplication::instance()) return nullptr;
  qInstallMessageHandler(quiet_handler);
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  static int argc = 1;
  static char name[] = "paraplan";
  static char* argv[] = {name, nullptr};
  return std::make_unique<QApplication>(argc, argv);
}

}  // namespace

void write_charts(const std::vector<teach::Chart>& charts, const std::string& path, int width, int height) {
  const bool png = ends_with(path, ".png"), svg = ends_with(path, ".svg");
  if (!png && !svg) throw std::runtime_error("--plot " + path + ": the file name must end in .png or .svg");
  const auto app = ensure_app();
  QWidget page;
  page.setAttribute(Qt::WA_DontShowOnScreen);
  auto* grid = new QGridLayout(&page);
  const int cols = charts.size() > 1 ? 2 : 1;
  for (size_t i = 0; i < charts.size(); ++i) {
    auto* view = new QChartView(make_chart(charts[i]));
    view->setRenderHint(QPainter::Antialiasing);
    view->setMinimumSize(width, height);
    grid->addWidget(view, static_cast<int>(i) / cols, static_cast<int>(i) % cols);
  }
  const int rows = static_cast<int>((charts.size() + static_cast<size_t>(cols) - 1) / static_cast<size_t>(cols));
  page.resize(cols * width + 30, rows * height + 30);
  page.show();
  QApplication::processEvents();
  bool ok = false;
  if (png) {
    ok = page.grab().save(QString::fromStdString(path), "PNG");
  } else {
    QSvgGenerator gen;
    gen.setFileName(QString::fromStdString(path));
    gen.setSize(page.size());
    gen.setViewBox(QRect(QPoint(0, 0), page.size()));
    gen.setTitle("paraplan demo");
    QPainter painter;
    ok = painter.begin(&gen);
    if (ok) {
      page.render(&painter);
      ok = painter.end();
    }
  }
  page.hide();
  if (!ok) throw std::runtime_error(path + ": cannot write the plot");
}

}  // namespace paraplan::plot
