// Levenberg-Marquardt on log residuals over log parameters (Levenberg 1944, Marquardt 1963; the damped
// normal equations (J^T W J + lambda diag(J^T W J)) delta = -J^T W r, Nocedal & Wright 2006 §10.3), with
// a central-difference Jacobian. Logarithms make every parameter positive and every error relative.
#include "paraplan/fit.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "nelder_mead.hpp"
#include "paraplan/prepared_run.hpp"

namespace paraplan::planner {

namespace {

constexpr double kLogMin = -27.6, kLogMax = 13.8;  // parameters within [1e-12, 1e6]
constexpr double kStep = 1e-5;                     // Jacobian step in log space

double start_value(const EfficiencyField& f, double datasheet) {
  const std::string unit = f.unit;
  if (unit == "cores") return std::max(datasheet, 2.0);  // off the kink at one core (op_time.cpp)
  if (datasheet > 0) return datasheet;
  if (unit == "s") return 1e-6;
  return 0.5;
}

// The range a fit may move a parameter in, as logarithms: positive, and at least one core.
// The fit moves each parameter within its field's range (efficiency_fields(): a GEMM efficiency above 1
// of peak, say, is not a fit but a sign of a missing cost elsewhere), in log space.
std::pair<double, double> log_bounds(const EfficiencyField& f) {
  double lo = std::string(f.unit) == "cores" ? 0.0 : kLogMin, hi = kLogMax;
  if (f.min > 0) lo = std::max(lo, std::log(f.min));
  if (f.max > 0) hi = std::min(hi, std::log(f.max));
  return {lo, hi};
}

class Problem {
 public:
  Problem(const std::vector<const Measurement*>& rows, std::vector<const EfficiencyField*> fields, bool balance)
      : rows_(rows), fields_(std::move(fields)), w_(static_cast<Eigen::Index>(rows.size())) {
    std::map<std::string, int> count;
    for (const Measurement* m : rows_) {
      ++count[kind_key(*m)];
      const int workers = m->kind != MeasurementKind::probe ? m->plan.cluster.ranks_per_node()
                          : spans_nodes(m->probe)               ? m->probe.ranks_per_node
                                                                : m->probe.ranks;
      max_workers_ = std::max(max_workers_, workers);
    }
    for (size_t i = 0; i < rows_.size(); ++i)
      w_[static_cast<Eigen::Index>(i)] = balance ? 1.0 / count[kind_key(*rows_[i])] : 1.0;
    for (const Measurement* m : rows_) {
      plans_.push_back(m->plan);
      prepared_.emplace_back();
      if (m->kind != MeasurementKind::probe) prepared_.back().emplace(m->plan);
    }
  }

  // Each kind's weight divided by its mean square residual at `r` (at least kMinScatter^2): a kind the
  // model fits to 5 % counts as much as one it misses by 100 % counts little, and the parameters only
  // the well-fitted kinds constrain get their uncertainty from those kinds' scatter.
  void reweight_by_scatter(const Eigen::VectorXd& r) {
    constexpr double kMinScatter = 0.05;
    std::map<std::string, double> sum, wsum;
    for (size_t i = 0; i < rows_.size(); ++i) {
      const auto ii = static_cast<Eigen::Index>(i);
      sum[kind_key(*rows_[i])] += w_[ii] * r[ii] * r[ii];
      wsum[kind_key(*rows_[i])] += w_[ii];
    }
    for (size_t i = 0; i < rows_.size(); ++i) {
      const std::string k = kind_key(*rows_[i]);
      w_[static_cast<Eigen::Index>(i)] /= std::max(sum[k] / wsum[k], kMinScatter * kMinScatter);
    }
  }

  // FitOptions::robust: each row's weight (balanced, reweighted by scatter) times Huber's weight at its
  // residual r, min(1, delta / |r|), delta = 1.345 x the residuals' robust scale (1.4826 x their median
  // absolute deviation: the standard deviation for normal errors) and at least 1.345 x kMinScale, so that
  // rows fitted within about 1 % keep least squares. Returns the largest change of a Huber weight.
  double reweight_huber(const Eigen::VectorXd& r) {
    constexpr double kMinScale = 0.01, kTuning = 1.345, kNormalMad = 1.4826;
    if (base_.size() == 0) {
      base_ = w_;
      huber_ = Eigen::VectorXd::Ones(w_.size());
    }
    std::vector<double> v(r.data(), r.data() + r.size());
    const double med = median(v);
    for (double& x : v) x = std::fabs(x - med);
    const double delta = kTuning * std::max(kNormalMad * median(v), kMinScale);
    double change = 0;
    for (Eigen::Index i = 0; i < r.size(); ++i) {
      const double h = std::fabs(r[i]) > delta ? delta / std::fabs(r[i]) : 1.0;
      change = std::max(change, std::fabs(h - huber_[i]));
      huber_[i] = h;
      w_[i] = base_[i] * h;
    }
    return change;
  }

  // A probe's kind (across nodes apart); an executor run's step, compute and optimizer; an imported run's step.
  static std::string kind_key(const Measurement& m) {
    return m.kind == MeasurementKind::probe && spans_nodes(m.probe) ? m.what + " across nodes" : m.what;
  }

  Calibration calibration(const Eigen::VectorXd& theta) const {
    Calibration c;
    c.name = "fit";
    for (size_t j = 0; j < fields_.size(); ++j)
      c.params.push_back({fields_[j]->name, std::exp(theta[static_cast<Eigen::Index>(j)]), false, ParamSource::fitted, ""});
    return c;
  }

  Eigen::VectorXd residuals(const Eigen::VectorXd& theta) const {
    const Calibration c = calibration(theta);
    Eigen::VectorXd r(static_cast<Eigen::Index>(rows_.size()));
    for (size_t i = 0; i < rows_.size(); ++i) {
      plans_[i].cluster.calibration = c;  // assigned into the row's own copy: no allocation after the first
      const double p = prepared_[i] ? predict_on(plans_[i], *rows_[i], *prepared_[i]) : predict_on(plans_[i], *rows_[i]);
      r[static_cast<Eigen::Index>(i)] = p > 0 ? std::log(p / rows_[i]->measured_s) : 50.0;  // 50: e^50 off
    }
    return r;
  }

  double cost(const Eigen::VectorXd& r) const { return (w_.array() * r.array().square()).sum(); }

  Eigen::MatrixXd jacobian(const Eigen::VectorXd& theta) const {
    Eigen::MatrixXd J(static_cast<Eigen::Index>(rows_.size()), theta.size());
    for (Eigen::Index j = 0; j < theta.size(); ++j) {
      Eigen::VectorXd up = theta, down = theta;
      up[j] += kStep;
      down[j] -= kStep;
      J.col(j) = (residuals(up) - residuals(down)) / (2 * kStep);
    }
    return J;
  }

  const Eigen::VectorXd& weights() const { return w_; }
  // The index of the parameter counted in cores, -1 when none is fitted.
  Eigen::Index cores_index() const {
    for (size_t j = 0; j < fields_.size(); ++j)
      if (std::string(fields_[j]->unit) == "cores") return static_cast<Eigen::Index>(j);
    return -1;
  }
  int max_workers() const { return max_workers_; }

  Eigen::VectorXd clamp(Eigen::VectorXd t) const { return t.cwiseMax(lower()).cwiseMin(upper()); }
  Eigen::VectorXd lower() const { return bound(false); }
  Eigen::VectorXd upper() const { return bound(true); }

 private:
  Eigen::VectorXd bound(bool upper) const {
    Eigen::VectorXd b(static_cast<Eigen::Index>(fields_.size()));
    for (size_t j = 0; j < fields_.size(); ++j) {
      auto [lo, hi] = log_bounds(*fields_[j]);
      // Cores beyond the most workers any row ran on one machine change no prediction (every share is
      // whole, no peer waits): a flat region where the fit used to wander off and lose the waits.
      if (std::string(fields_[j]->unit) == "cores") hi = std::max(lo, std::min(hi, std::log(max_workers_)));
      b[static_cast<Eigen::Index>(j)] = upper ? hi : lo;
    }
    return b;
  }

  std::vector<const Measurement*> rows_;
  mutable std::vector<Plan> plans_;  // each row's plan; residuals() sets its calibration (one thread per Problem)
  mutable std::vector<std::optional<PreparedRun>> prepared_;  // run rows: lowered once, re-timed per call
  std::vector<const EfficiencyField*> fields_;
  Eigen::VectorXd w_;
  Eigen::VectorXd base_, huber_;  // reweight_huber: the weights before it, and its factors
  int max_workers_ = 1;

  static double median(std::vector<double> v) {
    if (v.empty()) return 0;
    const size_t h = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h), v.end());
    const double upper = v[h];
    if (v.size() % 2) return upper;
    return (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h)) + upper) / 2;
  }
};

// One Levenberg-Marquardt fit of the parameters `pb` names from `theta`: returns the fitted logarithms.
struct Solved {
  Eigen::VectorXd theta, r;
  double cost = 0;
  int iterations = 0;
  bool converged = false;
};

Solved solve(const Problem& pb, Eigen::VectorXd theta, const Eigen::VectorXd& prior, int max_iterations) {
  // A very weak pull of every parameter towards its start (a Gaussian prior in log space, weighing like a
  // 0.003% rms error): a tie-breaker where the data leave a direction flat, which the caller then finds
  // unpinned and resets to the datasheet value.
  constexpr double kPrior = 1e-9;
  const Eigen::VectorXd& w = pb.weights();
  auto total = [&](const Eigen::VectorXd& r, const Eigen::VectorXd& t) {
    return pb.cost(r) + kPrior * (t - prior).squaredNorm();
  };
  Solved s;
  s.r = pb.residuals(theta);
  s.cost = total(s.r, theta);
  double lambda = 1e-3;
  for (s.iterations = 0; s.iterations < max_iterations; ++s.iterations) {
    const Eigen::MatrixXd J = pb.jacobian(theta);
    Eigen::MatrixXd A = J.transpose() * w.asDiagonal() * J;
    A.diagonal().array() += kPrior;
    Eigen::VectorXd g = J.transpose() * (w.array() * s.r.array()).matrix() + kPrior * (theta - prior);
    // A parameter at a bound that the descent would push further out stays there this iteration (the
    // active set of a box-constrained fit): projected onto the box its step would be 0 and stall the rest.
    const Eigen::VectorXd lo = pb.lower(), hi = pb.upper();
    for (Eigen::Index j = 0; j < theta.size(); ++j) {
      if ((theta[j] <= lo[j] && g[j] > 0) || (theta[j] >= hi[j] && g[j] < 0)) {
        A.row(j).setZero();
        A.col(j).setZero();
        A(j, j) = 1;
        g[j] = 0;
      }
    }
    bool stepped = false;
    double gain = 0, move = 0;
    while (lambda < 1e12) {
      Eigen::MatrixXd D = A;
      D.diagonal() += lambda * A.diagonal();
      const Eigen::VectorXd next = pb.clamp(theta + D.ldlt().solve(-g));
      const Eigen::VectorXd rn = pb.residuals(next);
      const double cn = total(rn, next);
      if (cn < s.cost) {
        gain = (s.cost - cn) / std::max(s.cost, 1e-300);
        move = (next - theta).cwiseAbs().maxCoeff();
        theta = next;
        s.r = rn;
        s.cost = cn;
        lambda = std::max(lambda / 3, 1e-12);
        stepped = true;
        break;
      }
      lambda *= 4;
    }
    if (!stepped || move < 1e-10 || gain < 1e-14) {
      s.converged = true;
      break;
    }
  }
  s.theta = theta;
  return s;
}

// Before Levenberg-Marquardt, which stops in the first valley it reaches: a simplex search over the whole
// box from the start, restarted from its best point with smaller simplices (a parameter whose datasheet
// value is 0 starts orders of magnitude from its fit; issue 14's host cost per kernel, e.g., from 1 us).
// CPU workers' shared cores make the model piecewise: a peer wait applies to w workers only below w
// cores (comm.cpp), so each stretch between whole numbers of workers is its own valley. The search
// starts once in each stretch (1.5, 2.5, ... cores up to the most workers of any row) and keeps the best:
// from one start only, it settled above 2 cores on rows made with 1.6, the 2-worker waits put on the
// latency instead. `guessed`: the parameters started at a typical magnitude, having no datasheet value.
Eigen::VectorXd global_stage(const Problem& pb, const Eigen::VectorXd& start, const std::vector<bool>& guessed) {
  const auto cost = [&](const Eigen::VectorXd& t) { return pb.cost(pb.residuals(t)); };
  const int per_pass = 150 * static_cast<int>(start.size() + 1);
  std::vector<Eigen::VectorXd> starts{start};
  if (const Eigen::Index c = pb.cores_index(); c >= 0) {
    starts.clear();
    for (double cores = 1.5; cores < pb.max_workers(); cores += 1) {
      Eigen::VectorXd s = start;
      s[c] = std::log(cores);
      starts.push_back(pb.clamp(s));
    }
    if (starts.empty()) starts.push_back(start);
  }
  // Parameters with no datasheet value start at a typical magnitude (start_value: 1 us for times), which
  // can lie in another valley than theirs: each start is tried again with them 100x higher (100 us for
  // times). The GUI's synthetic runs (host cost 20 us a kernel, tests/gui) ended at 0 us from 1 us, the
  // per-kernel cost on kernel_overhead_s instead, 6 % off; from 100 us the fit is exact.
  if (std::find(guessed.begin(), guessed.end(), true) != guessed.end()) {
    const size_t n = starts.size();
    for (size_t i = 0; i < n; ++i) {
      Eigen::VectorXd s = starts[i];
      for (Eigen::Index j = 0; j < s.size(); ++j)
        if (guessed[static_cast<size_t>(j)]) s[j] += std::log(100.0);
      starts.push_back(pb.clamp(s));
    }
  }
  SimplexResult best{start, cost(start), 1};
  for (const Eigen::VectorXd& from : starts) {
    SimplexResult here{from, cost(from), 1};
    for (double step : {2.0, 0.7, 0.2}) {
      const SimplexResult r = nelder_mead(cost, here.x, step, pb.lower(), pb.upper(), per_pass);
      if (r.value <= here.value) here = r;  // each pass starts from the last one's best
    }
    if (here.value < best.value) best = here;
  }
  return best.x;
}

// One standard deviation of each parameter's logarithm from the data alone: sigma^2 (J^T W J)^-1, sigma^2
// the weighted residual variance; a direction the data leave flat gets 1e6.
Eigen::VectorXd log_sigma(const Problem& pb, const Solved& s) {
  const Eigen::VectorXd& w = pb.weights();
  const Eigen::MatrixXd J = pb.jacobian(s.theta);
  const Eigen::Index n = s.r.size(), p = s.theta.size();
  const double sigma2 = std::max(pb.cost(s.r), 1e-30) / w.sum() * static_cast<double>(n) /
                        std::max<double>(1, static_cast<double>(n - p));
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(J.transpose() * w.asDiagonal() * J / w.sum());
  const double top = std::max(eig.eigenvalues().maxCoeff(), 1e-300);
  Eigen::VectorXd inv = eig.eigenvalues();
  for (Eigen::Index i = 0; i < inv.size(); ++i) inv[i] = inv[i] > 1e-10 * top ? 1 / inv[i] : 1e12;
  const Eigen::MatrixXd cov = sigma2 / static_cast<double>(n) * eig.eigenvectors() * inv.asDiagonal() *
                              eig.eigenvectors().transpose();
  return cov.diagonal().cwiseMax(0).cwiseSqrt().cwiseMin(1e6);
}

// The kernel-level GPU model's finer parameters (issue 14: a GEMM tile's fill, latency per ring step,
// host time per micro-batch and per step) are, on CPU workers, not told apart by what a CPU sweep
// measures from the host's cost per kernel and a collective's latency (every run of the sweep has two
// micro-batches, a probe's collective few steps): fitting them too makes the fit degenerate. On a CPU
// they keep their datasheet value (0) unless asked for by name.
// The optimizer's bandwidth (optimizer_memory) only when asked for by name, with the executor runs'
// "optimizer" rows, which time the optimizer step alone. Fitted from them by default, it came out about
// right (2.8-3.8x; the big and mid runs' optimizer steps then 20 % off on average, in fit) and predicted the
// other half's step times worse (six stored CPU sweeps, held out, mean of the six mean errors: 8.1 %
// A->B and 6.9 % B->A against 6.5 % and 5.1 % without, docs/calibration.md): the model's CPU optimizer
// step, 3-4x too slow, had been making up for one-worker runs predicted too fast (the cores the workers
// share are fitted as 1.6-1.8 of the machine's 2, which slows compute that measures as fast with two
// workers as with one).
bool fitted_by_default(const EfficiencyField& f, const GpuSpec& gpu) {
  if (std::string(f.name) == "optimizer_memory") return false;
  if (!gpu.is_cpu) return true;
  for (const char* fine : {"gemm_k_fill", "intra_node_hop_s", "inter_node_hop_s", "microbatch_overhead_s", "step_overhead_s"})
    if (std::string(f.name) == fine) return false;
  return true;
}

}  // namespace

bool RowsUsed::operator()(const Measurement& row) const {
  if (row.what == "optimizer") return optimizer_rows;
  if (row.kind == MeasurementKind::probe && row.what == "gemm" && row.plan.cluster.gpu.is_cpu) return cpu_probe_gemms;
  return true;
}

RowsUsed rows_used(const std::vector<Measurement>& rows, const FitOptions& options) {
  RowsUsed used;
  used.optimizer_rows = options.fields.count("optimizer_memory") > 0;  // they tell it from the rest
  used.cpu_probe_gemms = std::none_of(rows.begin(), rows.end(), [](const Measurement& m) {
    return m.kind == MeasurementKind::run && m.plan.cluster.gpu.is_cpu;
  });
  return used;
}

FitResult fit_parameters(const std::vector<Measurement>& all_rows, const GpuSpec& gpu, const FitOptions& options) {
  FitResult out;
  const auto& fields = efficiency_fields();
  // Start: every field at its start value (the datasheet's, or a typical magnitude where that is 0).
  Calibration start;
  for (const EfficiencyField& f : fields)
    start.params.push_back({f.name, start_value(f, gpu.efficiency.*f.member), false, ParamSource::fitted, ""});
  out.used = rows_used(all_rows, options);
  std::vector<const Measurement*> rows;
  std::vector<double> base;
  for (const Measurement& m : all_rows) {
    if (!out.used(m)) continue;
    const double p = predict(m, start);
    if (p > 0 && std::isfinite(p)) {
      rows.push_back(&m);
      base.push_back(p);
    } else {
      out.dropped.push_back(m.id + " (" + m.label + "): the time model predicts no time for it");
    }
  }
  // Which rows each field moves: its value 10x or 0.1x changes their prediction by more than 0.1%.
  std::vector<size_t> free;
  for (size_t j = 0; j < fields.size(); ++j) {
    FittedParam fp;
    fp.field = &fields[j];
    fp.datasheet = gpu.efficiency.*fields[j].member;
    fp.value = fp.datasheet;
    fp.start = start.params[j].value;
    const bool asked = options.fields.empty() ? fitted_by_default(fields[j], gpu)
                                              : options.fields.count(fields[j].name) > 0;
    if (!asked) {
      out.params.push_back(fp);
      continue;
    }
    bool from_steps = false;
    for (double factor : {10.0, 0.1}) {
      Calibration c = start;
      c.params[j].value *= factor;
      int moved = 0;
      for (size_t i = 0; i < rows.size(); ++i) {
        if (std::fabs(predict(*rows[i], c) / base[i] - 1) > 1e-3) {
          ++moved;
          from_steps = from_steps || rows[i]->kind != MeasurementKind::probe;
        }
      }
      fp.rows = std::max(fp.rows, moved);
    }
    if (fp.rows > 0) {
      fp.source = from_steps ? ParamSource::fitted : ParamSource::measured;
      free.push_back(j);
    }
    out.params.push_back(fp);
  }

  // Fit; then a parameter the data pin to no better than a factor e (one standard deviation of its
  // logarithm above 1) goes back to its datasheet value, the least pinned first, and the rest is refitted.
  while (!free.empty() && !rows.empty()) {
    std::vector<const EfficiencyField*> names;
    Eigen::VectorXd theta(static_cast<Eigen::Index>(free.size()));
    for (size_t k = 0; k < free.size(); ++k) {
      names.push_back(&fields[free[k]]);
      theta[static_cast<Eigen::Index>(k)] = std::log(start.params[free[k]].value);
    }
    // Two passes: balanced weights, then each kind reweighted by its scatter at the first solution.
    Problem pb(rows, names, options.balance_kinds);
    const Eigen::VectorXd prior = theta;
    std::vector<bool> guessed;  // no datasheet value: started at a typical magnitude
    for (size_t k = 0; k < free.size(); ++k)
      guessed.push_back(std::string(fields[free[k]].unit) == "s" && gpu.efficiency.*fields[free[k]].member == 0);
    theta = global_stage(pb, theta, guessed);
    Solved s = solve(pb, theta, prior, options.max_iterations);
    if (options.balance_kinds) {
      pb.reweight_by_scatter(s.r);
      const int first = s.iterations;
      s = solve(pb, s.theta, prior, options.max_iterations);
      s.iterations += first;
    }
    // Iteratively reweighted least squares: Huber's weights (and their scale) at the last solution,
    // refitted, until no weight moves by more than 1e-6; a fit whose weights have not settled after
    // kHuberPasses is reported as not converged. (The Megatron-Bridge H100 rows settle in a few passes.)
    constexpr int kHuberPasses = 50;
    bool settled = !options.robust;
    for (int pass = 0; options.robust && pass < kHuberPasses; ++pass) {
      if (pb.reweight_huber(s.r) <= 1e-6) {
        settled = true;
        break;
      }
      const int before = s.iterations;
      s = solve(pb, s.theta, prior, options.max_iterations);
      s.iterations += before;
    }
    const Eigen::VectorXd sigma = log_sigma(pb, s);
    Eigen::Index worst = 0;
    const double worst_sigma = sigma.maxCoeff(&worst);
    out.iterations += s.iterations;
    if (worst_sigma > 1) {
      out.params[free[static_cast<size_t>(worst)]].source = ParamSource::datasheet;
      out.params[free[static_cast<size_t>(worst)]].rel_sigma = worst_sigma;
      free.erase(free.begin() + worst);
      continue;
    }
    out.converged = s.converged && settled;
    out.rms_log_residual = std::sqrt(pb.cost(s.r) / pb.weights().sum());
    for (size_t k = 0; k < free.size(); ++k) {
      FittedParam& fp = out.params[free[k]];
      fp.fitted = true;
      fp.value = std::exp(s.theta[static_cast<Eigen::Index>(k)]);
      fp.rel_sigma = sigma[static_cast<Eigen::Index>(k)];
    }
    break;
  }
  for (const FittedParam& fp : out.params)
    if (fp.fitted) out.calibration.params.push_back({fp.field->name, fp.value, false, fp.source, ""});
  return out;
}

}  // namespace paraplan::planner
