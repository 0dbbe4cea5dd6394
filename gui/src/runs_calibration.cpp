#include "runs_calibration.hpp"

#include <QDir>
#include <QFileInfo>
#include <QSaveFile>
#include <nlohmann/json.hpp>

#include "paraplan/calibrate.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/error.hpp"
#include "paraplan/format.hpp"

namespace paraplan::gui {

using namespace planner;

namespace {

// A profile of the store as the selector lists it, and as it names itself in predictions.
ProfileChoice stored_choice(const std::string& name, int64_t id, const std::string& device, const nlohmann::json& doc) {
  const std::string origin = "store calibration " + std::to_string(id);
  return {QString("%1 (store, %2, %3)").arg(QString::fromStdString(name)).arg(id).arg(QString::fromStdString(device)),
          calibration_from_json(doc, origin, origin)};
}

}  // namespace

std::map<int64_t, RunPrediction> predict_runs(const Store& store, const Calibration& profile) {
  std::map<int64_t, RunPrediction> out;
  const MeasurementSet set = read_measurements(store, {MeasurementKind::run, MeasurementKind::imported});
  for (const Measurement& m : set.rows)
    if (m.what == "step") out[m.run_id] = {m.measured_s, predict(m, Calibration{}), predict(m, profile), m.device};
  return out;
}

std::vector<ProfileChoice> profile_choices(const Store* store) {
  std::vector<ProfileChoice> out{{"none (datasheet values)", Calibration{}}};
  for (const std::string& name : builtin_calibration_names())
    out.push_back({QString::fromStdString(name) + " (built in)", builtin_calibration(name)});
  if (!store) return out;
  for (const CalibrationRecord& c : store->calibrations()) {
    try {
      out.push_back(stored_choice(c.name, c.id, c.device, nlohmann::json::parse(c.profile_json)));
    } catch (const std::exception&) {
      // a profile this paraplan cannot read (written by a newer one): not offered
    }
  }
  return out;
}

StoreCalibration calibrate_store(const QString& store_path, const std::string& device, const std::string& name) {
  Store store(store_path.toStdString());
  const MeasurementSet set =
      read_measurements(store, {MeasurementKind::run, MeasurementKind::imported, MeasurementKind::probe});
  CalibrateOptions co;
  co.name = name;
  co.device = device;
  const CalibrationOutcome out = calibrate(set, co, QFileInfo(store_path).absoluteFilePath().toStdString());
  const QString file = QFileInfo(store_path).absoluteDir().filePath(QString::fromStdString(name) + ".json");
  QSaveFile f(file);  // written beside, then renamed over: never half a file
  if (!f.open(QIODevice::WriteOnly) || f.write(QByteArray::fromStdString(out.document.dump(2) + "\n")) < 0 || !f.commit())
    throw PlanError("profile file", file.toStdString(), "cannot be written: " + f.errorString().toStdString());
  const int64_t id = store.add_calibration(name, out.device, out.document.dump());
  std::vector<double> before, after;
  for (const CalibratedRow& r : out.rows) {
    if (r.m->kind == MeasurementKind::probe || r.m->what != "step") continue;
    before.push_back(r.before_s / r.m->measured_s - 1);
    after.push_back(r.after_s / r.m->measured_s - 1);
  }
  int fitted = 0;
  for (const FittedParam& p : out.fit.params) fitted += p.fitted;
  const ErrorSummary b = summarize_errors(before), a = summarize_errors(after);
  const QString summary =
      QString("Calibrated %1 from %2 rows (%3 step times): %4 parameters fitted or measured, the rest from the "
              "datasheet. Step time |error| mean / max: %5 / %6 before, %7 / %8 after (in the fit). Saved as %9 "
              "and in the store (calibration %10).")
          .arg(QString::fromStdString(out.device)).arg(out.rows.size()).arg(before.size()).arg(fitted)
          .arg(QString::fromStdString(text::percent(b.mean_abs))).arg(QString::fromStdString(text::percent(b.max_abs)))
          .arg(QString::fromStdString(text::percent(a.mean_abs))).arg(QString::fromStdString(text::percent(a.max_abs)))
          .arg(file).arg(id);
  return {stored_choice(name, id, out.device, out.document), file, summary};
}

}  // namespace paraplan::gui
