// Issue 14: the shipped calibration profiles are what one `paraplan calibrate` fits from the published
// tables (scripts/calibrate-profiles), and the collective model is checked against nccl-tests figures.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "paraplan/calibrate.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/comm.hpp"
#include "paraplan/csv_row.hpp"
#include "paraplan/error.hpp"
#include "paraplan/import.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/presets.hpp"
#include "paraplan/validation.hpp"

using namespace paraplan::planner;
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& relative) {
  std::ifstream in(std::string(PARAPLAN_SOURCE_DIR) + "/" + relative);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh store holding what scripts/calibrate-profiles imports: `tables` under data/validation.
// Or one collective table given as text.
struct ImportedStore {
  fs::path path;
  explicit ImportedStore(const std::string& name, std::initializer_list<const char*> tables) {
    Store store(fresh(name));
    for (const char* t : tables) {
      const std::string text = read_text(std::string("data/validation/") + t);
      if (is_collective_table(text)) {
        const ImportedProbe p = imported_probe_from_csv(text, t);
        store.add_probe(p.probe, p.results);
      } else {
        store.import_runs(imported_runs_from_csv(text, t));
      }
    }
  }
  ImportedStore(const std::string& name, const std::string& collective_table) {
    const ImportedProbe p = imported_probe_from_csv(collective_table, name + ".csv");
    Store(fresh(name)).add_probe(p.probe, p.results);
  }
  std::string fresh(const std::string& name) {
    path = fs::temp_directory_path() / ("paraplan-refit-" + std::to_string(getpid()) + "-" + name + ".sqlite");
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(path.string() + ext);
    return path.string();
  }
  ~ImportedStore() {
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(path.string() + ext);
  }
  MeasurementSet rows(std::set<MeasurementKind> use) const { return read_measurements(Store(path.string()), use); }
};

double param(const Calibration& c, const std::string& name) {
  for (const CalibratedParam& p : c.params)
    if (p.name == name) return p.value;
  return NAN;
}

std::string probe_import_error(const std::string& text) {
  try {
    imported_probe_from_csv(text, "t.csv");
  } catch (const PlanError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// vtrain-a100 (9 parameters) and published (the GEMM efficiency, stored as a factor): refitted from the
// same tables by the same fit as `paraplan calibrate` (the profile's held-out figures come from its
// k-fold, which this test does not repeat), each parameter within 1 % of the shipped file's.
TEST(Calibrate, ShippedProfilesAreWhatTheCommandFits) {
  const ImportedStore vtrain("vtrain", {"vtrain-single-node.csv", "nccl-tests-a100-allreduce.csv"});
  const MeasurementSet set = vtrain.rows({MeasurementKind::imported, MeasurementKind::probe});
  ASSERT_EQ(set.rows.size(), 1440u + 33u);
  const GpuSpec a100 = hardware_preset("a100-80gb");
  const FitResult fit = fit_parameters(set.rows, a100);
  const Calibration shipped = builtin_calibration("vtrain-a100");
  ASSERT_EQ(fit.calibration.params.size(), shipped.params.size());
  for (const CalibratedParam& p : shipped.params) {
    const double refit = param(fit.calibration, p.name);
    EXPECT_NEAR(std::log(refit / p.value), 0, 0.01) << p.name << ": shipped " << p.value << ", refitted " << refit;
  }

  const ImportedStore published("published", {"published-step-time.csv"});
  FitOptions gemm_only;
  gemm_only.fields = {"gemm"};
  const FitResult gemm = fit_parameters(published.rows({MeasurementKind::imported}).rows, a100, gemm_only);
  const Calibration factor = builtin_calibration("published");
  ASSERT_EQ(factor.params.size(), 1u);
  EXPECT_TRUE(factor.params[0].is_factor);
  EXPECT_NEAR(param(gemm.calibration, "gemm") / (factor.params[0].value * a100.efficiency.gemm), 1, 0.01);
}

// The collective model against the nccl-tests all-reduce times of vTrain's DGX A100 (33 rows: 1 MiB to
// 1 GiB over 2, 4 and 8 GPUs; data/validation/nccl-tests-a100-allreduce.csv). With the vtrain-a100
// profile's latency, per-step latency and bus efficiency: mean |error| within 8 % and at least three
// quarters of the rows within issue 14's 10 % (25 of 33 when written; the others are messages of 1 to
// 4 MiB, where NCCL switches protocols, and large ones over 2 and 8 GPUs, whose bus bandwidths differ by 16 %
// where the model has one: docs/validation.md lists them).
TEST(Comm, NcclTestsAllReduceTimesOfAnA100Node) {
  const ImportedStore nccl("nccl", {"nccl-tests-a100-allreduce.csv"});
  const MeasurementSet set = nccl.rows({MeasurementKind::probe});
  ASSERT_EQ(set.rows.size(), 33u);
  const Calibration profile = builtin_calibration("vtrain-a100");
  double sum = 0;
  int within = 0;
  for (const Measurement& m : set.rows) {
    const double e = std::fabs(predict(m, profile) / m.measured_s - 1);
    sum += e;
    within += e <= 0.10;
  }
  EXPECT_LE(sum / 33, 0.08);
  EXPECT_GE(within, 25) << "of 33 within 10 %";
}

// Issue 14: a group that spans nodes crosses them through all of a node's NICs at once, so its bus bandwidth
// is bounded by the node's aggregate NIC bandwidth (comm.cpp group_link). Checked against a published
// all-reduce over 4 nodes of 8 B200 (32 ranks; data/validation/allreduce-b200-4node.csv, from
// stas00/ml-engineering), imported as a probe and predicted as `paraplan calibrate --report` does: with the
// b200 preset's datasheet values (8 x 50 GB/s of NIC per node at 0.9, 20 us per collective, no
// calibration) the model's time for 1 to 16 GiB is within 10 % of the measured one (+2.0 to +4.7 % when
// written: 359 GB/s of bus bandwidth against 366-377 measured). Below 1 GiB it is not: the measured bus
// bandwidth ramps up slowly (72 GB/s at 16 MiB, 198 at 64 MiB, 310 at 512 MiB) and the model's time is
// 13 % (512 MiB) to 84 % (1-4 MiB) too short (docs/validation.md).
TEST(Comm, AllReduceAcrossFourB200NodesIsBoundByTheirNics) {
  const ImportedStore b200("b200", {"allreduce-b200-4node.csv"});
  const MeasurementSet set = b200.rows({MeasurementKind::probe});
  ASSERT_EQ(set.rows.size(), 20u);
  int large = 0;
  for (const Measurement& m : set.rows) {
    ASSERT_EQ(m.device, "b200");
    ASSERT_EQ(m.probe.ranks, 32);
    ASSERT_EQ(m.probe.ranks_per_node, 8);
    if (m.probe.bytes < 1073741824) continue;  // the ramp the model does not have (above)
    ++large;
    EXPECT_NEAR(predict(m, Calibration{}) / m.measured_s, 1, 0.10) << m.label;
  }
  EXPECT_EQ(large, 5);
}

// The same rows over one node's NVLink instead (ranks_per_node dropped): an imported row is predicted over
// the nodes' NICs only because it says it spans nodes. 1 GiB over 32 ranks: NVLink5 900 GB/s at the
// preset's 0.8222 (740 GB/s) against 8 NICs x 50 GB/s at 0.9 (360 GB/s), both 20 us per collective
// Two nodes, as NCCL's maintainers give them for a ring all-reduce (NCCL_ALGO=RING: on two nodes the default
// tree can exceed the NICs, nccl-tests #196): 192 GB/s of bus bandwidth between two DGX A100 with 8 x 200
// Gb/s IB (NVIDIA/nccl #812, AddyLaddy, 2023-03-31) and 46-48 GB/s per 400 Gb/s NDR NIC between two H100
// nodes, 368-384 GB/s for 8 (NVIDIA/nccl-tests #290, AddyLaddy, 2025-03-03). Peak figures with no message
// size: compared at 8 GiB, where the 20 us per collective is 0.04 % of the time. The presets' datasheet
// values, no calibration: 8 NICs x 25 GB/s x 0.9 = 180 GB/s (-6.3 %) and 8 x 50 GB/s x 0.9 = 360 GB/s
// (-2.2 % to -6.3 %); the tree, same bytes over the NICs, is no faster for so large a message.
TEST(Comm, TwoNodeRingAllReduceReachesTheBusBandwidthNcclsMaintainersGive) {
  struct Figure { const char* device; double busbw_gb_per_s, model_busbw; };
  const Figure figures[] = {{"a100-80gb", 192, 180e9}, {"h100-sxm-80gb", 368, 360e9}, {"h100-sxm-80gb", 384, 360e9}};
  for (const Figure& f : figures) {
    const std::string csv = std::string("device,collective,ranks,ranks_per_node,bytes,busbw_gb_per_s\n") + f.device +
                            ",all_reduce,16,8,8589934592," + std::to_string(f.busbw_gb_per_s) + "\n";
    const MeasurementSet set = ImportedStore("two", csv).rows({MeasurementKind::probe});
    ASSERT_EQ(set.rows.size(), 1u);
    const Measurement& m = set.rows[0];
    ASSERT_EQ(m.probe.ranks_per_node, 8);
    const double t = predict(m, Calibration{});
    EXPECT_NEAR(8589934592.0 * 2 * 15 / 16 / t, f.model_busbw, 0.001 * f.model_busbw) << f.device;
    EXPECT_NEAR(t / m.measured_s, 1, 0.10) << f.device << " " << f.busbw_gb_per_s << " GB/s";
  }
}

// across nodes and 10 us inside one; transfer 1 GiB x 2 x 31/32 / bandwidth.
TEST(Comm, AnImportedCollectiveSpansNodesOnlyWhenItsTableSaysSo) {
  const std::string head = "device,collective,ranks,ranks_per_node,bytes,busbw_gb_per_s\n";
  const MeasurementSet nodes =
      ImportedStore("nodes", head + "b200,all_reduce,32,8,1073741824,100\n").rows({MeasurementKind::probe});
  const MeasurementSet one =
      ImportedStore("one", head + "b200,all_reduce,32,32,1073741824,100\n").rows({MeasurementKind::probe});
  ASSERT_EQ(nodes.rows.size(), 1u);
  ASSERT_EQ(one.rows.size(), 1u);
  const double transfer = 1073741824.0 * 2 * 31 / 32;
  EXPECT_NEAR(predict(nodes.rows[0], Calibration{}), 20e-6 + transfer / (8 * 50e9 * 0.9), 1e-9);
  EXPECT_EQ(one.rows[0].probe.ranks_per_node, 0);  // as many as the group: one node
  EXPECT_NEAR(predict(one.rows[0], Calibration{}), 10e-6 + transfer / (900e9 * 0.8222), 1e-9);
}

// A multi-node table pins the inter-node parameters: rows made by hand for 4 nodes x 8 ranks with 50 us per
// collective and 0.75 of the NICs' 400 GB/s (t = 50 us + bytes x 2 x 31/32 / 300 GB/s, 1 MiB to 1 GiB),
// fitted as `paraplan calibrate` fits a store, come back within 1 %.
TEST(Calibrate, AMultiNodeCollectiveTablePinsTheInterNodeParameters) {
  std::string text = "# made by hand\ndevice,collective,ranks,ranks_per_node,bytes,time_us\n";
  for (double b = 1 << 20; b <= (1 << 30); b *= 4)
    text += "b200,all_reduce,32,8," + std::to_string(static_cast<long long>(b)) + "," +
            std::to_string(50 + b * 2 * 31 / 32 / 300e9 * 1e6) + "\n";
  const std::vector<Measurement> rows = ImportedStore("fit", text).rows({MeasurementKind::probe}).rows;
  ASSERT_EQ(rows.size(), 6u);
  FitOptions o;
  o.fields = {"inter_node", "inter_node_latency_s"};
  const FitResult fit = fit_parameters(rows, hardware_preset("b200"), o);
  EXPECT_NEAR(param(fit.calibration, "inter_node"), 0.75, 0.0075);
  EXPECT_NEAR(param(fit.calibration, "inter_node_latency_s"), 50e-6, 0.5e-6);
}

// A table of collective timings is one probe of its device: bytes as given, microseconds to seconds.
TEST(Import, ACollectiveTableBecomesOneProbe) {
  const std::string text =
      "# nccl-tests, by hand\n"
      "device,collective,ranks,bytes,time_us\n"
      "a100-80gb,all_reduce,2,1048576,44.21\n"
      "a100-80gb,all_gather,8,4096,12.5\n";
  ASSERT_TRUE(is_collective_table(text));
  EXPECT_FALSE(is_collective_table(read_text("data/validation/published-step-time.csv")));
  const ImportedProbe p = imported_probe_from_csv(text, "dir/t.csv");
  EXPECT_EQ(p.probe.device, "a100-80gb");
  EXPECT_EQ(p.probe.host, "published: t.csv");
  EXPECT_NE(p.probe.software.find("nccl-tests, by hand"), std::string::npos) << p.probe.software;
  ASSERT_EQ(p.results.size(), 2u);
  EXPECT_EQ(p.results[0].kind, "all_reduce");
  EXPECT_EQ(p.results[0].ranks, 2);
  EXPECT_DOUBLE_EQ(p.results[0].bytes, 1048576);
  EXPECT_DOUBLE_EQ(p.results[0].seconds, 44.21e-6);
  EXPECT_EQ(p.results[1].kind, "all_gather");
  EXPECT_DOUBLE_EQ(p.results[1].seconds, 12.5e-6);
}

// A table that gives nccl-tests' bus bandwidth instead of times, with the ranks in each node: 1 GiB over
// 32 ranks at 365.99 GB/s is 2^30 x 2 x 31/32 / 365.99e9 = 5.684239 ms; an all-gather's bus factor is
// (n-1)/n: 1 MiB over 4 ranks at 10 GB/s, 2^20 x 3/4 / 1e10 = 78.64 us. ranks_per_node equal to ranks
// is one node.
TEST(Import, AMultiNodeTableGivesRanksPerNodeAndBusBandwidth) {
  const std::string text =
      "device,collective,ranks,ranks_per_node,bytes,busbw_gb_per_s\n"
      "b200,all_reduce,32,8,1073741824,365.99\n"
      "b200,all_gather,4,4,1048576,10\n";
  ASSERT_TRUE(is_collective_table(text));
  const ImportedProbe p = imported_probe_from_csv(text, "t.csv");
  ASSERT_EQ(p.results.size(), 2u);
  EXPECT_EQ(p.results[0].ranks_per_node, 8);
  EXPECT_NEAR(p.results[0].seconds, 5.684239e-3, 1e-9);
  EXPECT_EQ(p.results[1].ranks_per_node, 0);
  EXPECT_NEAR(p.results[1].seconds, 78.6432e-6, 1e-11);
  EXPECT_FALSE(is_collective_table("device,collective,ranks,bytes\n"));  // no measure
  EXPECT_FALSE(is_collective_table("device,collective,ranks,bytes,time_us,gpus\n"));  // a column of another table
}

TEST(Import, AMultiNodeTablesBadCellsAreNamed) {
  const std::string head = "device,collective,ranks,ranks_per_node,bytes,time_us\n";
  const std::string e = probe_import_error(head + "b200,all_reduce,32,6,1024,10\n" + "b200,all_reduce,32,0,1024,10\n");
  EXPECT_NE(e.find("t.csv:2: ranks_per_node"), std::string::npos) << e;
  EXPECT_NE(e.find("must divide ranks (32)"), std::string::npos) << e;
  EXPECT_NE(e.find("t.csv:3: ranks_per_node"), std::string::npos) << e;
  EXPECT_NE(e.find("must be between 1 and 65536"), std::string::npos) << e;
  const std::string both = probe_import_error("device,collective,ranks,bytes,time_us,busbw_gb_per_s\nb200,all_reduce,2,8,1,1\n");
  EXPECT_NE(both.find("give time_us or busbw_gb_per_s, not both"), std::string::npos) << both;
  const std::string none = probe_import_error("device,collective,ranks,bytes\nb200,all_reduce,2,8\n");
  EXPECT_NE(none.find("need time_us"), std::string::npos) << none;
  const std::string bw = probe_import_error("device,collective,ranks,bytes,busbw_gb_per_s\nb200,all_reduce,2,8,-1\n");
  EXPECT_NE(bw.find("t.csv:2: busbw_gb_per_s"), std::string::npos) << bw;
}

TEST(Import, ACollectiveTablesBadCellsAreNamedByLineAndColumn) {
  const std::string head = "device,collective,ranks,bytes,time_us\n";
  const std::string e = probe_import_error(head + "a100-80gb,all_reduce,1,1.5,0\n" + "h100-sxm-80gb,broadcast,2,8,1\n");
  EXPECT_NE(e.find("t.csv:2: ranks"), std::string::npos) << e;
  EXPECT_NE(e.find("must be between 2 and 65536"), std::string::npos) << e;
  EXPECT_NE(e.find("t.csv:2: bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("t.csv:2: time_us"), std::string::npos) << e;
  EXPECT_NE(e.find("t.csv:3: device"), std::string::npos) << e;
  EXPECT_NE(e.find("t.csv:3: collective"), std::string::npos) << e;
  EXPECT_NE(probe_import_error(head + "tpu-v9,all_reduce,2,8,1\n").find("t.csv:2: device"), std::string::npos);
  EXPECT_NE(probe_import_error(head).find("no rows to import"), std::string::npos);
  EXPECT_NE(probe_import_error(head + "a100-80gb,all_reduce,2,8\n").find("must have one cell per header column (5)"), std::string::npos);
}

// Korthikanti et al. 2022 Table 4 (in no fit): one layer of the 22B model, the paper's times read as
// published (baseline 7.7 + 11.9 ms), each mode's total within issue 14's 8 %, and each mode's cost
// against the baseline (the paper's overhead column: SP -3 %, full recompute +39 %, selective +7 %,
// selective + SP +4 %) within 3 points.
TEST(Validation, KorthikantiTable4PerLayerTimes) {
  const std::vector<LayerTimeRow> rows = korthikanti_table4();
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].mode, "baseline");
  EXPECT_DOUBLE_EQ(rows[0].published_fwd_s, 7.7e-3);
  EXPECT_DOUBLE_EQ(rows[0].published_bwd_s, 11.9e-3);
  const double base_paper = 19.6e-3, base_model = rows[0].predicted_fwd_s + rows[0].predicted_bwd_s;
  for (const LayerTimeRow& r : rows) {
    const double paper = r.published_fwd_s + r.published_bwd_s, model = r.predicted_fwd_s + r.predicted_bwd_s;
    EXPECT_NEAR(model / paper, 1, 0.08) << r.mode;
    EXPECT_NEAR(model / base_model - paper / base_paper, 0, 0.03) << r.mode;
  }
  EXPECT_GT(rows[2].predicted_bwd_s, rows[3].predicted_bwd_s) << "full recompute costs more than selective";
}
