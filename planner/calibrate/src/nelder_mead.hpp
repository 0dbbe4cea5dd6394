#pragma once
// Nelder-Mead simplex search (Nelder & Mead 1965; the standard coefficients reflect 1, expand 2, contract
// 0.5, shrink 0.5 of Lagarias et al. 1998) inside a box: a derivative-free global stage before Levenberg-
// Marquardt, which alone stops in the first valley it finds when some parameters start far from theirs.
#include <Eigen/Dense>
#include <functional>

namespace paraplan::planner {

struct SimplexResult {
  Eigen::VectorXd x;
  double value = 0;
  int evaluations = 0;
};

// Minimises f inside [lo, hi] (each trial point clamped into the box) from x0, with a first simplex of
// x0 + step along each axis, for at most max_evaluations calls of f.
SimplexResult nelder_mead(const std::function<double(const Eigen::VectorXd&)>& f, const Eigen::VectorXd& x0,
                          double step, const Eigen::VectorXd& lo, const Eigen::VectorXd& hi, int max_evaluations);

}  // namespace paraplan::planner
