// Calibration profiles (calibration.hpp): a profile sets time-model parameters by value or as a factor
// of the hardware's own value, says where each came from, and is refused with field, value and rule
// when malformed. Expected values are the hardware presets' (data/hardware) times the stated numbers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "paraplan/calibration.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"

using namespace paraplan::planner;
using nlohmann::json;

TEST(CalibrationProfile, ValuesAndFactorsOverrideTheHardwareAndSaySo) {
  const Calibration c = calibration_from_json(json::parse(R"({"name": "mine", "parameters": {
      "gemm": {"factor": 0.5, "source": "fitted"},
      "kernel_overhead_s": {"value": 4e-6, "source": "measured"}}})"),
                                              "mine.json", "cluster.calibration");
  const GpuSpec a100 = hardware_preset("a100-80gb");
  const Efficiency e = effective_efficiency(a100, c);
  EXPECT_DOUBLE_EQ(e.gemm, 0.8587 * 0.5);          // the A100's MAMF fraction, halved
  EXPECT_DOUBLE_EQ(e.kernel_overhead_s, 4e-6);       // replaced
  EXPECT_DOUBLE_EQ(e.memory, a100.efficiency.memory);  // untouched
  const auto src = parameter_sources(c);
  ASSERT_EQ(src.size(), efficiency_fields().size());
  auto source_of = [&](const std::string& name) {
    for (size_t i = 0; i < src.size(); ++i)
      if (efficiency_fields()[i].name == name) return src[i];
    ADD_FAILURE() << name << " is not a field";
    return ParamSource::datasheet;
  };
  EXPECT_EQ(source_of("gemm"), ParamSource::fitted);
  EXPECT_EQ(source_of("memory"), ParamSource::datasheet);
  EXPECT_EQ(source_of("kernel_overhead_s"), ParamSource::measured);
  // The built-in "published" profile: GEMM x 0.9158 (data/calibration/published.json, to its 4 digits),
  // the rest the hardware's.
  EXPECT_NEAR(effective_efficiency(a100, builtin_calibration("published")).gemm, 0.8587 * 0.9158, 0.8587 * 5e-5);
  EXPECT_DOUBLE_EQ(effective_efficiency(a100, builtin_calibration("published")).memory, a100.efficiency.memory);
}

TEST(CalibrationProfile, APlanNamesAProfileFileAndWritesItBack) {
  const auto dir = std::filesystem::temp_directory_path() / "paraplan-calibration-profile";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "fit.json") << R"({"name": "fit", "parameters": {"memory": {"value": 0.5}}})";
  std::ofstream(dir / "plan.json") << R"({"model": "tiny-llama", "cluster": {"gpu": "a100-80gb", "calibration": "fit.json"}})";
  const Plan p = load_plan((dir / "plan.json").string());
  EXPECT_EQ(p.cluster.calibration.name, "fit");
  EXPECT_DOUBLE_EQ(effective_efficiency(p.cluster.gpu, p.cluster.calibration).memory, 0.5);
  const Plan again = plan_from_json(plan_to_json(p));  // the absolute path is written
  EXPECT_TRUE(again.cluster.calibration == p.cluster.calibration);
}

TEST(CalibrationProfile, MalformedProfilesNameTheParameterAndTheRule) {
  auto message = [](const char* text) {
    try {
      calibration_from_json(json::parse(text), "bad.json", "cluster.calibration");
    } catch (const PlanError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message(R"({"name": "x", "parameters": {"gem": {"value": 0.5}}})")
                .find("parameters.gem: is not a parameter of the time model (did you mean \"gemm\"?)"),
            std::string::npos);
  EXPECT_NE(message(R"({"name": "x", "parameters": {"gemm": {"value": 0.5, "factor": 2}}})").find("not both"),
            std::string::npos);
  EXPECT_NE(message(R"({"name": "x", "parameters": {"gemm": {"value": -1}}})").find("must be a finite number >= 0"),
            std::string::npos);
  EXPECT_NE(message(R"({"parameters": {}})").find("is not a calibration profile"), std::string::npos);
  try {
    load_calibration("nowhere.json");
    FAIL();
  } catch (const PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere.json\": file cannot be read"), std::string::npos) << e.what();
  }
}
