// rlxf::algo losses: PPO clipped surrogate and value loss, categorical entropy, DPO / cDPO /
// IPO, GRPO (three aggregations) and RLOO. Values by hand and against NumPy
// (tests/fixtures/algo/losses.json, written by tools/make_algo_fixtures.py, agreement 1e-10 in
// double), gradients against 4th-order finite differences (tests/gradcheck.hpp: max relative
// error < 1e-6).
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
#include "rlxf/algo/losses.hpp"

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
std::span<double> sp(std::vector<double>& v) { return std::span<double>(v); }
constexpr std::span<double> none{};

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

LossAggregation aggregation_named(const std::string& s) {
  return s == "token_mean" ? LossAggregation::token_mean
         : s == "sequence_mean" ? LossAggregation::sequence_mean
                                : LossAggregation::fixed_length;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A ragged right-padded (B, L) mask: row b has L - (b % L) valid tokens, at least 1.
std::vector<std::uint8_t> ragged(std::size_t B, std::size_t L) {
  std::vector<std::uint8_t> m(B * L, 0);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < std::max<std::size_t>(L - b % L, 1); ++t) m[b * L + t] = 1;
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// PPO clipped surrogate
// ---------------------------------------------------------------------------------------

TEST_CASE("ppo_policy_loss by hand: unclipped, clipped and dual-clipped tokens") {
  // 4 valid tokens + 1 pad. lr = ln(rho):
  //   t0 rho 1.1, A  1: l = -1.1,            grad -1.1 (inside the range)
  //   t1 rho 1.5, A  2: l = max(-3, -2.4) = -2.4 (clipped), grad 0
  //   t2 rho 0.5, A  1: l = max(-0.5, -0.8) = -0.5 (unclipped below the range), grad -0.5
  //   t3 rho 5,   A -1: l = max(5, 1.2) = 5; with dual clip c = 3: min(5, 3) = 3, grad 0
  const std::vector<double> old = {0, 0, 0, 0, 0};
  const std::vector<double> nw = {std::log(1.1), std::log(1.5), std::log(0.5), std::log(5.0), 123.0};
  const std::vector<double> A = {1, 2, 1, -1, 7};
  const std::vector<std::uint8_t> m = {1, 1, 1, 1, 0};
  std::vector<double> g(5);
  auto st = ppo_policy_loss(cs(nw), cs(old), cs(A), m, sp(g), 1, 5);
  CHECK(st.loss == doctest::Approx((-1.1 - 2.4 - 0.5 + 5.0) / 4).epsilon(1e-14));
  check_close(g, {-1.1 / 4, 0.0, -0.5 / 4, 5.0 / 4, 0.0}, 1e-14);
  CHECK(st.clipfrac == 0.25);
  CHECK(st.dual_clipfrac == 0.0);
  CHECK(st.ratio_mean == doctest::Approx((1.1 + 1.5 + 0.5 + 5.0) / 4).epsilon(1e-14));
  const double lr2 = std::pow(std::log(1.1), 2) + std::pow(std::log(1.5), 2) + std::pow(std::log(0.5), 2) +
                     std::pow(std::log(5.0), 2);
  CHECK(st.approxkl == doctest::Approx(0.5 * lr2 / 4).epsilon(1e-14));
  st = ppo_policy_loss(cs(nw), cs(old), cs(A), m, sp(g), 1, 5, PpoPolicyLossOptions{.dual_clip = 3.0});
  CHECK(st.loss == doctest::Approx((-1.1 - 2.4 - 0.5 + 3.0) / 4).epsilon(1e-14));
  CHECK(g[3] == 0.0);
  CHECK(st.dual_clipfrac == 0.25);
  // asymmetric: eps_high 0.6 lets t1 (rho 1.5) through
  st = ppo_policy_loss(cs(nw), cs(old), cs(A), m, sp(g), 1, 5, PpoPolicyLossOptions{.eps_high = 0.6});
  CHECK(g[1] == doctest::Approx(-3.0 / 4).epsilon(1e-14));
  CHECK(st.clipfrac == 0.0);
  // at old = new the loss is -mean A and the gradient -A / n
  st = ppo_policy_loss(cs(old), cs(old), cs(A), m, sp(g), 1, 5);
  CHECK(st.loss == doctest::Approx(-0.75).epsilon(1e-15));
  CHECK(st.approxkl == 0.0);
  CHECK(st.ratio_mean == 1.0);
}

TEST_CASE("ppo_policy_loss agrees with NumPy (fixture) and its gradient with finite differences") {
  const auto fx = load_fixture("losses.json")["ppo_policy"];
  const auto B = fx["B"].get<std::size_t>(), T = fx["T"].get<std::size_t>();
  auto nw = vec(fx["logp_new"]);
  const auto old = vec(fx["logp_old"]), A = vec(fx["advantages"]);
  const auto m = mask_of(fx["mask"]);
  REQUIRE(fx["cases"].size() == 4);
  for (const auto& c : fx["cases"]) {
    INFO(c["name"].get<std::string>());
    const PpoPolicyLossOptions opt{.eps_low = c["eps_low"], .eps_high = c["eps_high"], .dual_clip = c["dual_clip"],
                                   .aggregation = aggregation_named(c["aggregation"])};
    std::vector<double> g(B * T);
    const auto st = ppo_policy_loss(cs(nw), cs(old), cs(A), m, sp(g), B, T, opt);
    CHECK(close(st.loss, c["loss"]));
    check_close(g, vec(c["dlogp_new"]));
    CHECK(close(st.clipfrac, c["clipfrac"]));
    CHECK(close(st.dual_clipfrac, c["dual_clipfrac"]));
    CHECK(close(st.approxkl, c["approxkl"]));
    CHECK(close(st.ratio_mean, c["ratio_mean"]));
    const auto r = check_gradient(sp(nw), g, [&] {
      return ppo_policy_loss(cs(nw), cs(old), cs(A), m, none, B, T, opt).loss;
    });
    CHECK(r.max_error < 1e-6);
  }
}

TEST_CASE("ppo_policy_loss: gradient vs finite differences on random inputs, every aggregation") {
  const std::size_t B = 5, T = 7;
  auto nw = random_normal(B * T, 41, 0.5);
  auto old = nw;
  const auto noise = random_normal(B * T, 42, 0.25);
  for (std::size_t i = 0; i < B * T; ++i) old[i] += noise[i];
  const auto A = random_normal(B * T, 43);
  const auto m = ragged(B, T);
  for (auto agg : {LossAggregation::token_mean, LossAggregation::sequence_mean, LossAggregation::fixed_length}) {
    const PpoPolicyLossOptions opt{.eps_low = 0.2, .eps_high = 0.28, .dual_clip = 2.0, .aggregation = agg,
                                   .max_length = 9};
    std::vector<double> g(B * T);
    const auto st = ppo_policy_loss(cs(nw), cs(old), cs(A), m, sp(g), B, T, opt);
    CHECK(st.clipfrac > 0);
    const auto r = check_gradient(sp(nw), g, [&] {
      return ppo_policy_loss(cs(nw), cs(old), cs(A), m, none, B, T, opt).loss;
    });
    CHECK(r.max_error < 1e-6);
  }
}

TEST_CASE("ppo_policy_loss: log-ratio clamp keeps exp finite, float agrees with double, validation") {
  const std::vector<double> old = {0, 0}, nw = {800.0, -800.0}, A = {-1.0, 1.0};
  const std::vector<std::uint8_t> m = {1, 1};
  std::vector<double> g(2);
  const auto st = ppo_policy_loss(cs(nw), cs(old), cs(A), m, sp(g), 1, 2);
  CHECK(std::isfinite(st.loss));
  CHECK(st.loss == doctest::Approx((std::exp(20.0) - std::exp(-20.0)) / 2).epsilon(1e-14));
  CHECK(g == std::vector<double>{0.0, 0.0});  // the clamp is active: no gradient

  const std::size_t B = 3, T = 4;
  const auto a = random_normal(B * T, 1, 0.3), b = random_normal(B * T, 2, 0.3), adv = random_normal(B * T, 3);
  const auto mm = ragged(B, T);
  std::vector<double> gd(B * T);
  const double Ld = ppo_policy_loss(cs(a), cs(b), cs(adv), mm, sp(gd), B, T).loss;
  std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end()), advf(adv.begin(), adv.end()), gf(B * T);
  const double Lf = ppo_policy_loss<float>(af, bf, advf, mm, gf, B, T).loss;
  CHECK(Lf == doctest::Approx(Ld).epsilon(1e-5));
  CHECK(rlxf::test::max_relative_difference(gf, gd, 1e-3) < 1e-4);

  auto bad = a;
  bad[5] = kNaN;
  CHECK(contains(error_of([&] { ppo_policy_loss(cs(bad), cs(b), cs(adv), mm, none, B, T); }),
                 "ppo_policy_loss: logp_new[1, 1] = nan is not finite"));
  CHECK(contains(error_of([&] { ppo_policy_loss(cs(a), cs(bad), cs(adv), mm, none, B, T); }), "logp_old[1, 1] = nan"));
  CHECK(contains(error_of([&] { ppo_policy_loss(cs(a), cs(b), cs(bad), mm, none, B, T); }), "advantages[1, 1] = nan"));
  CHECK(contains(error_of([&] { ppo_policy_loss(cs(a), cs(b), cs(adv), mm, none, B, T + 1); }),
                 "logp_new has 12 entries, expected (B, L) = 15"));
  CHECK(contains(error_of([&] { ppo_policy_loss(cs(a), cs(b), cs(adv), mm, none, B, T, PpoPolicyLossOptions{.dual_clip = 0.5}); }),
                 "dual_clip = 0.5"));
}

// ---------------------------------------------------------------------------------------
// Value loss
// ---------------------------------------------------------------------------------------

TEST_CASE("value_loss by hand, vs NumPy (fixture), and vs finite differences") {
  // t0: V 1.0, V_old 0.9, R 2 -> inside the clip: 0.5 * 1 (grad -1)
  // t1: V 1.5, V_old 1.0, R 0 -> V_clip 1.2: max(2.25, 1.44) = 2.25 (unclipped, grad 1.5)
  // t2: V 1.5, V_old 1.0, R 3 -> V_clip 1.2: max(2.25, 3.24) = 3.24 (clipped, grad 0)
  const std::vector<double> V = {1.0, 1.5, 1.5, 4.0}, Vo = {0.9, 1.0, 1.0, 0.0}, R = {2.0, 0.0, 3.0, 0.0};
  const std::vector<std::uint8_t> m = {1, 1, 1, 0};
  std::vector<double> g(4);
  auto st = value_loss(cs(V), cs(Vo), cs(R), m, sp(g), 1, 4);
  CHECK(st.loss == doctest::Approx(0.5 * (1.0 + 2.25 + 3.24) / 3).epsilon(1e-14));
  check_close(g, {-1.0 / 3, 1.5 / 3, 0.0, 0.0}, 1e-14);
  CHECK(st.clipfrac == doctest::Approx(1.0 / 3).epsilon(1e-15));
  st = value_loss(cs(V), cs(Vo), cs(R), m, sp(g), 1, 4, ValueLossOptions{.clip_range = std::nullopt});
  CHECK(st.loss == doctest::Approx(0.5 * (1.0 + 2.25 + 2.25) / 3).epsilon(1e-14));
  CHECK(st.clipfrac == 0.0);

  const auto fx = load_fixture("losses.json");
  const auto B = fx["ppo_policy"]["B"].get<std::size_t>(), T = fx["ppo_policy"]["T"].get<std::size_t>();
  const auto f = fx["value"];
  auto v = vec(f["values"]);
  const auto vo = vec(f["values_old"]), ret = vec(f["returns"]);
  const auto mm = mask_of(f["mask"]);
  for (const char* name : {"clip_0.2", "unclipped"}) {
    INFO(name);
    const ValueLossOptions opt{.clip_range = std::string(name) == "unclipped" ? std::nullopt : std::optional<double>(0.2)};
    std::vector<double> gv(B * T);
    const auto s = value_loss(cs(v), cs(vo), cs(ret), mm, sp(gv), B, T, opt);
    CHECK(close(s.loss, f[name]["loss"]));
    CHECK(close(s.clipfrac, f[name]["clipfrac"]));
    check_close(gv, vec(f[name]["dvalues"]));
    const auto r = check_gradient(sp(v), gv, [&] { return value_loss(cs(v), cs(vo), cs(ret), mm, none, B, T, opt).loss; });
    CHECK(r.max_error < 1e-6);
  }
  auto bad = vo;
  bad[0] = kNaN;
  CHECK(contains(error_of([&] { value_loss(cs(v), cs(bad), cs(ret), mm, none, B, T); }), "value_loss: values_old[0, 0] = nan"));
  CHECK(contains(error_of([&] { value_loss(cs(v), cs(vo), cs(ret), mm, none, B, T, ValueLossOptions{.clip_range = -1.0}); }),
                 "clip_range = -1"));
}

// ---------------------------------------------------------------------------------------
// Entropy
// ---------------------------------------------------------------------------------------

TEST_CASE("categorical_entropy: ln V for uniform logits, vs NumPy (fixture), vs finite differences") {
  const std::vector<double> uni = {3.0, 3.0, 3.0, 3.0, 0.0, 1000.0, 0.0, 0.0};
  std::vector<double> H(2);
  const double mean = categorical_entropy(cs(uni), {}, sp(H), none, 2, 4);
  CHECK(H[0] == doctest::Approx(std::log(4.0)).epsilon(1e-15));
  CHECK(H[1] == doctest::Approx(0.0).scale(1e-300));  // one-hot at 1000: entropy 0, no overflow
  CHECK(mean == doctest::Approx(std::log(4.0) / 2).epsilon(1e-15));

  const auto fx = load_fixture("losses.json")["entropy"];
  const auto N = fx["N"].get<std::size_t>(), V = fx["V"].get<std::size_t>();
  auto z = vec(fx["logits"]);
  const auto m = mask_of(fx["mask"]);
  std::vector<double> h(N), g(N * V);
  CHECK(close(categorical_entropy(cs(z), m, sp(h), sp(g), N, V), fx["mean"]));
  check_close(h, vec(fx["entropy"]));
  check_close(g, vec(fx["dlogits"]));
  const auto r = check_gradient(sp(z), g, [&] { return categorical_entropy(cs(z), m, none, none, N, V); });
  CHECK(r.max_error < 1e-6);
  z[1] = kNaN;
  CHECK(contains(error_of([&] { categorical_entropy(cs(z), m, none, none, N, V); }), "logits[0, 1] = nan"));
}

// ---------------------------------------------------------------------------------------
// DPO family
// ---------------------------------------------------------------------------------------

TEST_CASE("dpo_loss: ln 2 at step 0, hand values, numerically stable at |beta h| = 1000") {
  const std::vector<double> pc = {-10, -20}, pr = {-12, -15};
  std::vector<double> dc(2), dr(2);
  // policy == reference: h = 0, loss ln 2, gradients -beta / 2 / P and +beta / 2 / P
  auto st = dpo_loss(cs(pc), cs(pr), cs(pc), cs(pr), sp(dc), sp(dr));
  CHECK(st.loss == doctest::Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(dc[0] == doctest::Approx(-0.1 * 0.5 / 2).epsilon(1e-15));
  CHECK(dr[1] == doctest::Approx(0.1 * 0.5 / 2).epsilon(1e-15));
  CHECK(st.rewards_accuracies == 0.0);  // ties count as wrong
  // IPO at h = 0: (0 - 1 / (2 beta))^2 = 25
  st = dpo_loss(cs(pc), cs(pr), cs(pc), cs(pr), sp(dc), sp(dr), DpoOptions{.loss = PreferenceLossType::ipo});
  CHECK(st.loss == 25.0);
  CHECK(dc[0] == doctest::Approx(2 * -5.0 / 2).epsilon(1e-15));
  // h = +-10000, beta 0.1: softplus(-1000) = 0 (exp underflows), softplus(1000) = 1000
  const std::vector<double> big_c = {0.0, -10000.0}, big_r = {-10000.0, 0.0}, zero = {0.0, 0.0};
  st = dpo_loss(cs(big_c), cs(big_r), cs(zero), cs(zero), sp(dc), sp(dr));
  CHECK(st.loss == doctest::Approx(500.0).epsilon(1e-15));
  CHECK(dc[0] == 0.0);
  CHECK(dc[1] == doctest::Approx(-0.1 / 2).epsilon(1e-15));
  CHECK(st.rewards_accuracies == 0.5);
  CHECK(st.rewards_margins == doctest::Approx(0.0).scale(1e-9));
}

TEST_CASE("dpo_loss agrees with NumPy (fixture): sigmoid, cDPO, IPO, TRL's length-averaged IPO") {
  const auto fx = load_fixture("losses.json")["dpo"];
  auto pc = vec(fx["policy_chosen"]), pr = vec(fx["policy_rejected"]);
  const auto rc = vec(fx["ref_chosen"]), rr = vec(fx["ref_rejected"]);
  const std::size_t P = pc.size();
  struct Case {
    const char* name;
    DpoOptions opt;
  };
  const Case cases[] = {{"sigmoid", {}},
                        {"cdpo", {.label_smoothing = 0.1}},
                        {"ipo", {.loss = PreferenceLossType::ipo}},
                        {"sigmoid_beta_0.5", {.beta = 0.5}}};
  auto check_stats = [](const DpoStats& st, const nlohmann::json& w) {
    CHECK(close(st.loss, w["loss"]));
    CHECK(close(st.rewards_chosen, w["rewards_chosen"]));
    CHECK(close(st.rewards_rejected, w["rewards_rejected"]));
    CHECK(close(st.rewards_margins, w["rewards_margins"]));
    CHECK(close(st.rewards_accuracies, w["rewards_accuracies"]));
    CHECK(close(st.logps_chosen, w["logps_chosen"]));
    CHECK(close(st.logps_rejected, w["logps_rejected"]));
  };
  for (const auto& c : cases) {
    INFO(c.name);
    std::vector<double> dc(P), dr(P);
    const auto st = dpo_loss(cs(pc), cs(pr), cs(rc), cs(rr), sp(dc), sp(dr), c.opt);
    check_stats(st, fx[c.name]);
    check_close(dc, vec(fx[c.name]["d_chosen"]));
    check_close(dr, vec(fx[c.name]["d_rejected"]));
    const auto r1 = check_gradient(sp(pc), dc, [&] { return dpo_loss(cs(pc), cs(pr), cs(rc), cs(rr), none, none, c.opt).loss; });
    const auto r2 = check_gradient(sp(pr), dr, [&] { return dpo_loss(cs(pc), cs(pr), cs(rc), cs(rr), none, none, c.opt).loss; });
    CHECK(r1.max_error < 1e-6);
    CHECK(r2.max_error < 1e-6);
  }
  // TRL's IPO: divide each sequence's log-probs by its length, chain-rule the gradients back
  const auto& t = fx["ipo_trl_averaged"];
  const auto nc = vec(t["chosen_len"]), nr = vec(t["rejected_len"]);
  std::vector<double> apc(P), apr(P), arc(P), arr(P), dc(P), dr(P);
  for (std::size_t k = 0; k < P; ++k) {
    apc[k] = pc[k] / nc[k];
    arc[k] = rc[k] / nc[k];
    apr[k] = pr[k] / nr[k];
    arr[k] = rr[k] / nr[k];
  }
  const auto st = dpo_loss(cs(apc), cs(apr), cs(arc), cs(arr), sp(dc), sp(dr), DpoOptions{.loss = PreferenceLossType::ipo});
  check_stats(st, t);
  for (std::size_t k = 0; k < P; ++k) {
    dc[k] /= nc[k];
    dr[k] /= nr[k];
  }
  check_close(dc, vec(t["d_chosen_sum"]));
  check_close(dr, vec(t["d_rejected_sum"]));
}

TEST_CASE("dpo_loss validates") {
  const std::vector<double> a = {1, 2}, b = {1};
  CHECK(contains(error_of([&] { dpo_loss(cs(a), cs(b), cs(a), cs(a), none, none); }), "policy_rejected has 1 entries"));
  const std::vector<double> n = {1, kNaN};
  CHECK(contains(error_of([&] { dpo_loss(cs(a), cs(a), cs(n), cs(a), none, none); }), "dpo_loss: ref_chosen[1] = nan"));
  CHECK(contains(error_of([&] { dpo_loss(cs(a), cs(a), cs(a), cs(a), none, none, DpoOptions{.beta = 0}); }), "beta = 0"));
  CHECK(contains(error_of([&] { dpo_loss(cs(a), cs(a), cs(a), cs(a), none, none,
                                         DpoOptions{.label_smoothing = 0.1, .loss = PreferenceLossType::ipo}); }),
                 "sigmoid loss only"));
}

// ---------------------------------------------------------------------------------------
// GRPO
// ---------------------------------------------------------------------------------------

TEST_CASE("grpo_loss by hand: on-policy, one sequence per aggregation") {
  // B = 2, L = 3; row 0 has 3 tokens (A = 1), row 1 has 1 token (A = -2); on-policy, beta 0:
  // token loss -A. token_mean: (3 * -1 + 2) / 4; sequence_mean: (-1 + 2) / 2; fixed 5: (-3 + 2) / 10
  const std::vector<double> lp = {-1, -2, -3, -1, 0, 0}, A = {1, -2};
  const std::vector<std::uint8_t> m = {1, 1, 1, 1, 0, 0};
  std::vector<double> g(6);
  auto st = grpo_loss(cs(lp), {}, {}, cs(A), m, sp(g), 2, 3);
  CHECK(st.loss == doctest::Approx(-0.25).epsilon(1e-15));
  check_close(g, {-0.25, -0.25, -0.25, 0.5, 0, 0}, 1e-15);
  st = grpo_loss(cs(lp), {}, {}, cs(A), m, sp(g), 2, 3, GrpoLossOptions{.aggregation = LossAggregation::sequence_mean});
  CHECK(st.loss == doctest::Approx(0.5).epsilon(1e-15));
  check_close(g, {-1.0 / 6, -1.0 / 6, -1.0 / 6, 1.0, 0, 0}, 1e-15);
  st = grpo_loss(cs(lp), {}, {}, cs(A), m, sp(g), 2, 3,
                 GrpoLossOptions{.aggregation = LossAggregation::fixed_length, .max_length = 5});
  CHECK(st.loss == doctest::Approx(-0.1).epsilon(1e-15));
  // k3 with ref = logp: D = 0 and dD = 0
  st = grpo_loss(cs(lp), {}, cs(lp), cs(A), m, sp(g), 2, 3, GrpoLossOptions{.beta = 0.04});
  CHECK(st.kl == 0.0);
  CHECK(st.loss == doctest::Approx(-0.25).epsilon(1e-15));
}

TEST_CASE("grpo_loss agrees with NumPy (fixture), gradients vs finite differences") {
  const auto fx = load_fixture("losses.json")["grpo"];
  const auto B = fx["B"].get<std::size_t>(), T = fx["T"].get<std::size_t>();
  auto nw = vec(fx["logp_new"]);
  const auto old = vec(fx["logp_old"]), ref = vec(fx["ref_logp"]), A = vec(fx["advantages"]);
  const auto m = mask_of(fx["mask"]);
  REQUIRE(fx["cases"].size() == 4);
  for (const auto& c : fx["cases"]) {
    INFO(c["name"].get<std::string>());
    const bool on_policy = c["on_policy"].get<bool>();
    const double beta = c["beta"];
    const GrpoLossOptions opt{.eps_low = 0.2, .eps_high = c["eps_high"], .beta = beta,
                              .aggregation = aggregation_named(c["aggregation"]),
                              .max_length = c["max_length"].get<std::size_t>()};
    const std::span<const double> o = on_policy ? std::span<const double>{} : cs(old);
    const std::span<const double> rf = beta > 0 ? cs(ref) : std::span<const double>{};
    std::vector<double> g(B * T);
    const auto st = grpo_loss(cs(nw), o, rf, cs(A), m, sp(g), B, T, opt);
    CHECK(close(st.loss, c["loss"]));
    check_close(g, vec(c["dlogp_new"]));
    CHECK(close(st.kl, c["kl"]));
    CHECK(close(st.clip_ratio_low, c["clip_ratio_low"]));
    CHECK(close(st.clip_ratio_high, c["clip_ratio_high"]));
    CHECK(close(st.clip_ratio, c["clip_ratio"]));
    if (on_policy) {
      // old = new detached: the gradient is the off-policy one evaluated at old = new
      std::vector<double> g2(B * T);
      grpo_loss(cs(nw), cs(nw), rf, cs(A), m, sp(g2), B, T, opt);
      check_close(g, g2, 1e-15);
    } else {
      const auto r = check_gradient(sp(nw), g, [&] { return grpo_loss(cs(nw), o, rf, cs(A), m, none, B, T, opt).loss; });
      CHECK(r.max_error < 1e-6);
    }
  }
}

TEST_CASE("grpo_loss: random inputs with delta, finite differences, validation") {
  const std::size_t B = 4, T = 6;
  auto nw = random_normal(B * T, 51, 0.5);
  auto old = nw, ref = nw;
  const auto n1 = random_normal(B * T, 52, 0.3), n2 = random_normal(B * T, 53, 0.5);
  for (std::size_t i = 0; i < B * T; ++i) {
    old[i] += n1[i];
    ref[i] += n2[i];
  }
  const std::vector<double> A = {1.3, -0.4, 0.8, -1.7};
  const auto m = ragged(B, T);
  const GrpoLossOptions opt{.eps_high = 0.28, .beta = 0.04, .delta = 1.35, .aggregation = LossAggregation::sequence_mean};
  std::vector<double> g(B * T);
  grpo_loss(cs(nw), cs(old), cs(ref), cs(A), m, sp(g), B, T, opt);
  const auto r = check_gradient(sp(nw), g, [&] { return grpo_loss(cs(nw), cs(old), cs(ref), cs(A), m, none, B, T, opt).loss; });
  CHECK(r.max_error < 1e-6);

  CHECK(contains(error_of([&] { grpo_loss(cs(nw), cs(old), {}, cs(A), m, none, B, T, GrpoLossOptions{.beta = 0.1}); }),
                 "needs ref_logp"));
  CHECK(contains(error_of([&] { grpo_loss(cs(nw), cs(old), cs(ref), cs(nw), m, none, B, T); }),
                 "advantages has 24 entries, expected (B) = 4"));
  auto bad = ref;
  bad[0] = kNaN;
  CHECK(contains(error_of([&] { grpo_loss(cs(nw), cs(old), cs(bad), cs(A), m, none, B, T, opt); }),
                 "grpo_loss: ref_logp[0, 0] = nan"));
  CHECK(contains(error_of([&] { grpo_loss(cs(nw), cs(old), cs(ref), cs(A), m, none, B, T,
                                          GrpoLossOptions{.aggregation = LossAggregation::fixed_length, .max_length = 3}); }),
                 "max_length = 3 is shorter"));
}

// ---------------------------------------------------------------------------------------
// RLOO
// ---------------------------------------------------------------------------------------

TEST_CASE("rloo_loss: REINFORCE on the sequence log-prob, vs NumPy (fixture), vs finite differences") {
  // on-policy by hand: loss = -mean A, gradient -A_b / B on every valid token of row b
  const std::vector<double> lp = {-1, -2, -3, -4}, A = {0.5, -1.5};
  const std::vector<std::uint8_t> m = {1, 1, 1, 0};
  std::vector<double> g(4);
  auto st = rloo_loss(cs(lp), {}, cs(A), m, sp(g), 2, 2);
  CHECK(st.loss == doctest::Approx(0.5).epsilon(1e-15));
  check_close(g, {-0.25, -0.25, 0.75, 0.0}, 1e-15);

  const auto fx = load_fixture("losses.json")["rloo"];
  const auto B = fx["B"].get<std::size_t>(), T = fx["T"].get<std::size_t>();
  auto nw = vec(fx["logp_new"]);
  const auto old = vec(fx["logp_old"]), adv = vec(fx["advantages"]);
  const auto mm = mask_of(fx["mask"]);
  const RlooLossOptions opt{.eps = fx["eps"]};
  for (const char* name : {"off_policy", "on_policy"}) {
    INFO(name);
    const bool on = std::string(name) == "on_policy";
    const std::span<const double> o = on ? std::span<const double>{} : cs(old);
    std::vector<double> gg(B * T);
    st = rloo_loss(cs(nw), o, cs(adv), mm, sp(gg), B, T, opt);
    CHECK(close(st.loss, fx[name]["loss"]));
    check_close(gg, vec(fx[name]["dlogp_new"]));
    CHECK(close(st.clipfrac, fx[name]["clipfrac"]));
    CHECK(close(st.approxkl, fx[name]["approxkl"]));
    CHECK(close(st.ratio_mean, fx[name]["ratio_mean"]));
    if (!on) {
      const auto r = check_gradient(sp(nw), gg, [&] { return rloo_loss(cs(nw), o, cs(adv), mm, none, B, T, opt).loss; });
      CHECK(r.max_error < 1e-6);
    }
  }
  auto bad = nw;
  bad[1] = kNaN;
  CHECK(contains(error_of([&] { rloo_loss(cs(bad), cs(old), cs(adv), mm, none, B, T); }), "rloo_loss: logp_new[0, 1] = nan"));
  CHECK(contains(error_of([&] { rloo_loss(cs(nw), cs(old), cs(adv), mm, none, B, T, RlooLossOptions{.eps = 1.5}); }),
                 "eps = 1.5"));
}
