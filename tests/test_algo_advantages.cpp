// rlxf::algo rewards and advantages: PPO token rewards, GAE, discounted returns, masked
// whitening, running moments, GRPO group advantages and the RLOO baseline. Values by hand and
// against NumPy (tests/fixtures/algo/advantages.json, written by tools/make_algo_fixtures.py,
// agreement 1e-10 in double).
#include <doctest/doctest.h>

#include <algorithm>
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
#include "rlxf/algo/advantages.hpp"

using namespace rlxf::algo;
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
std::span<double> sp(std::vector<double>& v) { return std::span<double>(v); }

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
std::vector<double> vec(const nlohmann::json& j) { return j.get<std::vector<double>>(); }
std::vector<std::uint8_t> mask_of(const nlohmann::json& j) { return j.get<std::vector<std::uint8_t>>(); }

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

// ---------------------------------------------------------------------------------------
// PPO token rewards
// ---------------------------------------------------------------------------------------

TEST_CASE("ppo_token_rewards: -beta kl on valid tokens, the score on the LAST valid token") {
  // B = 2, L = 4; row 0 has 3 valid tokens, row 1 has 4
  const std::vector<double> kl = {0.1, 0.2, 0.3, 9.0, 0.4, -0.2, 0.0, 0.5};
  const std::vector<double> scores = {1.0, -2.0};
  const std::vector<std::uint8_t> mask = {1, 1, 1, 0, 1, 1, 1, 1};
  std::vector<double> r(8);
  const auto st = ppo_token_rewards(cs(kl), cs(scores), mask, 0.5, sp(r), 2, 4);
  check_close(r, {-0.05, -0.1, -0.15 + 1.0, 0.0, -0.2, 0.1, 0.0, -0.25 - 2.0}, 1e-15);
  CHECK(st.kl == doctest::Approx((0.6 + 0.7) / 2).epsilon(1e-15));
  CHECK(st.non_score_reward == doctest::Approx(-0.5 * 1.3 / 2).epsilon(1e-15));
  CHECK(st.scores == -0.5);
  CHECK(st.rlhf_reward == doctest::Approx(-0.5 - 0.325).epsilon(1e-15));
  // the missing-EOS penalty is the caller's, on the scores
  std::vector<double> s2 = scores;
  apply_missing_eos_penalty(sp(s2), std::vector<std::uint8_t>{1, 0}, 1.0);
  CHECK(s2 == std::vector<double>{1.0, -3.0});
}

TEST_CASE("ppo_token_rewards agrees with NumPy (fixture) and rejects bad rows") {
  const auto fx = load_fixture("advantages.json")["token_rewards"];
  const auto B = fx["B"].get<std::size_t>(), T = fx["T"].get<std::size_t>();
  const auto kl = vec(fx["kl"]), scores = vec(fx["scores"]);
  const auto mask = mask_of(fx["mask"]);
  std::vector<double> r(B * T);
  const auto st = ppo_token_rewards(cs(kl), cs(scores), mask, fx["beta"].get<double>(), sp(r), B, T);
  check_close(r, vec(fx["rewards"]));
  CHECK(close(st.kl, fx["stat_kl"]));
  CHECK(close(st.non_score_reward, fx["non_score_reward"]));
  CHECK(close(st.scores, fx["stat_scores"]));
  CHECK(close(st.rlhf_reward, fx["rlhf_reward"]));

  const std::vector<double> k4 = {0, 0, 0, 0}, s2 = {1, 1};
  std::vector<double> out(4);
  CHECK(contains(error_of([&] { ppo_token_rewards(cs(k4), cs(s2), std::vector<std::uint8_t>{1, 1, 0, 0}, 0.1, sp(out), 2, 2); }),
                 "row 1 has no valid response token"));
  CHECK(contains(error_of([&] { ppo_token_rewards(cs(k4), cs(s2), std::vector<std::uint8_t>{1, 1, 0, 0}, 0.1, sp(out), 1, 4); }),
                 "scores has 2 entries, expected (B) = 1"));
  const std::vector<double> s_nan = {1, kNaN};
  CHECK(contains(error_of([&] { ppo_token_rewards(cs(k4), cs(s_nan), std::vector<std::uint8_t>{1, 1, 1, 1}, 0.1, sp(out), 2, 2); }),
                 "ppo_token_rewards: scores[1] = nan is not finite"));
  const std::vector<double> k_nan = {0, 0, kNaN, 0};
  CHECK(contains(error_of([&] { ppo_token_rewards(cs(k_nan), cs(s2), std::vector<std::uint8_t>{1, 1, 1, 1}, 0.1, sp(out), 2, 2); }),
                 "kl[1, 0] = nan"));
}

// ---------------------------------------------------------------------------------------
// GAE
// ---------------------------------------------------------------------------------------

TEST_CASE("gae: gamma = lambda = 1 gives reward-to-go minus V, lambda = 0 gives the TD error") {
  // B = 2, L = 4; row 0 valid at t = 0..2, row 1 valid at t = 1..3 (a prompt token first)
  const std::vector<double> r = {1.0, 2.0, 3.0, 0.0, 0.0, -1.0, 0.5, 4.0};
  const std::vector<double> v = {0.5, -0.25, 1.0, 7.0, 9.0, 0.1, 0.2, 0.3};
  const std::vector<std::uint8_t> m = {1, 1, 1, 0, 0, 1, 1, 1};
  std::vector<double> a(8), ret(8);
  gae(cs(r), cs(v), m, sp(a), sp(ret), 2, 4, GaeOptions{.gamma = 1.0, .lambda = 1.0});
  // reward-to-go: row 0: 6, 5, 3; row 1: 3.5, 4.5, 4
  check_close(a, {6 - 0.5, 5 + 0.25, 3 - 1.0, 0, 0, 3.5 - 0.1, 4.5 - 0.2, 4 - 0.3}, 1e-15);
  check_close(ret, {6, 5, 3, 0, 0, 3.5, 4.5, 4}, 1e-15);  // returns = A + V = reward-to-go
  gae(cs(r), cs(v), m, sp(a), sp(ret), 2, 4, GaeOptions{.gamma = 0.9, .lambda = 0.0});
  // delta_t = r_t + 0.9 V_{t+1} - V_t, V = 0 past the end
  check_close(a, {1 + 0.9 * -0.25 - 0.5, 2 + 0.9 * 1.0 + 0.25, 3 - 1.0, 0, 0, -1 + 0.9 * 0.2 - 0.1, 0.5 + 0.9 * 0.3 - 0.2,
                  4 - 0.3},
              1e-15);
  // gamma 0.5, lambda 0.5 on row 0 by hand: deltas d2 = 2, d1 = 2 + 0.5 - (-0.25) = 2.75,
  // d0 = 1 - 0.125 - 0.5 = 0.375; A2 = 2, A1 = 2.75 + 0.25 * 2 = 3.25, A0 = 0.375 + 0.25 * 3.25
  gae(cs(r), cs(v), m, sp(a), sp(ret), 2, 4, GaeOptions{.gamma = 0.5, .lambda = 0.5});
  CHECK(a[2] == 2.0);
  CHECK(a[1] == 3.25);
  CHECK(a[0] == 0.375 + 0.25 * 3.25);
  CHECK(ret[0] == a[0] + 0.5);
}

TEST_CASE("gae and discounted_returns agree with NumPy (fixture)") {
  const auto fx = load_fixture("advantages.json");
  const auto g = fx["gae"];
  const auto B = g["B"].get<std::size_t>(), T = g["T"].get<std::size_t>();
  const auto r = vec(g["rewards"]), v = vec(g["values"]);
  const auto m = mask_of(g["mask"]);
  REQUIRE(g["cases"].size() == 4);
  for (const auto& c : g["cases"]) {
    INFO("gamma ", c["gamma"].get<double>(), " lambda ", c["lambda"].get<double>());
    std::vector<double> a(B * T, 99.0), ret(B * T, 99.0);
    gae(cs(r), cs(v), m, sp(a), sp(ret), B, T, GaeOptions{.gamma = c["gamma"], .lambda = c["lambda"]});
    check_close(a, vec(c["advantages"]));
    check_close(ret, vec(c["returns"]));
  }
  std::vector<double> d(B * T);
  discounted_returns(cs(r), m, sp(d), B, T, fx["discounted"]["gamma"].get<double>());
  check_close(d, vec(fx["discounted"]["out"]));
}

TEST_CASE("gae validates: holes in a mask, gamma, lambda, NaN") {
  const std::vector<double> r = {1, 2, 3, 4}, v = {0, 0, 0, 0};
  std::vector<double> a(4);
  CHECK(contains(error_of([&] { gae(cs(r), cs(v), std::vector<std::uint8_t>{1, 0, 1, 0}, sp(a), std::span<double>{}, 1, 4); }),
                 "row 0 of mask has a hole at t = 1"));
  CHECK(contains(error_of([&] { gae(cs(r), cs(v), std::vector<std::uint8_t>{1, 1, 1, 1}, sp(a), std::span<double>{}, 1, 4,
                                    GaeOptions{.gamma = 1.5}); }),
                 "gamma = 1.5"));
  CHECK(contains(error_of([&] { gae(cs(r), cs(v), std::vector<std::uint8_t>{1, 1, 1, 1}, sp(a), std::span<double>{}, 1, 4,
                                    GaeOptions{.lambda = -0.1}); }),
                 "lambda = -0.1"));
  const std::vector<double> vn = {0, 0, kNaN, 0};
  CHECK(contains(error_of([&] { gae(cs(r), cs(vn), std::vector<std::uint8_t>{1, 1, 1, 1}, sp(a), std::span<double>{}, 2, 2); }),
                 "gae: values[1, 0] = nan is not finite"));
  CHECK(contains(error_of([&] { gae(cs(r), cs(v), std::vector<std::uint8_t>{1, 1, 1}, sp(a), std::span<double>{}, 2, 2); }),
                 "gae: mask has 3 entries, expected (B, L) = 4"));
  // an all-pad row is allowed and gives zeros
  CHECK(error_of([&] { gae(cs(r), cs(v), std::vector<std::uint8_t>{1, 1, 0, 0}, sp(a), std::span<double>{}, 2, 2); }).empty());
  CHECK(a[2] == 0.0);
  CHECK(a[3] == 0.0);
}

// ---------------------------------------------------------------------------------------
// Whitening
// ---------------------------------------------------------------------------------------

TEST_CASE("masked_whiten: mean 0, (unbiased) variance 1 over masked entries, pads zero") {
  const std::size_t N = 30;
  const auto x = random_normal(N, 5, 3.0);
  std::vector<std::uint8_t> m(N, 1);
  for (std::size_t i = 0; i < N; i += 4) m[i] = 0;
  for (bool unbiased : {true, false}) {
    std::vector<double> w(N);
    masked_whiten(cs(x), m, sp(w), WhitenOptions{.unbiased = unbiased, .eps = 0});
    double s = 0, ss = 0, n = 0;
    for (std::size_t i = 0; i < N; ++i) {
      if (!m[i]) {
        CHECK(w[i] == 0.0);
        continue;
      }
      s += w[i];
      ss += w[i] * w[i];
      n += 1;
    }
    CHECK(std::abs(s / n) < 1e-14);
    CHECK(ss / (unbiased ? n - 1 : n) == doctest::Approx(1.0).epsilon(1e-13));
  }
  // shift_mean = false keeps the mean: (x - mean) / std + mean
  std::vector<double> y = {1.0, 3.0}, wy(2);
  const auto st = masked_whiten(cs(y), {}, sp(wy), WhitenOptions{.shift_mean = false, .unbiased = false, .eps = 0});
  CHECK(st.mean == 2.0);
  CHECK(st.var == 1.0);
  CHECK(wy == std::vector<double>{1.0, 3.0});
  // in place
  masked_whiten(cs(y), {}, sp(y), WhitenOptions{.eps = 0});
  CHECK(y[0] == doctest::Approx(-std::sqrt(0.5)).epsilon(1e-15));
}

TEST_CASE("masked_whiten agrees with NumPy (fixture) and validates") {
  const auto fx = load_fixture("advantages.json")["whiten"];
  const auto x = vec(fx["x"]);
  const auto m = mask_of(fx["mask"]);
  REQUIRE(fx["cases"].size() == 4);
  for (const auto& c : fx["cases"]) {
    std::vector<double> w(x.size());
    const auto st = masked_whiten(cs(x), m, sp(w), WhitenOptions{.shift_mean = c["shift_mean"], .unbiased = c["unbiased"]});
    check_close(w, vec(c["out"]));
    CHECK(close(st.mean, c["mean"]));
    CHECK(close(st.var, c["var"]));
  }
  std::vector<double> w(x.size());
  std::vector<std::uint8_t> one(x.size(), 0);
  one[3] = 1;
  CHECK(contains(error_of([&] { masked_whiten(cs(x), one, sp(w)); }), "only 1 valid entries"));
  CHECK(error_of([&] { masked_whiten(cs(x), one, sp(w), WhitenOptions{.unbiased = false}); }).empty());
  std::vector<double> xn = x;
  xn[0] = kNaN;
  CHECK(contains(error_of([&] { masked_whiten(cs(xn), {}, sp(w)); }), "masked_whiten: x[0] = nan"));
}

// ---------------------------------------------------------------------------------------
// Running moments
// ---------------------------------------------------------------------------------------

TEST_CASE("RunningMoments agrees with NumPy over the concatenation of batches (fixture)") {
  const auto fx = load_fixture("advantages.json")["running_moments"];
  RunningMoments rm;
  for (const auto& s : fx["steps"]) {
    rm.update(cs(vec(s["batch"])));
    CHECK(rm.count() == s["count"].get<std::uint64_t>());
    CHECK(close(rm.mean(), s["mean"]));
    CHECK(close(rm.population_variance(), s["population_var"]));
    if (!s["var"].is_null()) CHECK(close(rm.variance(), s["var"]));
  }
  const auto probe = vec(fx["probe"]);
  std::vector<double> out(probe.size());
  rm.normalize(cs(probe), sp(out));
  check_close(out, vec(fx["normalized"]));
  rm.normalize(cs(probe), sp(out), false);
  check_close(out, vec(fx["scaled"]));
  // state round trip
  const auto r2 = RunningMoments::from_state(rm.state());
  CHECK(r2.mean() == rm.mean());
  CHECK(r2.variance() == rm.variance());
}

TEST_CASE("RunningMoments: merge order does not matter, validation") {
  const auto a = random_normal(7, 1, 2.0), b = random_normal(11, 2, 5.0);
  RunningMoments x, y, z;
  x.update(cs(a));
  x.update(cs(b));
  y.update(cs(b));
  z.update(cs(a));
  y.merge(z.state());
  CHECK(x.count() == 18);
  CHECK(x.mean() == doctest::Approx(y.mean()).epsilon(1e-14));
  CHECK(x.variance() == doctest::Approx(y.variance()).epsilon(1e-14));
  RunningMoments e;
  CHECK(contains(error_of([&] { (void)e.variance(); }), "count = 0"));
  e.update(cs(std::vector<double>{1.0}));
  CHECK(e.population_variance() == 0.0);
  CHECK(contains(error_of([&] { e.update(cs(std::vector<double>{1.0, kNaN})); }), "update: xs[1] = nan"));
  CHECK(contains(error_of([] { RunningMoments::from_state({0, 1.0, 0.0}); }), "count 0"));
}

// ---------------------------------------------------------------------------------------
// GRPO and RLOO advantages
// ---------------------------------------------------------------------------------------

TEST_CASE("grpo_advantages: (r - mean) / (Bessel std + 1e-4) per group, by hand and vs NumPy") {
  // one group {1, 0, 1, 1}: mean 0.75, unbiased std sqrt(0.75 / 3) = 0.5
  const std::vector<double> r = {1, 0, 1, 1};
  std::vector<double> a(4);
  grpo_advantages(cs(r), sp(a), 4);
  check_close(a, {0.25 / 0.5001, -0.75 / 0.5001, 0.25 / 0.5001, 0.25 / 0.5001}, 1e-15);
  // all-equal group: advantages 0 (std 0 + eps)
  grpo_advantages(cs(std::vector<double>{2, 2, 2, 2}), sp(a), 4);
  CHECK(a == std::vector<double>{0, 0, 0, 0});

  const auto fx = load_fixture("advantages.json")["grpo"];
  const auto G = fx["G"].get<std::size_t>();
  const auto rr = vec(fx["rewards"]);
  std::vector<double> out(rr.size());
  grpo_advantages(cs(rr), sp(out), G);
  check_close(out, vec(fx["group"]));
  grpo_advantages(cs(rr), sp(out), G, GroupAdvantageOptions{.scale = GroupScale::batch});
  check_close(out, vec(fx["batch"]));
  grpo_advantages(cs(rr), sp(out), G, GroupAdvantageOptions{.scale = GroupScale::none});
  check_close(out, vec(fx["none"]));

  CHECK(contains(error_of([&] { grpo_advantages(cs(rr), sp(out), 5); }), "not a positive multiple of G = 5"));
  CHECK(contains(error_of([&] { grpo_advantages(cs(rr), sp(out), 1); }), "G = 1"));
  std::vector<double> rn = rr;
  rn[2] = kNaN;
  CHECK(contains(error_of([&] { grpo_advantages(cs(rn), sp(out), G); }), "rewards[2] = nan"));
}

TEST_CASE("rloo_advantages: r_i minus the mean of the others, closed form and vs NumPy") {
  // group {1, 2, 6}: baselines (8/2, 7/2, 3/2) -> A = (-3, -1.5, 4.5); A_i = G/(G-1) (r_i - mean)
  const std::vector<double> r = {1, 2, 6, 0, 4, 2};
  std::vector<double> a(6);
  rloo_advantages(cs(r), sp(a), 3);
  check_close(a, {-3.0, -1.5, 4.5, -3.0, 3.0, 0.0}, 1e-15);
  // k = 2: A = (r1 - r2, r2 - r1)
  rloo_advantages(cs(std::vector<double>{0.3, 1.0}), std::span<double>(a.data(), 2), 2);
  CHECK(a[0] == doctest::Approx(-0.7).epsilon(1e-15));
  CHECK(a[1] == doctest::Approx(0.7).epsilon(1e-15));

  const auto fx = load_fixture("advantages.json");
  const auto rr = vec(fx["rloo"]["rewards"]);
  std::vector<double> out(rr.size());
  rloo_advantages(cs(rr), sp(out), fx["rloo"]["G"].get<std::size_t>());
  check_close(out, vec(fx["rloo"]["advantages"]));
  CHECK(contains(error_of([&] { rloo_advantages(cs(rr), sp(out), 1); }), "G = 1"));

  // RLOO's reward with the KL in it
  const auto tr = fx["token_rewards"];
  const auto B = tr["B"].get<std::size_t>(), T = tr["T"].get<std::size_t>();
  std::vector<double> seq(B);
  kl_penalised_sequence_rewards(cs(vec(tr["scores"])), cs(vec(tr["kl"])), mask_of(tr["mask"]),
                                fx["kl_penalised_sequence_rewards"]["beta"].get<double>(), sp(seq), B, T);
  check_close(seq, vec(fx["kl_penalised_sequence_rewards"]["out"]));
}

TEST_CASE("advantages: float agrees with double") {
  const std::size_t B = 3, T = 5;
  const auto r = random_normal(B * T, 31), v = random_normal(B * T, 32);
  const std::vector<std::uint8_t> m = {1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0};
  std::vector<double> ad(B * T), rd(B * T);
  gae(cs(r), cs(v), m, sp(ad), sp(rd), B, T);
  std::vector<float> rf(r.begin(), r.end()), vf(v.begin(), v.end()), af(B * T), retf(B * T);
  gae<float>(rf, vf, m, af, retf, B, T);
  CHECK(rlxf::test::max_relative_difference(af, ad, 1e-3) < 1e-5);
  CHECK(rlxf::test::max_relative_difference(retf, rd, 1e-3) < 1e-5);
}
