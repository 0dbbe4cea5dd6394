#pragma once
// The Runs tab's calibration: each stored run's step time predicted with no calibration and with a
// chosen profile beside what was measured, the profiles to choose from, and "Calibrate from these runs"
// (the same fit as `paraplan calibrate`, calibrate.hpp).
#include <QString>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "paraplan/hardware.hpp"
#include "paraplan/store.hpp"

namespace paraplan::gui {

struct RunPrediction {
  double measured_s = 0;     // as calibrate takes it: the median step of the slowest rank (measurements.hpp)
  double uncalibrated_s = 0;  // the hardware's datasheet values (calibration "none")
  double calibrated_s = 0;    // with the chosen profile
  std::string device;
};
// Every usable run and imported row of the store by run id; runs a fit cannot use are absent.
std::map<int64_t, RunPrediction> predict_runs(const planner::Store& store, const planner::Calibration& profile);

struct ProfileChoice {
  QString label;  // "none (datasheet values)", "published (built in)", "cpu-here (store, 3)"
  planner::Calibration profile;
};
// none, the built-in profiles, then the store's (oldest first); a stored profile that does not parse is left out.
std::vector<ProfileChoice> profile_choices(const planner::Store* store);

struct StoreCalibration {
  ProfileChoice choice;  // the new profile as the selector lists it
  QString file;          // NAME.json beside the store
  QString summary;       // rows, parameters fitted, errors before / after / held out
};
// Fits the runs, imported rows and probes of `device` in the store at `store_path` (calibrate.hpp), adds
// the profile to the store and writes it to NAME.json beside the store. Throws PlanError with the reason
// (no usable rows, rows that constrain no parameter, ...).
StoreCalibration calibrate_store(const QString& store_path, const std::string& device, const std::string& name);

}  // namespace paraplan::gui
