#include "nelder_mead.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

namespace paraplan::planner {

SimplexResult nelder_mead(const std::function<double(const Eigen::VectorXd&)>& f, const Eigen::VectorXd& x0,
                          double step, const Eigen::VectorXd& lo, const Eigen::VectorXd& hi, int max_evaluations) {
  const Eigen::Index n = x0.size();
  SimplexResult out;
  auto eval = [&](const Eigen::VectorXd& x) {
    ++out.evaluations;
    return f(x);
  };
  auto box = [&](Eigen::VectorXd x) { return x.cwiseMax(lo).cwiseMin(hi).eval(); };
  std::vector<Eigen::VectorXd> pts(static_cast<size_t>(n + 1), box(x0));
  std::vector<double> val(pts.size());
  for (Eigen::Index i = 0; i < n; ++i) {
    Eigen::VectorXd& p = pts[static_cast<size_t>(i + 1)];
    p[i] += step;
    if (p[i] > hi[i]) p[i] = x0[i] - step;  // a start at its upper bound steps downwards
    p = box(p);
  }
  for (size_t i = 0; i < pts.size(); ++i) val[i] = eval(pts[i]);
  std::vector<size_t> order(pts.size());
  while (out.evaluations < max_evaluations) {
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return val[a] < val[b]; });
    const size_t best = order.front(), worst = order.back(), second = order[order.size() - 2];
    if (val[worst] - val[best] <= 1e-12 * (1 + std::abs(val[best]))) break;  // the simplex is flat
    Eigen::VectorXd centre = Eigen::VectorXd::Zero(n);
    for (size_t i : order)
      if (i != worst) centre += pts[i] / static_cast<double>(n);
    auto along = [&](double t) { return box(centre + t * (pts[worst] - centre)); };
    const Eigen::VectorXd xr = along(-1);
    const double fr = eval(xr);
    if (fr < val[best]) {
      const Eigen::VectorXd xe = along(-2);
      const double fe = eval(xe);
      pts[worst] = fe < fr ? xe : xr;
      val[worst] = std::min(fe, fr);
    } else if (fr < val[second]) {
      pts[worst] = xr;
      val[worst] = fr;
    } else {
      const Eigen::VectorXd xc = along(0.5);
      const double fc = eval(xc);
      if (fc < val[worst]) {
        pts[worst] = xc;
        val[worst] = fc;
      } else {
        for (size_t i : order) {
          if (i == best) continue;
          pts[i] = box(pts[best] + 0.5 * (pts[i] - pts[best]));
          val[i] = eval(pts[i]);
        }
      }
    }
  }
  const size_t b = static_cast<size_t>(std::min_element(val.begin(), val.end()) - val.begin());
  out.x = pts[b];
  out.value = val[b];
  return out;
}

}  // namespace paraplan::planner
