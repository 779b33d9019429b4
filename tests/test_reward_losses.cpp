// rlxf::reward losses: class-weighted two-class cross-entropy and the pairwise Bradley-Terry
// loss. Values by hand and against NumPy (tests/fixtures/reward/losses.json, written by
// tools/make_reward_fixtures.py), gradients against 4th-order finite differences
// (tests/gradcheck.hpp: max relative error < 1e-6 in double), float against double.
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
#include "rlxf/cpu/softmax.hpp"
#include "rlxf/reward/losses.hpp"

using namespace rlxf::reward;
using rlxf::test::check_gradient;
using rlxf::test::error_of;
using rlxf::test::random_normal;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

nlohmann::json load_fixture(const std::string& name) {
  const fs::path path = fs::path(RLXF_TEST_FIXTURES) / "reward" / name;
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing fixture ", path.string());
  return nlohmann::json::parse(in);
}

template <class T>
std::span<const T> cs(const std::vector<T>& v) {
  return std::span<const T>(v);
}

std::vector<std::uint8_t> random_labels(std::size_t n, std::uint64_t seed) {
  rlxf::Rng rng(seed, 3);
  std::vector<std::uint8_t> y(n);
  for (auto& v : y) v = rng.next_uniform() < 0.3f ? 1 : 0;
  y[0] = 0;
  y[1] = 1;  // both classes present
  return y;
}

// ln(1 + e^{-x}) evaluated directly in long double: e^{1000} ~ 2e434 and e^{-1000} ~ 5e-435
// are inside long double's range (x87 80-bit), so no rewriting is needed.
double log1p_exp_neg_reference(double x) {
  return static_cast<double>(std::log1p(std::exp(-static_cast<long double>(x))));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Weighted cross-entropy
// ---------------------------------------------------------------------------------------

TEST_CASE("balanced_class_weights: n / (2 n_c), both classes required") {
  const auto w = balanced_class_weights(std::vector<std::uint8_t>{0, 0, 0, 1});
  CHECK(w[0] == doctest::Approx(4.0 / 6.0).epsilon(1e-15));
  CHECK(w[1] == 2.0);
  const auto even = balanced_class_weights(std::vector<std::uint8_t>{0, 1, 1, 0});
  CHECK(even[0] == 1.0);
  CHECK(even[1] == 1.0);
  CHECK(contains(error_of([] { balanced_class_weights(std::vector<std::uint8_t>{1, 1}); }),
                 "both classes must be present (0 NOT MET, 2 MET)"));
  CHECK(contains(error_of([] { balanced_class_weights(std::vector<std::uint8_t>{1, 4}); }), "label[1] = 4"));
}

// Row 0: logits (0, 0), label MET: nll = ln 2, softmax (1/2, 1/2).
// Row 1: logits (ln 3, 0), label NOT MET: softmax (3/4, 1/4), nll = ln(4/3).
// Weights (NOT MET 1, MET 3): L = (3 ln 2 + ln(4/3)) / 4;
// dL/dz_0 = 3/4 (1/2, -1/2), dL/dz_1 = 1/4 (3/4 - 1, 1/4).
TEST_CASE("weighted cross-entropy: a hand-computed batch") {
  const std::vector<double> logits = {0.0, 0.0, std::log(3.0), 0.0};
  const std::vector<std::uint8_t> y = {1, 0};
  const std::vector<double> w = {1.0, 3.0};
  std::vector<double> g(4);
  const double L = weighted_cross_entropy(cs(logits), y, w, std::span<double>(g), 2);
  CHECK(L == doctest::Approx((3 * std::log(2.0) + std::log(4.0 / 3.0)) / 4).epsilon(1e-15));
  CHECK(g[0] == doctest::Approx(0.375).epsilon(1e-15));
  CHECK(g[1] == doctest::Approx(-0.375).epsilon(1e-15));
  CHECK(g[2] == doctest::Approx(-1.0 / 16).epsilon(1e-15));
  CHECK(g[3] == doctest::Approx(1.0 / 16).epsilon(1e-15));
  // Unweighted (empty weights): the plain mean.
  CHECK(weighted_cross_entropy(cs(logits), y, {}, std::span<double>{}, 2) ==
        doctest::Approx((std::log(2.0) + std::log(4.0 / 3.0)) / 2).epsilon(1e-15));
}

TEST_CASE("weighted cross-entropy: equal weights give the mean of rlxf::cpu::cross_entropy_forward") {
  const std::size_t B = 37;
  const auto logits = random_normal(2 * B, 7, 3.0);
  const auto y = random_labels(B, 7);
  std::vector<std::int32_t> t(y.begin(), y.end());
  std::vector<double> losses(B), lse(B);
  rlxf::cpu::cross_entropy_forward(logits.data(), t.data(), losses.data(), lse.data(), B, 2);
  double mean = 0;
  for (double l : losses) mean += l;
  mean /= static_cast<double>(B);
  const std::vector<double> w = {2.5, 2.5};
  CHECK(weighted_cross_entropy(cs(logits), y, w, std::span<double>{}, B) == doctest::Approx(mean).epsilon(1e-14));
  // and its gradient is the kernel's with dlosses = 1 / B
  std::vector<double> g(2 * B), ref(2 * B, 0.0), dl(B, 1.0 / static_cast<double>(B));
  weighted_cross_entropy(cs(logits), y, {}, std::span<double>(g), B);
  rlxf::cpu::cross_entropy_backward(logits.data(), t.data(), lse.data(), dl.data(), ref.data(), B, 2);
  for (std::size_t j = 0; j < 2 * B; ++j) CHECK(g[j] == doctest::Approx(ref[j]).epsilon(1e-12));
}

TEST_CASE("weighted cross-entropy: gradient matches 4th-order finite differences") {
  const std::size_t B = 24;
  auto logits = random_normal(2 * B, 13, 2.5);
  const auto y = random_labels(B, 13);
  const auto wa = balanced_class_weights(y);
  const std::vector<double> w(wa.begin(), wa.end());
  std::vector<double> g(2 * B);
  weighted_cross_entropy(cs(logits), y, w, std::span<double>(g), B);
  const auto r = check_gradient(std::span<double>(logits), g, [&] {
    return weighted_cross_entropy(cs(logits), y, w, std::span<double>{}, B);
  });
  CHECK(r.checked == 2 * B);
  CHECK(r.max_error < 1e-6);
}

TEST_CASE("weighted cross-entropy agrees with NumPy (fixture)") {
  const auto fx = load_fixture("losses.json")["weighted_ce"];
  const auto B = fx["B"].get<std::size_t>();
  const auto logits = fx["logits"].get<std::vector<double>>();
  const auto y = fx["label"].get<std::vector<std::uint8_t>>();
  const auto w = fx["class_weight"].get<std::vector<double>>();
  const auto bw = balanced_class_weights(y);  // the fixture's weights are sklearn's "balanced"
  CHECK(bw[0] == doctest::Approx(w[0]).epsilon(1e-15));
  CHECK(bw[1] == doctest::Approx(w[1]).epsilon(1e-15));
  std::vector<double> g(2 * B);
  CHECK(weighted_cross_entropy(cs(logits), y, w, std::span<double>(g), B) ==
        doctest::Approx(fx["loss"].get<double>()).epsilon(1e-14));
  const auto ref = fx["dlogits"].get<std::vector<double>>();
  for (std::size_t j = 0; j < 2 * B; ++j) CHECK(g[j] == doctest::Approx(ref[j]).epsilon(1e-13).scale(1e-3));
  CHECK(weighted_cross_entropy(cs(logits), y, {}, std::span<double>{}, B) ==
        doctest::Approx(fx["loss_unweighted"].get<double>()).epsilon(1e-14));
}

TEST_CASE("weighted cross-entropy: float agrees with double, logits of 1000 stay finite") {
  const std::size_t B = 16;
  const auto logits = random_normal(2 * B, 17, 4.0);
  const auto y = random_labels(B, 17);
  const std::vector<double> w = {0.7, 2.0};
  std::vector<float> lf(logits.begin(), logits.end()), gf(2 * B);
  std::vector<double> gd(2 * B);
  const double Ld = weighted_cross_entropy(cs(logits), y, w, std::span<double>(gd), B);
  const double Lf = weighted_cross_entropy<float>(lf, y, w, gf, B);
  CHECK(Lf == doctest::Approx(Ld).epsilon(1e-6));
  CHECK(rlxf::test::max_relative_difference(gf, gd, 1e-3) < 1e-5);

  const std::vector<double> big = {1000.0, -1000.0, -1000.0, 1000.0};
  std::vector<double> g(4);
  const double L = weighted_cross_entropy(cs(big), std::vector<std::uint8_t>{1, 1}, {}, std::span<double>(g), 2);
  CHECK(L == doctest::Approx(1000.0).epsilon(1e-15));  // row 0: 2000 wrong, row 1: right (0)
  CHECK(g[0] == 0.5);
  CHECK(g[1] == -0.5);
  CHECK(g[2] == 0.0);
  CHECK(g[3] == 0.0);
}

TEST_CASE("weighted cross-entropy validates shapes, labels and weights") {
  const std::vector<double> logits = {0, 1, 2, 3};
  const std::vector<std::uint8_t> y = {0, 1};
  auto run = [&](std::span<const double> l, std::vector<std::uint8_t> yy, std::vector<double> w, std::size_t B) {
    return error_of([&] { weighted_cross_entropy(l, yy, w, std::span<double>{}, B); });
  };
  CHECK(contains(run(logits, y, {}, 3), "logits has 4 entries, expected (B, 2) = 6"));
  CHECK(contains(run(logits, {0, 2}, {}, 2), "label[1] = 2"));
  CHECK(contains(run(logits, y, {1.0}, 2), "class_weight has 1 entries"));
  CHECK(contains(run(logits, y, {-1.0, 1.0}, 2), "class_weight[0] = -1"));
  CHECK(contains(run(logits, {0, 0}, {0.0, 1.0}, 2), "sum to 0"));
  CHECK(contains(run(logits, y, {}, 0), "batch is empty"));
  const std::vector<double> inf_logits = {0, 1, std::numeric_limits<double>::infinity(), 3};
  CHECK(contains(run(inf_logits, y, {}, 2), "row 1 has a non-finite logit"));
  CHECK(run(logits, y, {0.0, 1.0}, 2).empty());  // a zero weight is allowed when others are not
}

// ---------------------------------------------------------------------------------------
// Bradley-Terry
// ---------------------------------------------------------------------------------------

TEST_CASE("Bradley-Terry: per-pair loss equals ln(1 + exp(-(d - m))), |d| = 1000 included") {
  const std::vector<double> ds = {-1000, -30, -1, 0, 0.5, 3, 40, 1000};
  const std::vector<double> ms = {0, 0.5, 1, 0, 0.25, 1, 0, 2};
  for (std::size_t k = 0; k < ds.size(); ++k) {
    INFO("d = ", ds[k], ", m = ", ms[k]);
    // r_chosen and r_rejected split d unevenly, so the function must use their difference.
    const std::vector<double> rc = {0.25 * ds[k] + 1}, rr = {-0.75 * ds[k] + 1}, m = {ms[k]};
    std::vector<double> gc(1), gr(1);
    const auto res = bradley_terry_loss(cs(rc), cs(rr), cs(m), std::span<double>(gc), std::span<double>(gr));
    const double x = ds[k] - ms[k];
    REQUIRE(std::isfinite(res.loss));
    CHECK(res.loss == doctest::Approx(log1p_exp_neg_reference(x)).epsilon(1e-15));
    const double s = static_cast<double>(1.0L / (1.0L + std::exp(static_cast<long double>(x))));
    CHECK(gc[0] == doctest::Approx(-s).epsilon(1e-15));
    CHECK(gr[0] == doctest::Approx(s).epsilon(1e-15));
    CHECK(res.accuracy == (ds[k] > 0 ? 1.0 : 0.0));
    CHECK(res.margin == doctest::Approx(ds[k]).epsilon(1e-15));
  }
  // the extremes exactly: ln(1 + e^{1000}) = 1000 in double, ln(1 + e^{-1000}) = 0
  const std::vector<double> a = {-500}, b = {500}, none = {};
  CHECK(bradley_terry_loss(cs(a), cs(b), cs(none), std::span<double>{}, std::span<double>{}).loss == 1000.0);
  CHECK(bradley_terry_loss(cs(b), cs(a), cs(none), std::span<double>{}, std::span<double>{}).loss == 0.0);
}

TEST_CASE("Bradley-Terry: mean over pairs, accuracy (ties wrong) and mean reward gap") {
  const std::vector<double> rc = {2.0, 0.0, 1.0, -1.0}, rr = {1.0, 0.0, 3.0, -2.0};
  const auto res = bradley_terry_loss(cs(rc), cs(rr), std::span<const double>{}, std::span<double>{},
                                      std::span<double>{});
  // d = (1, 0, -2, 1)
  const double expect = (std::log1p(std::exp(-1.0)) * 2 + std::log(2.0) + std::log1p(std::exp(2.0))) / 4;
  CHECK(res.loss == doctest::Approx(expect).epsilon(1e-15));
  CHECK(res.accuracy == 0.5);  // pairs 0 and 3; the tie (pair 1) counts as wrong
  CHECK(res.margin == 0.0);
  // At d = 0 with no margin: ln 2 (the loss of an untrained model).
  const std::vector<double> z = {0.3, -2.0};
  CHECK(bradley_terry_loss(cs(z), cs(z), std::span<const double>{}, std::span<double>{}, std::span<double>{})
            .loss == doctest::Approx(std::log(2.0)).epsilon(1e-15));
}

TEST_CASE("Bradley-Terry: gradients match finite differences, with margins and centering") {
  const std::size_t P = 20;
  auto rc = random_normal(P, 61, 2.0);
  auto rr = random_normal(P, 62, 2.0);
  const auto m = random_normal(P, 63, 0.5);
  for (double c : {0.0, 0.01, 0.3}) {
    INFO("center_rewards_coefficient = ", c);
    const BradleyTerryOptions opt{.center_rewards_coefficient = c};
    std::vector<double> gc(P), gr(P);
    bradley_terry_loss(cs(rc), cs(rr), cs(m), std::span<double>(gc), std::span<double>(gr), opt);
    auto loss = [&] {
      return bradley_terry_loss(cs(rc), cs(rr), cs(m), std::span<double>{}, std::span<double>{}, opt).loss;
    };
    const auto r1 = check_gradient(std::span<double>(rc), gc, loss);
    const auto r2 = check_gradient(std::span<double>(rr), gr, loss);
    CHECK(r1.max_error < 1e-6);
    CHECK(r2.max_error < 1e-6);
  }
  // the centering term by hand: one pair, r = (1, 2), c = 0.5: 0.5 * 9 on top of softplus(1)
  const std::vector<double> one = {1.0}, two = {2.0};
  std::vector<double> g1(1), g2(1);
  const auto res = bradley_terry_loss(cs(one), cs(two), std::span<const double>{}, std::span<double>(g1),
                                      std::span<double>(g2), {.center_rewards_coefficient = 0.5});
  CHECK(res.loss == doctest::Approx(std::log1p(std::exp(1.0)) + 4.5).epsilon(1e-15));
  const double s = 1.0 / (1.0 + std::exp(-1.0));  // sigmoid(-(d)) with d = -1
  CHECK(g1[0] == doctest::Approx(-s + 3.0).epsilon(1e-15));
  CHECK(g2[0] == doctest::Approx(s + 3.0).epsilon(1e-15));
}

TEST_CASE("Bradley-Terry agrees with NumPy (fixture), float agrees with double") {
  const auto fx = load_fixture("losses.json")["bradley_terry"];
  const auto rc = fx["r_chosen"].get<std::vector<double>>();
  const auto rr = fx["r_rejected"].get<std::vector<double>>();
  const auto m = fx["margin"].get<std::vector<double>>();
  const std::size_t P = rc.size();
  std::vector<double> gc(P), gr(P);
  const auto res = bradley_terry_loss(cs(rc), cs(rr), cs(m), std::span<double>(gc), std::span<double>(gr));
  CHECK(res.loss == doctest::Approx(fx["loss"].get<double>()).epsilon(1e-14));
  CHECK(res.accuracy == doctest::Approx(fx["accuracy"].get<double>()).epsilon(1e-15));
  CHECK(res.margin == doctest::Approx(fx["margin_mean"].get<double>()).epsilon(1e-14));
  const auto ref_c = fx["d_chosen"].get<std::vector<double>>();
  const auto ref_r = fx["d_rejected"].get<std::vector<double>>();
  for (std::size_t k = 0; k < P; ++k) {
    CHECK(gc[k] == doctest::Approx(ref_c[k]).epsilon(1e-14));
    CHECK(gr[k] == doctest::Approx(ref_r[k]).epsilon(1e-14));
  }
  CHECK(bradley_terry_loss(cs(rc), cs(rr), std::span<const double>{}, std::span<double>{}, std::span<double>{})
            .loss == doctest::Approx(fx["loss_no_margin"].get<double>()).epsilon(1e-14));

  // float: inputs rounded to float, compared with double on the same rounded inputs
  std::vector<float> fc(rc.begin(), rc.end()), fr(rr.begin(), rr.end()), fm(m.begin(), m.end());
  std::vector<double> dc(fc.begin(), fc.end()), dr(fr.begin(), fr.end()), dm(fm.begin(), fm.end());
  std::vector<float> gfc(P), gfr(P);
  const auto rf = bradley_terry_loss<float>(fc, fr, fm, gfc, gfr);
  const auto rd = bradley_terry_loss(cs(dc), cs(dr), cs(dm), std::span<double>(gc), std::span<double>(gr));
  CHECK(rf.loss == doctest::Approx(rd.loss).epsilon(1e-15));  // computed in double either way
  CHECK(rlxf::test::max_relative_difference(gfc, gc, 1e-6) < 1e-6);
  CHECK(rlxf::test::max_relative_difference(gfr, gr, 1e-6) < 1e-6);
}

TEST_CASE("Bradley-Terry validates sizes and values, naming the pair") {
  const std::vector<double> a = {1, 2, 3}, b = {0, 1};
  const std::vector<double> bad = {1, std::nan(""), 3};
  auto run = [](std::span<const double> x, std::span<const double> y, std::span<const double> m) {
    return error_of([&] { bradley_terry_loss(x, y, m, std::span<double>{}, std::span<double>{}); });
  };
  CHECK(contains(run(a, b, {}), "r_rejected has 2 entries but r_chosen has 3"));
  CHECK(contains(run(a, a, b), "margin has 2 entries, expected 3 or none"));
  CHECK(contains(run(a, bad, {}), "pair 1 has a non-finite value"));
  CHECK(contains(run({}, {}, {}), "no pairs"));
  std::vector<double> g(2);
  CHECK(contains(error_of([&] { bradley_terry_loss(cs(a), cs(a), std::span<const double>{}, std::span<double>(g), std::span<double>{}); }),
                 "d_chosen has 2 entries"));
  CHECK(contains(error_of([&] {
                   bradley_terry_loss(cs(a), cs(a), std::span<const double>{}, std::span<double>{},
                                      std::span<double>{}, {.center_rewards_coefficient = -1});
                 }),
                 "center_rewards_coefficient = -1"));
}
