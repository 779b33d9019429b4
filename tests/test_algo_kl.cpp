// rlxf::algo KL estimators (k1, k2, k3, OpenRLHF's clamp) and KL controllers. Values by hand
// and against NumPy (tests/fixtures/algo/kl.json, written by tools/make_algo_fixtures.py,
// agreement 1e-10 in double), derivatives against 4th-order finite differences
// (tests/gradcheck.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "error_of.hpp"
#include "gradcheck.hpp"
#include "rlxf/algo/kl.hpp"
#include "rlxf/algo/kl_controller.hpp"

using namespace rlxf::algo;
using rlxf::test::check_gradient;
using rlxf::test::error_of;
using rlxf::test::random_normal;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

nlohmann::json load_fixture(const std::string& name) {
  const auto path = std::filesystem::path(RLXF_TEST_FIXTURES) / "algo" / name;
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing fixture ", path.string());
  return nlohmann::json::parse(in);
}

template <class T>
std::span<const T> cs(const std::vector<T>& v) {
  return std::span<const T>(v);
}

// |got - want| <= tol max(1, |want|) entry by entry.
void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-10) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("entry ", i, ": got ", got[i], ", want ", want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * std::max(1.0, std::abs(want[i])));
  }
}
bool close(double got, double want, double tol = 1e-10) {
  return std::abs(got - want) <= tol * std::max(1.0, std::abs(want));
}

KlEstimator estimator_named(const std::string& s) {
  return s == "k1" ? KlEstimator::k1 : s == "k2" ? KlEstimator::k2 : KlEstimator::k3;
}

}  // namespace

TEST_CASE("KL estimators by hand: k1 = lr, k2 = lr^2 / 2, k3 = e^{-lr} - 1 + lr") {
  const double lr = 0.5;
  CHECK(kl_estimate(lr, KlEstimator::k1) == 0.5);
  CHECK(kl_estimate(lr, KlEstimator::k2) == 0.125);
  CHECK(kl_estimate(lr, KlEstimator::k3) == doctest::Approx(std::exp(-0.5) - 0.5).epsilon(1e-15));
  CHECK(kl_estimate_derivative(lr, KlEstimator::k1) == 1.0);
  CHECK(kl_estimate_derivative(lr, KlEstimator::k2) == 0.5);
  CHECK(kl_estimate_derivative(lr, KlEstimator::k3) == doctest::Approx(1 - std::exp(-0.5)).epsilon(1e-15));
  // k3 >= 0, 0 at lr = 0, and accurate for tiny lr (~lr^2 / 2): expm1, no cancellation
  CHECK(kl_estimate(0.0, KlEstimator::k3) == 0.0);
  CHECK(kl_estimate(1e-9, KlEstimator::k3) == doctest::Approx(0.5e-18).epsilon(1e-6));
  CHECK(kl_estimate(-3.0, KlEstimator::k3) > 0);
}

TEST_CASE("token_kl: masked, clamped to [-10, 10] with zero derivative there (OpenRLHF)") {
  const std::vector<double> logp = {0.0, -1.0, -2.0, 0.0, -5.0};
  const std::vector<double> ref = {-0.5, -16.0, 10.0, 0.0, -5.0};  // lr = 0.5, 15, -12, 0, 0
  const std::vector<std::uint8_t> mask = {1, 1, 1, 1, 0};
  std::vector<double> kl(5), d(5);
  token_kl(cs(logp), cs(ref), mask, std::span<double>(kl), std::span<double>(d),
           KlOptions{.estimator = KlEstimator::k1, .clamp = true});
  CHECK(kl == std::vector<double>{0.5, 10.0, -10.0, 0.0, 0.0});
  CHECK(d == std::vector<double>{1.0, 0.0, 0.0, 1.0, 0.0});
  token_kl(cs(logp), cs(ref), mask, std::span<double>(kl), std::span<double>(d), KlOptions{.estimator = KlEstimator::k2});
  CHECK(kl == std::vector<double>{0.125, 112.5, 72.0, 0.0, 0.0});
  CHECK(d == std::vector<double>{0.5, 15.0, -12.0, 0.0, 0.0});
}

TEST_CASE("token_kl: derivative matches 4th-order finite differences (k1, k2, k3)") {
  const std::size_t N = 20;
  auto logp = random_normal(N, 11, 1.0);
  const auto ref = random_normal(N, 12, 1.0);
  std::vector<std::uint8_t> mask(N, 1);
  mask[3] = mask[7] = 0;
  for (auto e : {KlEstimator::k1, KlEstimator::k2, KlEstimator::k3}) {
    std::vector<double> kl(N), d(N), wts = random_normal(N, 13);
    token_kl(cs(logp), cs(ref), mask, std::span<double>(kl), std::span<double>(d), KlOptions{.estimator = e});
    std::vector<double> g(N);
    for (std::size_t i = 0; i < N; ++i) g[i] = d[i] * wts[i];
    const auto r = check_gradient(std::span<double>(logp), g, [&] {
      std::vector<double> k(N);
      token_kl(cs(logp), cs(ref), mask, std::span<double>(k), std::span<double>{}, KlOptions{.estimator = e});
      return rlxf::test::weighted_sum(k, wts);
    });
    CHECK(r.max_error < 1e-6);
  }
}

TEST_CASE("token_kl and mean_sequence_kl agree with NumPy (fixture)") {
  const auto fx = load_fixture("kl.json");
  const auto B = fx["B"].get<std::size_t>(), T = fx["T"].get<std::size_t>();
  const auto logp = fx["logp"].get<std::vector<double>>();
  const auto ref = fx["ref_logp"].get<std::vector<double>>();
  const auto mask = fx["mask"].get<std::vector<std::uint8_t>>();
  REQUIRE(fx["cases"].size() == 6);
  for (const auto& c : fx["cases"]) {
    INFO(c["estimator"].get<std::string>(), " clamp ", c["clamp"].get<bool>());
    std::vector<double> kl(B * T), d(B * T);
    token_kl(cs(logp), cs(ref), mask, std::span<double>(kl), std::span<double>(d),
             KlOptions{.estimator = estimator_named(c["estimator"]), .clamp = c["clamp"].get<bool>()});
    check_close(kl, c["kl"].get<std::vector<double>>());
    check_close(d, c["dkl_dlogp"].get<std::vector<double>>());
    CHECK(close(mean_sequence_kl(cs(kl), mask, B, T), c["mean_sequence_kl"].get<double>()));
  }
}

TEST_CASE("token_kl: float agrees with double") {
  const std::size_t N = 16;
  const auto logp = random_normal(N, 21), ref = random_normal(N, 22);
  std::vector<float> lf(logp.begin(), logp.end()), rf(ref.begin(), ref.end()), kf(N), df(N);
  std::vector<double> kd(N), dd(N);
  token_kl(cs(logp), cs(ref), {}, std::span<double>(kd), std::span<double>(dd), KlOptions{.estimator = KlEstimator::k3});
  token_kl<float>(lf, rf, {}, kf, df, KlOptions{.estimator = KlEstimator::k3});
  CHECK(rlxf::test::max_relative_difference(kf, kd, 1e-3) < 1e-5);
  CHECK(rlxf::test::max_relative_difference(df, dd, 1e-3) < 1e-5);
}

TEST_CASE("token_kl and mean_sequence_kl validate sizes, masks and NaN") {
  const std::vector<double> a = {0, 1, 2, 3}, b = {0, 1, 2};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> out(4);
  CHECK(contains(error_of([&] { token_kl(cs(a), cs(b), {}, std::span<double>(out), std::span<double>{}); }),
                 "token_kl: ref_logp has 3 entries"));
  const std::vector<double> bad = {0, nan, 2, 3};
  CHECK(contains(error_of([&] { token_kl(cs(bad), cs(a), {}, std::span<double>(out), std::span<double>{}); }),
                 "token_kl: logp[1] = nan is not finite"));
  // a NaN under mask 0 is never read
  const std::vector<std::uint8_t> m = {1, 0, 1, 1};
  CHECK(error_of([&] { token_kl(cs(bad), cs(a), m, std::span<double>(out), std::span<double>{}); }).empty());
  CHECK(out[1] == 0.0);
  const std::vector<std::uint8_t> m2 = {1, 2, 1, 1};
  CHECK(contains(error_of([&] { token_kl(cs(a), cs(a), m2, std::span<double>(out), std::span<double>{}); }),
                 "mask[1] = 2, expected 0 or 1"));
  CHECK(contains(error_of([&] { mean_sequence_kl(cs(bad), {}, 2, 2); }), "mean_sequence_kl: kl[0, 1] = nan"));
  CHECK(contains(error_of([&] { mean_sequence_kl(cs(a), {}, 3, 2); }), "kl has 4 entries, expected (B, L) = 6"));
}

TEST_CASE("AdaptiveKlController: one Ziegler step by hand, the fixture's steps, and its state") {
  AdaptiveKlController c;  // init 0.2, target 6, horizon 10000
  CHECK(c.value() == 0.2);
  // KL 8 over target 6: e = 8/6 - 1 = 1/3, clipped to 0.2; n = 64: beta = 0.2 (1 + 0.2 * 64 / 1e4)
  CHECK(c.update(8.0, 64) == doctest::Approx(0.2 * 1.00128).epsilon(1e-15));
  // KL 4.5: e = -0.25 -> -0.2, n = 100: factor 1 - 0.002
  AdaptiveKlController d(AdaptiveKlOptions{.init = 1.0, .target = 6.0, .horizon = 10000});
  d.update(4.5, 100);
  CHECK(d.value() == doctest::Approx(0.998).epsilon(1e-15));
  // KL 6.6: e = 0.1 (inside the clip), n = 1000: factor 1.01
  d.update(6.6, 1000);
  CHECK(d.value() == doctest::Approx(0.998 * 1.01).epsilon(1e-14));

  const auto fx = load_fixture("kl.json")["adaptive"];
  AdaptiveKlController e(AdaptiveKlOptions{.init = fx["init"], .target = fx["target"], .horizon = fx["horizon"]});
  for (const auto& s : fx["steps"]) {
    e.update(s["observed_kl"].get<double>(), s["n"].get<std::size_t>());
    CHECK(close(e.value(), s["value"].get<double>(), 1e-14));
  }
  // the state round-trips and continues identically
  const KlControllerState st = e.state();
  CHECK(st.adaptive);
  auto f = AdaptiveKlController::from_state(st);
  CHECK(f.value() == e.value());
  CHECK(f.update(7.0, 32) == e.update(7.0, 32));
  CHECK(contains(error_of([&] { FixedKlController::from_state(st); }), "adaptive controller's"));
  CHECK(contains(error_of([&] { e.update(std::numeric_limits<double>::quiet_NaN(), 1); }), "observed_kl = nan"));
  CHECK(contains(error_of([] { AdaptiveKlController(AdaptiveKlOptions{.target = 0}); }), "target = 0"));
}

TEST_CASE("FixedKlController: constant value, state round trip") {
  FixedKlController c;  // TRL kl_coef 0.05
  CHECK(c.value() == 0.05);
  c.update(100.0, 1000);
  CHECK(c.value() == 0.05);
  const auto s = FixedKlController(0.01).state();
  CHECK(!s.adaptive);
  CHECK(FixedKlController::from_state(s).value() == 0.01);
  CHECK(contains(error_of([] { FixedKlController(-1.0); }), "beta = -1"));
  CHECK(contains(error_of([&] { AdaptiveKlController::from_state(s); }), "fixed controller's"));
}
