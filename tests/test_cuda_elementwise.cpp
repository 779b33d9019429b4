// The elementwise and row-reduction CUDA kernels (include/rlxf/cuda/elementwise/), run by
// the emulator (every shared-memory access, barrier and warp operation checked) and
// compared with the CPU references of include/rlxf/cpu/ and include/rlxf/optim/.
//
// Tolerances, by rule (FlashAttention's):
// - f32 outputs: the reference is the CPU function run in double on the same (f32) inputs;
//   with err(z) = max_i |z_i - ref_i| over the tensor,
//     err(kernel) <= 2 err(naive) + 4 eps_f32 max_i |ref_i|,
//   naive a plain f32 implementation (sequential f32 sums; for the activations and RoPE the
//   CPU reference at T = float, which is exactly that). The floor, 4 ulps at the output
//   scale, covers tensors a naive implementation happens to get exact and the GPU's 2-ulp
//   rsqrtf / expf, which the emulator (glibc, correctly rounded) does not reproduce.
// - bf16 outputs: every element within one bf16 ulp of the reference (faithful rounding of
//   an f32 result; correct rounding would be half an ulp) plus 8 eps_f32 max_i |ref_i| for
//   the f32 computation before the rounding: |out_i - ref_i| <= ulp_bf16(ref_i) + 8 eps max|ref|.
//   The inputs are bf16 values, and the reference is computed in double from them.
// Set RLXF_TEST_VERBOSE=1 to print the worst error / tolerance ratio of each check.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <typeindex>
#include <vector>

#include "rlxf/cpu/activations.hpp"
#include "rlxf/cpu/layernorm.hpp"
#include "rlxf/cpu/rmsnorm.hpp"
#include "rlxf/cpu/rope.hpp"
#include "rlxf/cpu/softmax.hpp"
#include "rlxf/cuda/elementwise/elementwise.hpp"
#include "rlxf/cuda/emulate/launch.hpp"
#include "rlxf/optim/adamw.hpp"
#include "bf16_check.hpp"

using rlxf::bf16;
namespace cuda = rlxf::cuda;
namespace emu = rlxf::cuda::emulate;
using rlxf::test::ulp_bf16;

namespace {

constexpr double eps32 = std::numeric_limits<float>::epsilon();

// ---- the emulator as a launcher, remembering which kernels it ran ----

struct Emulator {
  emu::Options options{};
  std::vector<std::type_index>* launched = nullptr;
  template <class Kernel>
  void operator()(cuda::KernelTag<Kernel>, const cuda::LaunchConfig& config, const typename Kernel::Params& p) const {
    if (launched) launched->push_back(typeid(Kernel));
    emu::launch<Kernel>(config, p, options);
  }
};

// Runs f(launcher) and returns the kernels it launched.
template <class F>
std::vector<std::type_index> run(F&& f, emu::Options options = {}) {
  std::vector<std::type_index> kernels;
  f(Emulator{options, &kernels});
  return kernels;
}
template <class K>
bool ran(const std::vector<std::type_index>& kernels) {
  return std::find(kernels.begin(), kernels.end(), std::type_index(typeid(K))) != kernels.end();
}

// ---- data ----

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (auto& x : v) x = offset + scale * normal(rng);
  return v;
}

// Rows with their own offsets and spreads, as activations have (|mean| up to ~2 std).
std::vector<float> random_rows(int N, int C, std::uint32_t seed) {
  auto x = random_floats(static_cast<std::size_t>(N) * C, seed);
  for (int i = 0; i < N; ++i)
    for (int c = 0; c < C; ++c) x[std::size_t(i) * C + c] = 0.7f * float(i) - 1.0f + (1.0f + 0.4f * float(i)) * x[std::size_t(i) * C + c];
  return x;
}

template <class T>
std::vector<T> stored(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = cuda::from_float<T>(v[i]);
  return out;
}
template <class T>
std::vector<float> values(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = cuda::to_float(v[i]);
  return out;
}
// The values a T array holds (rounding to bf16 when T is bf16): the inputs every
// implementation sees.
template <class T>
std::vector<float> representable(const std::vector<float>& v) {
  return values(stored<T>(v));
}
std::vector<double> widened(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// ---- error checks ----

struct Worst {
  double ratio = 0, err = 0, tol = 0;
};
// The worst error / tolerance of each check, printed at exit with RLXF_TEST_VERBOSE set.
struct WorstTable {
  std::map<std::string, Worst> by_label;
  ~WorstTable() {
    if (!std::getenv("RLXF_TEST_VERBOSE")) return;
    for (const auto& [label, w] : by_label)
      std::printf("%-40s max err %9.3g  tol %9.3g  (%.2f of tol)\n", label.c_str(), w.err, w.tol, w.ratio);
  }
};
void record(const std::string& label, double err, double tol) {
  static WorstTable table;
  Worst& w = table.by_label[label];
  const double ratio = tol > 0 ? err / tol : (err > 0 ? INFINITY : 0);
  if (ratio >= w.ratio) w = {ratio, err, tol};
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}
double max_err(const std::vector<float>& out, const std::vector<double>& ref) {
  REQUIRE(out.size() == ref.size());
  double e = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double d = std::abs(double(out[i]) - ref[i]);
    if (std::isnan(d)) return INFINITY;
    e = std::max(e, d);
  }
  return e;
}

// f32 rule: err(out) <= 2 err(naive) + 4 eps scale, scale = max|ref| unless the caller
// names a larger one (the sum of the absolute values of a reduction's terms, for sums that
// cancel: a single output, e.g. dgamma of C = 1, makes err(naive) a one-sample statistic).
void check_f32(const std::string& label, const std::vector<float>& out, const std::vector<double>& ref,
               const std::vector<float>& naive, double scale = 0) {
  const double err = max_err(out, ref), naive_err = max_err(naive, ref);
  const double tol = 2 * naive_err + 4 * eps32 * std::max(scale, max_abs(ref));
  record(label + " f32", err, tol);
  INFO(label, ": kernel error ", err, ", naive f32 error ", naive_err, ", tolerance ", tol);
  CHECK(err <= tol);
}

// bf16 rule: |out_i - ref_i| <= ulp_bf16(ref_i) + 8 eps max|ref|, every element.
void check_bf16(const std::string& label, const std::vector<float>& out, const std::vector<double>& ref) {
  REQUIRE(out.size() == ref.size());
  const double slack = 8 * eps32 * max_abs(ref);
  double worst = 0, worst_err = 0, worst_tol = 0;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double err = std::abs(double(out[i]) - ref[i]), tol = ulp_bf16(ref[i]) + slack;
    if (!(err <= tol)) ++bad;
    const double ratio = tol > 0 ? err / tol : (err > 0 ? INFINITY : 0);
    if (std::isnan(err) || ratio > worst) worst = std::isnan(err) ? INFINITY : ratio, worst_err = err, worst_tol = tol;
  }
  record(label + " bf16", worst_err, worst_tol);
  INFO(label, ": ", bad, " of ", out.size(), " elements beyond one bf16 ulp + ", slack, "; worst error ", worst_err,
       " against ", worst_tol);
  CHECK(bad == 0);
}

// The check for an output stored as T: naive is used for f32 only.
template <class T>
void check_output(const std::string& label, const std::vector<T>& out, const std::vector<double>& ref,
                  const std::vector<float>& naive) {
  if constexpr (std::is_same_v<T, float>) check_f32(label, out, ref, naive);
  else check_bf16(label, values(out), ref);
}

// ---- naive f32 implementations (the baselines of the f32 rule) ----

void naive_layernorm_forward(const std::vector<float>& x, const std::vector<float>& g, const std::vector<float>& b,
                             std::vector<float>& y, std::vector<float>& mean, std::vector<float>& rstd, int N, int C,
                             float eps) {
  for (int i = 0; i < N; ++i) {
    const float* xi = x.data() + std::size_t(i) * C;
    float sum = 0;
    for (int c = 0; c < C; ++c) sum += xi[c];
    const float m = sum / float(C);
    float sq = 0;
    for (int c = 0; c < C; ++c) sq += (xi[c] - m) * (xi[c] - m);
    const float r = 1.0f / std::sqrt(sq / float(C) + eps);
    for (int c = 0; c < C; ++c) y[std::size_t(i) * C + c] = (xi[c] - m) * r * g[c] + b[c];
    mean[i] = m;
    rstd[i] = r;
  }
}

// Returns max_c |dgamma_c| + sum_rows |dy xhat| and the same for dbeta: the scales of the
// parameter-gradient sums.
std::pair<double, double> naive_layernorm_backward(const std::vector<float>& dy, const std::vector<float>& x,
                                                   const std::vector<float>& g, const std::vector<float>& mean,
                                                   const std::vector<float>& rstd, std::vector<float>& dx,
                                                   std::vector<float>& dgamma, std::vector<float>& dbeta, int N,
                                                   int C) {
  std::vector<float> gsum(C, 0.0f), bsum(C, 0.0f);
  std::vector<double> gabs(C, 0.0), babs(C, 0.0);
  for (int i = 0; i < N; ++i) {
    const std::size_t o = std::size_t(i) * C;
    float s = 0, sx = 0;
    for (int c = 0; c < C; ++c) {
      const float xhat = (x[o + c] - mean[i]) * rstd[i];
      s += dy[o + c] * g[c];
      sx += dy[o + c] * g[c] * xhat;
      gsum[c] += dy[o + c] * xhat;
      bsum[c] += dy[o + c];
      gabs[c] += std::abs(dy[o + c] * xhat);
      babs[c] += std::abs(dy[o + c]);
    }
    for (int c = 0; c < C; ++c) {
      const float xhat = (x[o + c] - mean[i]) * rstd[i];
      dx[o + c] += rstd[i] * (dy[o + c] * g[c] - s / float(C) - xhat * (sx / float(C)));
    }
  }
  double gscale = 0, bscale = 0;
  for (int c = 0; c < C; ++c) {
    gscale = std::max(gscale, std::abs(dgamma[c]) + gabs[c]);
    bscale = std::max(bscale, std::abs(dbeta[c]) + babs[c]);
    dgamma[c] += gsum[c];
    dbeta[c] += bsum[c];
  }
  return {gscale, bscale};
}

void naive_rmsnorm_forward(const std::vector<float>& x, const std::vector<float>& g, std::vector<float>& y,
                           std::vector<float>& rstd, int N, int C, float eps) {
  for (int i = 0; i < N; ++i) {
    const std::size_t o = std::size_t(i) * C;
    float sq = 0;
    for (int c = 0; c < C; ++c) sq += x[o + c] * x[o + c];
    const float r = 1.0f / std::sqrt(sq / float(C) + eps);
    for (int c = 0; c < C; ++c) y[o + c] = x[o + c] * r * g[c];
    rstd[i] = r;
  }
}

// Returns max_c |dgamma_c| + sum_rows |dy x rstd|.
double naive_rmsnorm_backward(const std::vector<float>& dy, const std::vector<float>& x, const std::vector<float>& g,
                              const std::vector<float>& rstd, std::vector<float>& dx, std::vector<float>& dgamma,
                              int N, int C) {
  std::vector<float> gsum(C, 0.0f);
  std::vector<double> gabs(C, 0.0);
  for (int i = 0; i < N; ++i) {
    const std::size_t o = std::size_t(i) * C;
    float s = 0;
    for (int c = 0; c < C; ++c) {
      s += dy[o + c] * g[c] * x[o + c];
      gsum[c] += dy[o + c] * x[o + c] * rstd[i];
      gabs[c] += std::abs(dy[o + c] * x[o + c] * rstd[i]);
    }
    const float scale = s / float(C) * rstd[i] * rstd[i];
    for (int c = 0; c < C; ++c) dx[o + c] += rstd[i] * (dy[o + c] * g[c] - x[o + c] * scale);
  }
  double scale = 0;
  for (int c = 0; c < C; ++c) {
    scale = std::max(scale, std::abs(dgamma[c]) + gabs[c]);
    dgamma[c] += gsum[c];
  }
  return scale;
}

// ---- layer norm ----

template <class T>
void test_layernorm(int N, int C, int max_blocks, int misalign = 0) {
  CAPTURE(N);
  CAPTURE(C);
  CAPTURE(max_blocks);
  CAPTURE(misalign);
  const float eps = 1e-5f;
  const std::size_t NC = std::size_t(N) * C;
  const auto x = representable<T>(random_rows(N, C, 11 + C));
  const auto gamma = representable<T>(random_floats(C, 12, 0.5f, 1.0f));
  const auto beta = representable<T>(random_floats(C, 13, 0.5f));
  // Storage, offset by `misalign` elements to force the scalar kernels.
  std::vector<T> xs(NC + misalign), gs(C + misalign), bs(C + misalign), ys(NC + misalign);
  std::copy_n(stored<T>(x).begin(), NC, xs.begin() + misalign);
  std::copy_n(stored<T>(gamma).begin(), C, gs.begin() + misalign);
  std::copy_n(stored<T>(beta).begin(), C, bs.begin() + misalign);
  std::vector<float> mean(N), rstd(N);

  const auto kernels = run([&](auto launcher) {
    cuda::layernorm_forward<T>({xs.data() + misalign, gs.data() + misalign, bs.data() + misalign, ys.data() + misalign,
                                mean.data(), rstd.data(), N, C, eps},
                               launcher);
  });
  constexpr int V = cuda::vec128<T>;
  CHECK(ran<cuda::LayerNormForward<T, (V)>>(kernels) == (C % V == 0 && misalign == 0));

  std::vector<double> y_ref(NC), mean_ref(N), rstd_ref(N);
  rlxf::cpu::layernorm_forward<double>(widened(x).data(), widened(gamma).data(), widened(beta).data(), y_ref.data(),
                                       mean_ref.data(), rstd_ref.data(), N, C, eps);
  std::vector<float> y_naive(NC), mean_naive(N), rstd_naive(N);
  naive_layernorm_forward(x, gamma, beta, y_naive, mean_naive, rstd_naive, N, C, eps);
  const std::vector<T> y(ys.begin() + misalign, ys.end());
  check_output("layernorm fwd y", y, y_ref, y_naive);
  check_f32("layernorm fwd mean", mean, mean_ref, mean_naive);
  check_f32("layernorm fwd rstd", rstd, rstd_ref, rstd_naive);

  // Backward from the CPU forward's f32 statistics (the same inputs for every implementation),
  // adding into nonzero gradients as the CPU does.
  std::vector<float> mean32(N), rstd32(N), y32(NC);
  rlxf::cpu::layernorm_forward<float>(x.data(), gamma.data(), beta.data(), y32.data(), mean32.data(), rstd32.data(),
                                      N, C, eps);
  const auto dy = representable<T>(random_floats(NC, 14));
  const auto dx0 = representable<T>(random_floats(NC, 15, 0.1f));
  const auto dgamma0 = random_floats(C, 16), dbeta0 = random_floats(C, 17);
  std::vector<T> dys(NC + misalign), dxs(NC + misalign);
  std::copy_n(stored<T>(dy).begin(), NC, dys.begin() + misalign);
  std::copy_n(stored<T>(dx0).begin(), NC, dxs.begin() + misalign);
  auto dgamma = dgamma0, dbeta = dbeta0;
  std::vector<float> workspace(static_cast<std::size_t>(cuda::layernorm_backward_workspace(N, C, max_blocks)));
  const cuda::LayerNormBackwardParams<T> bp{dys.data() + misalign, xs.data() + misalign, gs.data() + misalign,
                                            mean32.data(), rstd32.data(), dxs.data() + misalign, dgamma.data(),
                                            dbeta.data(), workspace.data(), N, C, true, max_blocks};
  const auto bkernels = run([&](auto launcher) { cuda::layernorm_backward<T>(bp, launcher); });
  CHECK(ran<cuda::LayerNormBackward<T, (V)>>(bkernels) == (C % V == 0 && misalign == 0));
  CHECK(ran<cuda::ParamGradReduce>(bkernels));

  std::vector<double> dx_ref = widened(dx0), dgamma_ref = widened(dgamma0), dbeta_ref = widened(dbeta0);
  rlxf::cpu::layernorm_backward<double>(widened(dy).data(), widened(x).data(), widened(gamma).data(),
                                        widened(mean32).data(), widened(rstd32).data(), dx_ref.data(),
                                        dgamma_ref.data(), dbeta_ref.data(), N, C);
  auto dx_naive = dx0, dgamma_naive = dgamma0, dbeta_naive = dbeta0;
  const auto [gscale, bscale] =
      naive_layernorm_backward(dy, x, gamma, mean32, rstd32, dx_naive, dgamma_naive, dbeta_naive, N, C);
  const std::vector<T> dx(dxs.begin() + misalign, dxs.end());
  check_output("layernorm bwd dx", dx, dx_ref, dx_naive);
  check_f32("layernorm bwd dgamma", dgamma, dgamma_ref, dgamma_naive, gscale);
  check_f32("layernorm bwd dbeta", dbeta, dbeta_ref, dbeta_naive, bscale);

  // The CPU reference at T = float agrees within the same rule.
  if constexpr (std::is_same_v<T, float>) {
    auto dx_cpu = dx0, dgamma_cpu = dgamma0, dbeta_cpu = dbeta0;
    rlxf::cpu::layernorm_backward<float>(dy.data(), x.data(), gamma.data(), mean32.data(), rstd32.data(),
                                         dx_cpu.data(), dgamma_cpu.data(), dbeta_cpu.data(), N, C);
    check_f32("layernorm fwd y (vs cpu f32)", y32, y_ref, y_naive);
    check_f32("layernorm bwd dx (vs cpu f32)", dx_cpu, dx_ref, dx_naive);
  }
}

// ---- RMS norm ----

template <class T>
void test_rmsnorm(int N, int C, int max_blocks, int misalign = 0) {
  CAPTURE(N);
  CAPTURE(C);
  CAPTURE(max_blocks);
  CAPTURE(misalign);
  const float eps = 1e-6f;
  const std::size_t NC = std::size_t(N) * C;
  const auto x = representable<T>(random_rows(N, C, 21 + C));
  const auto gamma = representable<T>(random_floats(C, 22, 0.5f, 1.0f));
  std::vector<T> xs(NC + misalign), gs(C + misalign), ys(NC + misalign);
  std::copy_n(stored<T>(x).begin(), NC, xs.begin() + misalign);
  std::copy_n(stored<T>(gamma).begin(), C, gs.begin() + misalign);
  std::vector<float> rstd(N);
  const auto kernels = run([&](auto launcher) {
    cuda::rmsnorm_forward<T>({xs.data() + misalign, gs.data() + misalign, ys.data() + misalign, rstd.data(), N, C, eps},
                             launcher);
  });
  constexpr int V = cuda::vec128<T>;
  CHECK(ran<cuda::RmsNormForward<T, (V)>>(kernels) == (C % V == 0 && misalign == 0));

  std::vector<double> y_ref(NC), rstd_ref(N);
  rlxf::cpu::rmsnorm_forward<double>(widened(x).data(), widened(gamma).data(), y_ref.data(), rstd_ref.data(), N, C,
                                     eps);
  std::vector<float> y_naive(NC), rstd_naive(N);
  naive_rmsnorm_forward(x, gamma, y_naive, rstd_naive, N, C, eps);
  check_output("rmsnorm fwd y", std::vector<T>(ys.begin() + misalign, ys.end()), y_ref, y_naive);
  check_f32("rmsnorm fwd rstd", rstd, rstd_ref, rstd_naive);

  std::vector<float> rstd32(N), y32(NC);
  rlxf::cpu::rmsnorm_forward<float>(x.data(), gamma.data(), y32.data(), rstd32.data(), N, C, eps);
  const auto dy = representable<T>(random_floats(NC, 24));
  const auto dx0 = representable<T>(random_floats(NC, 25, 0.1f));
  const auto dgamma0 = random_floats(C, 26);
  std::vector<T> dys(NC + misalign), dxs(NC + misalign);
  std::copy_n(stored<T>(dy).begin(), NC, dys.begin() + misalign);
  std::copy_n(stored<T>(dx0).begin(), NC, dxs.begin() + misalign);
  auto dgamma = dgamma0;
  std::vector<float> workspace(static_cast<std::size_t>(cuda::rmsnorm_backward_workspace(N, C, max_blocks)));
  const cuda::RmsNormBackwardParams<T> bp{dys.data() + misalign, xs.data() + misalign, gs.data() + misalign,
                                          rstd32.data(), dxs.data() + misalign, dgamma.data(), workspace.data(), N, C,
                                          true, max_blocks};
  const auto bkernels = run([&](auto launcher) { cuda::rmsnorm_backward<T>(bp, launcher); });
  CHECK(ran<cuda::RmsNormBackward<T, (V)>>(bkernels) == (C % V == 0 && misalign == 0));

  std::vector<double> dx_ref = widened(dx0), dgamma_ref = widened(dgamma0);
  rlxf::cpu::rmsnorm_backward<double>(widened(dy).data(), widened(x).data(), widened(gamma).data(),
                                      widened(rstd32).data(), dx_ref.data(), dgamma_ref.data(), N, C);
  auto dx_naive = dx0, dgamma_naive = dgamma0;
  const double gscale = naive_rmsnorm_backward(dy, x, gamma, rstd32, dx_naive, dgamma_naive, N, C);
  check_output("rmsnorm bwd dx", std::vector<T>(dxs.begin() + misalign, dxs.end()), dx_ref, dx_naive);
  check_f32("rmsnorm bwd dgamma", dgamma, dgamma_ref, dgamma_naive, gscale);
}

// The row widths of the norm tests: one column, ragged (7, 33: scalar kernels), GPT-2's
// 768 (128-bit kernels).
constexpr int norm_widths[] = {1, 7, 33, 768};

}  // namespace

TEST_CASE("layernorm forward / backward match the CPU reference (f32)") {
  for (int C : norm_widths)
    for (int N : {1, 3, 5}) {
      test_layernorm<float>(N, C, cuda::norm_backward_max_blocks);
      test_layernorm<float>(N, C, 2);  // groups of rows per block, the last one short
    }
  test_layernorm<float>(3, 768, 2, 1);   // misaligned rows: the scalar kernels on a wide row
  test_layernorm<float>(2, 8196, 1);     // forward past its 16 columns a thread in registers
  test_layernorm<float>(2, 4100, 1);     // backward past its 8 columns a thread (128-bit)
  test_layernorm<float>(2, 4099, 2);     // and past 8 scalar columns a thread
}

TEST_CASE("layernorm forward / backward match the CPU reference (bf16 storage)") {
  for (int C : {7, 33, 768})
    for (int N : {1, 4}) test_layernorm<bf16>(N, C, 2);
  test_layernorm<bf16>(2, 768, 2, 1);
  test_layernorm<bf16>(1, 8208, 1);  // past the registers of both kernels, 8-wide bf16 chunks
}

TEST_CASE("layernorm without beta, dx overwritten with accumulate = false") {
  const int N = 3, C = 40;
  const auto x = random_rows(N, C, 31), gamma = random_floats(C, 32, 0.5f, 1.0f), dy = random_floats(N * C, 33);
  std::vector<float> y(N * C), mean(N), rstd(N), y_ref(N * C), mean_ref(N), rstd_ref(N);
  run([&](auto l) { cuda::layernorm_forward<float>({x.data(), gamma.data(), nullptr, y.data(), mean.data(), rstd.data(), N, C, 1e-5f}, l); });
  rlxf::cpu::layernorm_forward<float>(x.data(), gamma.data(), nullptr, y_ref.data(), mean_ref.data(), rstd_ref.data(), N, C, 1e-5f);
  for (int i = 0; i < N * C; ++i) CHECK(y[i] == doctest::Approx(y_ref[i]).epsilon(1e-5));
  std::vector<float> dx(N * C, std::numeric_limits<float>::quiet_NaN()), dgamma(C, 0.0f), dx_ref(N * C, 0.0f),
      dgamma_ref(C, 0.0f), dbeta_ref(C, 0.0f);
  std::vector<float> workspace(cuda::layernorm_backward_workspace(N, C));
  run([&](auto l) {
    cuda::layernorm_backward<float>({dy.data(), x.data(), gamma.data(), mean_ref.data(), rstd_ref.data(), dx.data(),
                                     dgamma.data(), nullptr, workspace.data(), N, C, false},
                                    l);
  });
  rlxf::cpu::layernorm_backward<float>(dy.data(), x.data(), gamma.data(), mean_ref.data(), rstd_ref.data(),
                                       dx_ref.data(), dgamma_ref.data(), dbeta_ref.data(), N, C);
  for (int i = 0; i < N * C; ++i) CHECK(dx[i] == doctest::Approx(dx_ref[i]).epsilon(1e-5).scale(1));
  for (int c = 0; c < C; ++c) CHECK(dgamma[c] == doctest::Approx(dgamma_ref[c]).epsilon(1e-5).scale(1));
}

TEST_CASE("norm parameter gradients are deterministic: bit-identical whatever order blocks run in") {
  const int N = 5, C = 66;
  const auto x = random_rows(N, C, 41), gamma = random_floats(C, 42), dy = random_floats(N * C, 43);
  std::vector<float> mean(N), rstd(N), y(N * C);
  rlxf::cpu::layernorm_forward<float>(x.data(), gamma.data(), nullptr, y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
  auto gradients = [&](emu::Options options) {
    std::vector<float> dx(N * C, 0.0f), dgamma(C, 0.0f), dbeta(C, 0.0f);
    std::vector<float> workspace(cuda::layernorm_backward_workspace(N, C, 2));
    run([&](auto l) {
      cuda::layernorm_backward<float>({dy.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                                       dgamma.data(), dbeta.data(), workspace.data(), N, C, true, 2},
                                      l);
    }, options);
    dgamma.insert(dgamma.end(), dbeta.begin(), dbeta.end());
    return dgamma;
  };
  const auto in_order = gradients({});
  for (std::uint64_t seed : {1, 2, 3}) {
    const auto shuffled = gradients({.seed = seed, .shuffle_blocks = true});
    CHECK(std::memcmp(in_order.data(), shuffled.data(), in_order.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("rmsnorm forward / backward match the CPU reference (f32)") {
  for (int C : norm_widths)
    for (int N : {1, 3, 5}) {
      test_rmsnorm<float>(N, C, cuda::norm_backward_max_blocks);
      test_rmsnorm<float>(N, C, 2);
    }
  test_rmsnorm<float>(3, 768, 2, 1);
  test_rmsnorm<float>(2, 8196, 1);
  test_rmsnorm<float>(2, 4100, 1);
  test_rmsnorm<float>(2, 4099, 2);
}

TEST_CASE("rmsnorm forward / backward match the CPU reference (bf16 storage)") {
  for (int C : {7, 33, 768})
    for (int N : {1, 4}) test_rmsnorm<bf16>(N, C, 2);
  test_rmsnorm<bf16>(2, 768, 2, 1);
  test_rmsnorm<bf16>(1, 8208, 1);
}

// ---- activations ----

namespace {

rlxf::cpu::GeluForm cpu_form(cuda::GeluForm f) {
  return f == cuda::GeluForm::tanh ? rlxf::cpu::GeluForm::tanh : rlxf::cpu::GeluForm::exact;
}

// Inputs over the whole useful range: |x| up to ~10 (the tails of sigmoid and erfc).
std::vector<float> activation_inputs(std::size_t n, std::uint32_t seed) {
  auto x = random_floats(n, seed, 3.0f);
  if (n > 2) {
    x[0] = -10.0f;
    x[1] = 9.5f;
    x[2] = 0.0f;
  }
  return x;
}

template <class T>
void test_gelu(std::size_t n, cuda::GeluForm form, int misalign) {
  CAPTURE(n);
  CAPTURE(misalign);
  const std::string name = form == cuda::GeluForm::tanh ? "gelu tanh" : "gelu exact";
  const auto x = representable<T>(activation_inputs(n, 51));
  std::vector<T> xs(n + misalign), ys(n + misalign);
  std::copy_n(stored<T>(x).begin(), n, xs.begin() + misalign);
  const auto fk = run([&](auto l) {
    cuda::gelu_forward<T>({xs.data() + misalign, ys.data() + misalign, static_cast<long long>(n)}, form, l);
  });
  CHECK(fk.size() == 1);
  std::vector<double> y_ref(n);
  rlxf::cpu::gelu_forward<double>(widened(x).data(), y_ref.data(), n, cpu_form(form));
  std::vector<float> y_naive(n);
  rlxf::cpu::gelu_forward<float>(x.data(), y_naive.data(), n, cpu_form(form));
  check_output(name + " fwd", std::vector<T>(ys.begin() + misalign, ys.end()), y_ref, y_naive);

  const auto dy = representable<T>(random_floats(n, 52));
  const auto dx0 = representable<T>(random_floats(n, 53, 0.1f));
  std::vector<T> dys(n + misalign), dxs(n + misalign);
  std::copy_n(stored<T>(dy).begin(), n, dys.begin() + misalign);
  std::copy_n(stored<T>(dx0).begin(), n, dxs.begin() + misalign);
  run([&](auto l) {
    cuda::gelu_backward<T>({xs.data() + misalign, dys.data() + misalign, dxs.data() + misalign,
                            static_cast<long long>(n)},
                           form, l);
  });
  auto dx_ref = widened(dx0);
  rlxf::cpu::gelu_backward<double>(widened(x).data(), widened(dy).data(), dx_ref.data(), n, cpu_form(form));
  auto dx_naive = dx0;
  rlxf::cpu::gelu_backward<float>(x.data(), dy.data(), dx_naive.data(), n, cpu_form(form));
  check_output(name + " bwd", std::vector<T>(dxs.begin() + misalign, dxs.end()), dx_ref, dx_naive);
}

template <class T>
void test_swiglu(std::size_t n, int misalign, bool accumulate) {
  CAPTURE(n);
  CAPTURE(misalign);
  CAPTURE(accumulate);
  const auto gate = representable<T>(activation_inputs(n, 61)), up = representable<T>(random_floats(n, 62));
  std::vector<T> gs(n + misalign), us(n + misalign), ys(n + misalign);
  std::copy_n(stored<T>(gate).begin(), n, gs.begin() + misalign);
  std::copy_n(stored<T>(up).begin(), n, us.begin() + misalign);
  const auto fk = run([&](auto l) {
    cuda::swiglu_forward<T>({gs.data() + misalign, us.data() + misalign, ys.data() + misalign, static_cast<long long>(n)},
                            l);
  });
  CHECK(ran<cuda::SwiGluForward<T, 1>>(fk) == (misalign != 0));
  std::vector<double> y_ref(n);
  rlxf::cpu::swiglu_forward<double>(widened(gate).data(), widened(up).data(), y_ref.data(), n);
  std::vector<float> y_naive(n);
  rlxf::cpu::swiglu_forward<float>(gate.data(), up.data(), y_naive.data(), n);
  check_output("swiglu fwd", std::vector<T>(ys.begin() + misalign, ys.end()), y_ref, y_naive);

  const auto dy = representable<T>(random_floats(n, 63));
  const auto dg0 = representable<T>(random_floats(n, 64, 0.1f)), du0 = representable<T>(random_floats(n, 65, 0.1f));
  std::vector<T> dys(n + misalign), dgs(n + misalign), dus(n + misalign);
  std::copy_n(stored<T>(dy).begin(), n, dys.begin() + misalign);
  std::copy_n(stored<T>(dg0).begin(), n, dgs.begin() + misalign);
  std::copy_n(stored<T>(du0).begin(), n, dus.begin() + misalign);
  run([&](auto l) {
    cuda::swiglu_backward<T>({gs.data() + misalign, us.data() + misalign, dys.data() + misalign, dgs.data() + misalign,
                              dus.data() + misalign, static_cast<long long>(n), accumulate},
                             l);
  });
  const std::vector<float> zeros(n, 0.0f);
  auto dg_ref = widened(accumulate ? dg0 : zeros), du_ref = widened(accumulate ? du0 : zeros);
  rlxf::cpu::swiglu_backward<double>(widened(gate).data(), widened(up).data(), widened(dy).data(), dg_ref.data(),
                                     du_ref.data(), n);
  auto dg_naive = accumulate ? dg0 : zeros, du_naive = accumulate ? du0 : zeros;
  rlxf::cpu::swiglu_backward<float>(gate.data(), up.data(), dy.data(), dg_naive.data(), du_naive.data(), n);
  check_output("swiglu bwd dgate", std::vector<T>(dgs.begin() + misalign, dgs.end()), dg_ref, dg_naive);
  check_output("swiglu bwd dup", std::vector<T>(dus.begin() + misalign, dus.end()), du_ref, du_naive);
}

}  // namespace

TEST_CASE("GELU (tanh and exact) forward / backward match the CPU reference") {
  for (auto form : {cuda::GeluForm::tanh, cuda::GeluForm::exact})
    for (std::size_t n : {1, 7, 33, 768, 1027}) {
      test_gelu<float>(n, form, 0);  // 128-bit vectors, the last n % 4 scalar
      test_gelu<float>(n, form, 1);  // misaligned: scalars
      test_gelu<bf16>(n, form, 0);
      test_gelu<bf16>(n, form, 3);
    }
}

TEST_CASE("SwiGLU forward / backward match the CPU reference") {
  for (std::size_t n : {1, 7, 33, 768, 1027})
    for (bool accumulate : {true, false}) {
      test_swiglu<float>(n, 0, accumulate);
      test_swiglu<float>(n, 1, accumulate);
      test_swiglu<bf16>(n, 0, accumulate);
      test_swiglu<bf16>(n, 5, accumulate);
    }
}

// ---- softmax cross-entropy ----

namespace {

template <class T>
void test_cross_entropy(int N, int vocab, float offset, int misalign_dlogits, bool accumulate, bool per_row_dloss) {
  CAPTURE(N);
  CAPTURE(vocab);
  CAPTURE(offset);
  CAPTURE(misalign_dlogits);
  CAPTURE(accumulate);
  const std::size_t NV = std::size_t(N) * vocab;
  const auto logits = representable<T>(random_floats(NV, 71 + vocab, 2.0f, offset));
  std::vector<std::int32_t> targets(N);
  for (int i = 0; i < N; ++i) targets[i] = (i * 7919 + 3) % vocab;
  if (N >= 3) targets[1] = -100;  // ignored
  const auto ls = stored<T>(logits);
  std::vector<float> losses(N), lse(N);
  const auto fk = run([&](auto l) {
    cuda::cross_entropy_forward<T>({ls.data(), targets.data(), losses.data(), lse.data(), N, vocab}, l);
  });
  CHECK(ran<cuda::CrossEntropyForward<T, cuda::vec128<T>>>(fk));
  std::vector<double> loss_ref(N), lse_ref(N);
  const std::size_t counted = rlxf::cpu::cross_entropy_forward<double>(widened(logits).data(), targets.data(),
                                                                       loss_ref.data(), lse_ref.data(), N, vocab);
  CHECK(counted == static_cast<std::size_t>(N >= 3 ? N - 1 : N));
  // Naive f32: max, sequential sum of exp(x - max), lse = max + log(sum).
  std::vector<float> loss_naive(N), lse_naive(N);
  for (int i = 0; i < N; ++i) {
    const float* row = logits.data() + std::size_t(i) * vocab;
    const float m = *std::max_element(row, row + vocab);
    float s = 0;
    for (int j = 0; j < vocab; ++j) s += std::exp(row[j] - m);
    lse_naive[i] = m + std::log(s);
    loss_naive[i] = targets[i] == -100 ? 0.0f : std::log(s) - (row[targets[i]] - m);
  }
  check_f32("cross-entropy fwd loss", losses, loss_ref, loss_naive);
  check_f32("cross-entropy fwd lse", lse, lse_ref, lse_naive);

  // Backward from the CPU forward's f32 lse.
  std::vector<float> loss32(N), lse32(N);
  rlxf::cpu::cross_entropy_forward<float>(logits.data(), targets.data(), loss32.data(), lse32.data(), N, vocab);
  const auto dlosses = random_floats(N, 72, 0.5f, 1.0f);
  const float dloss = 0.25f;
  const auto d0 = representable<T>(random_floats(NV, 73, 0.01f));
  std::vector<T> ds(NV + misalign_dlogits);
  std::copy_n(stored<T>(d0).begin(), NV, ds.begin() + misalign_dlogits);
  const auto bk = run([&](auto l) {
    cuda::cross_entropy_backward<T>({ls.data(), targets.data(), lse32.data(), per_row_dloss ? dlosses.data() : nullptr,
                                     dloss, ds.data() + misalign_dlogits, N, vocab, -100, accumulate},
                                    l);
  });
  CHECK(ran<cuda::CrossEntropyBackward<T, 1>>(bk) == (misalign_dlogits != 0));
  const std::vector<float> zeros(NV, 0.0f);
  std::vector<float> dl(N, dloss);
  if (per_row_dloss) dl = dlosses;
  auto d_ref = widened(accumulate ? d0 : zeros);
  rlxf::cpu::cross_entropy_backward<double>(widened(logits).data(), targets.data(), widened(lse32).data(),
                                            widened(dl).data(), d_ref.data(), N, vocab);
  auto d_naive = accumulate ? d0 : zeros;
  for (int i = 0; i < N; ++i) {
    if (targets[i] == -100) continue;
    for (int j = 0; j < vocab; ++j) {
      const std::size_t k = std::size_t(i) * vocab + j;
      d_naive[k] += dl[i] * (std::exp(logits[k] - lse32[i]) - (j == targets[i] ? 1.0f : 0.0f));
    }
  }
  check_output("cross-entropy bwd dlogits", std::vector<T>(ds.begin() + misalign_dlogits, ds.end()), d_ref, d_naive);
}

}  // namespace

TEST_CASE("softmax cross-entropy forward / backward match the CPU reference") {
  for (int vocab : {1, 7, 33, 768})
    for (int N : {1, 3, 5}) {
      test_cross_entropy<float>(N, vocab, 0.0f, 0, true, true);
      test_cross_entropy<float>(N, vocab, 0.0f, 1, false, false);
    }
  test_cross_entropy<float>(3, 1000, 1e4f, 0, true, true);  // large logits: the max shift
  test_cross_entropy<float>(2, 50257, 0.0f, 0, true, true);  // GPT-2's vocabulary, 512 threads
  for (int vocab : {7, 768}) {
    test_cross_entropy<bf16>(3, vocab, 0.0f, 0, true, true);
    test_cross_entropy<bf16>(3, vocab, 0.0f, 3, false, true);
  }
}

TEST_CASE("cross-entropy: a target outside the vocabulary gives NaN where the CPU throws") {
  const int N = 2, vocab = 9;
  const auto logits = random_floats(N * vocab, 81);
  const std::vector<std::int32_t> targets{4, 9};
  std::vector<float> losses(N), lse(N), d(N * vocab, 0.0f);
  run([&](auto l) { cuda::cross_entropy_forward<float>({logits.data(), targets.data(), losses.data(), lse.data(), N, vocab}, l); });
  CHECK(std::isfinite(losses[0]));
  CHECK(std::isnan(losses[1]));
  CHECK(std::isfinite(lse[1]));
  run([&](auto l) {
    cuda::cross_entropy_backward<float>({logits.data(), targets.data(), lse.data(), nullptr, 1.0f, d.data(), N, vocab}, l);
  });
  for (int j = 0; j < vocab; ++j) {
    CHECK(std::isfinite(d[j]));
    CHECK(std::isnan(d[vocab + j]));
  }
}

// ---- AdamW ----

TEST_CASE("AdamW update matches optim::AdamW (bias correction, decoupled decay, excluded parameters)") {
  using rlxf::Parameter;
  using rlxf::optim::AdamW;
  using rlxf::optim::AdamWConfig;
  const AdamWConfig cfg{.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  for (std::size_t n : {1, 7, 33, 768, 1027})
    for (int misalign : {0, 1}) {
      CAPTURE(n);
      CAPTURE(misalign);
      // Two parameters: "w" decays, "ln.bias" does not (decay_except_bias_and_norm).
      Parameter<double> w_ref({n}), b_ref({n});
      const auto w0 = random_floats(n, 91), b0 = random_floats(n, 92);
      std::copy(w0.begin(), w0.end(), w_ref.value.begin());
      std::copy(b0.begin(), b0.end(), b_ref.value.begin());
      AdamW<double> ref({{"w", &w_ref}, {"ln.bias", &b_ref}}, cfg, rlxf::optim::decay_except_bias_and_norm);
      REQUIRE(ref.decays(0));
      REQUIRE(!ref.decays(1));
      struct State {
        std::vector<float> p, m, v, g;       // the kernel's (offset by misalign)
        std::vector<float> pn, mn, vn;       // the naive f32 update's
      };
      std::vector<State> s(2);
      for (int k = 0; k < 2; ++k) {
        const auto& init = k == 0 ? w0 : b0;
        s[k].p.assign(n + misalign, 0.0f);
        std::copy(init.begin(), init.end(), s[k].p.begin() + misalign);
        s[k].m.assign(n + misalign, 0.0f);
        s[k].v.assign(n + misalign, 0.0f);
        s[k].g.assign(n + misalign, 0.0f);
        s[k].pn = init;
        s[k].mn.assign(n, 0.0f);
        s[k].vn.assign(n, 0.0f);
      }
      for (std::size_t t = 1; t <= 3; ++t) {
        for (int k = 0; k < 2; ++k) {
          // Gradients of several magnitudes (including near zero, where eps matters).
          auto g = random_floats(n, 100 + 10 * unsigned(t) + unsigned(k), t == 2 ? 1e-4f : 1.0f);
          std::copy(g.begin(), g.end(), s[k].g.begin() + misalign);
          std::copy(g.begin(), g.end(), (k == 0 ? w_ref : b_ref).grad.begin());
          cuda::AdamWParams p = cuda::adamw_params(cfg, t, ref.decays(k));
          p.param = s[k].p.data() + misalign;
          p.grad = s[k].g.data() + misalign;
          p.m = s[k].m.data() + misalign;
          p.v = s[k].v.data() + misalign;
          p.n = static_cast<long long>(n);
          const auto kernels = run([&](auto l) { cuda::adamw_update(p, l); });
          CHECK(ran<cuda::AdamWUpdate<4>>(kernels) == (misalign == 0));
          // Naive f32: the same formula in f32 with f32 constants.
          const float b1 = 0.9f, b2 = 0.95f, lr = 3e-3f, eps = 1e-8f, wd = ref.decays(k) ? 0.1f : 0.0f;
          const float c1 = 1.0f - std::pow(b1, float(t)), c2 = 1.0f - std::pow(b2, float(t));
          for (std::size_t j = 0; j < n; ++j) {
            float& m = s[k].mn[j];
            float& v = s[k].vn[j];
            float& w = s[k].pn[j];
            m = b1 * m + (1.0f - b1) * g[j];
            v = b2 * v + (1.0f - b2) * g[j] * g[j];
            w = w - lr * ((m / c1) / (std::sqrt(v / c2) + eps) + wd * w);
          }
        }
        ref.step();
        for (int k = 0; k < 2; ++k) {
          const std::string which = k == 0 ? "adamw (decay) " : "adamw (no decay) ";
          const auto slice = [&](const std::vector<float>& a) { return std::vector<float>(a.begin() + misalign, a.end()); };
          const auto& rp = (k == 0 ? w_ref : b_ref).value;
          check_f32(which + "param", slice(s[k].p), std::vector<double>(rp.begin(), rp.end()), s[k].pn);
          const auto m_ref = ref.first_moment(std::size_t(k)), v_ref = ref.second_moment(std::size_t(k));
          check_f32(which + "m", slice(s[k].m), std::vector<double>(m_ref.begin(), m_ref.end()), s[k].mn);
          check_f32(which + "v", slice(s[k].v), std::vector<double>(v_ref.begin(), v_ref.end()), s[k].vn);
        }
      }
    }
}

// ---- RoPE ----

namespace {

template <class T>
void test_rope(int N, int H, int D, int stride_factor, bool in_place, int misalign) {
  CAPTURE(N);
  CAPTURE(H);
  CAPTURE(D);
  CAPTURE(stride_factor);
  CAPTURE(in_place);
  CAPTURE(misalign);
  const int max_positions = 4096;
  const auto tables = cuda::rope_tables(D, max_positions);
  std::vector<std::int32_t> positions(N);
  for (int n = 0; n < N; ++n) positions[n] = n == 0 ? 0 : n == 1 ? 4095 : 17 * n + 3;
  const std::size_t HD = std::size_t(H) * D, stride = HD * stride_factor;
  const auto x = representable<T>(random_floats(std::size_t(N) * HD, 201 + D));
  // x sits in the first H * D elements of each token's `stride` (a fused projection).
  std::vector<T> xs(N * stride + misalign, cuda::from_float<T>(0.0f)), ys(N * stride + misalign, cuda::from_float<T>(0.0f));
  for (int n = 0; n < N; ++n)
    for (std::size_t c = 0; c < HD; ++c) xs[misalign + n * stride + c] = cuda::from_float<T>(x[n * HD + c]);
  for (bool inverse : {false, true}) {
    CAPTURE(inverse);
    std::vector<T> in = xs;
    std::vector<T>& out = in_place ? in : ys;
    const cuda::RopeParams<T> p{in.data() + misalign, out.data() + misalign, positions.data(), tables.cos.data(),
                                tables.sin.data(), N, H, D, max_positions, (long long)stride, (long long)stride, inverse};
    const auto kernels = run([&](auto l) { cuda::rope<T>(p, l); });
    constexpr int V = cuda::vec128<T>;
    CHECK(ran<cuda::Rope<T, (V)>>(kernels) == (D / 2 % V == 0 && misalign == 0));
    std::vector<double> ref = widened(x);
    std::vector<float> naive = x;
    if (inverse) {
      rlxf::cpu::rope_backward<double>(ref.data(), positions.data(), N, H, D);
      rlxf::cpu::rope_backward<float>(naive.data(), positions.data(), N, H, D);
    } else {
      rlxf::cpu::rope_forward<double>(ref.data(), positions.data(), N, H, D);
      rlxf::cpu::rope_forward<float>(naive.data(), positions.data(), N, H, D);
    }
    std::vector<T> got(std::size_t(N) * HD);
    for (int n = 0; n < N; ++n)
      for (std::size_t c = 0; c < HD; ++c) got[n * HD + c] = out[misalign + n * stride + c];
    check_output(inverse ? "rope bwd" : "rope fwd", got, ref, naive);
    // Outside each token's H * D elements nothing is written.
    for (int n = 0; n < N; ++n)
      for (std::size_t c = HD; c < stride; ++c) CHECK(cuda::to_float(out[misalign + n * stride + c]) == 0.0f);
  }
}

}  // namespace

TEST_CASE("RoPE forward / backward match the CPU reference (rotate_half, positions up to 4095)") {
  for (int D : {2, 6, 64, 128})
    for (int N : {1, 3, 5}) {
      test_rope<float>(N, 2, D, 1, false, 0);
      test_rope<float>(N, 3, D, 3, true, 0);  // in place inside a fused (N, 3, H, D) buffer
      test_rope<float>(N, 2, D, 1, false, 1);
    }
  for (int D : {6, 64}) {
    test_rope<bf16>(3, 2, D, 1, false, 0);
    test_rope<bf16>(3, 2, D, 3, true, 0);
  }
}

TEST_CASE("RoPE: a position outside the table gives NaN, the other tokens are rotated") {
  const int N = 2, H = 1, D = 8;
  const auto tables = cuda::rope_tables(D, 16);
  const std::vector<std::int32_t> positions{5, 16};
  const auto x = random_floats(N * D, 211);
  std::vector<float> y(N * D);
  run([&](auto l) {
    cuda::rope<float>({x.data(), y.data(), positions.data(), tables.cos.data(), tables.sin.data(), N, H, D, 16}, l);
  });
  for (int c = 0; c < D; ++c) {
    CHECK(std::isfinite(y[c]));
    CHECK(std::isnan(y[D + c]));
  }
}

TEST_CASE("elementwise dispatch refuses bad arguments before launching") {
  const auto never = [](auto, const cuda::LaunchConfig&, const auto&) { FAIL("launched"); };
  float x = 0;
  CHECK_THROWS_AS(cuda::layernorm_forward<float>({&x, &x, nullptr, &x, nullptr, nullptr, 1, 0}, never), rlxf::Error);
  CHECK_THROWS_AS(cuda::rmsnorm_backward<float>({}, never), rlxf::Error);
  CHECK_THROWS_AS(cuda::rope<float>({&x, &x, nullptr, &x, &x, 1, 1, 3, 1}, never), rlxf::Error);
  CHECK_THROWS_AS(cuda::rope_tables(5, 4), rlxf::Error);
  CHECK_THROWS_AS(cuda::adamw_params(rlxf::optim::AdamWConfig{}, 0, true), rlxf::Error);
  // Empty problems launch nothing.
  cuda::gelu_forward<float>({&x, &x, 0}, cuda::GeluForm::tanh, never);
  cuda::cross_entropy_forward<float>({nullptr, nullptr, nullptr, nullptr, 0, 10}, never);
}
