// paraplan-gui: explore plans, see memory and time, search, run and compare.
#include <QApplication>
#include <QCommandLineParser>

#include "main_window.hpp"
#include "runs_tab.hpp"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("paraplan-gui");
  QCommandLineParser cli;
  cli.setApplicationDescription("Explore how to split LLM training over GPUs: memory per stage, step time, search, runs.");
  cli.addHelpOption();
  cli.addPositionalArgument("plan", "a plan JSON file to open (docs/plan-format.md)", "[plan.json]");
  QCommandLineOption store({"db", "store"}, "run store (SQLite) to show in the Runs tab", "file");
  cli.addOption(store);
  cli.process(app);
  paraplan::gui::MainWindow w;
  if (!cli.positionalArguments().isEmpty()) w.openPlan(cli.positionalArguments().front());
  if (cli.isSet(store)) w.runsTab()->openStore(cli.value(store));
  w.show();
  return QApplication::exec();
}
