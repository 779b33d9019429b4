#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "rlxf/core/rng.hpp"
#include "rlxf/data/mona.hpp"
#include "rlxf/data/oracle.hpp"
#include "rlxf/data/split.hpp"
#include "rlxf/data/synthetic.hpp"

using namespace rlxf::data;

namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

const std::vector<SyntheticRow>& default_rows() {
  static const std::vector<SyntheticRow> rows = generate_mona({});
  return rows;
}

std::string csv_of(const std::vector<SyntheticRow>& rows) {
  std::vector<MonaRecord> records;
  for (const auto& r : rows)
    records.push_back(r.record);
  std::ostringstream out;
  write_mona_csv(out, records);
  return out.str();
}

}  // namespace

TEST_CASE("oracle: a hand-computed condition") {
  const MonaOracle oracle;
  const OracleModel& m = oracle.model();
  // ZAMBIA -0.2, ECF 0.0, descriptor 1.1 0.0, Publish +1.4, a deadline +0.3.
  const double effect = -0.2 + 0.0 + 0.0 + 1.4 + 0.3;
  const std::string d = "Publish a medium-term revenue strategy by end-June 2012";
  CHECK(oracle.effect("ZAMBIA", "ECF", "1.1. Revenue measures, excluding trade policy", d) ==
        doctest::Approx(effect).epsilon(1e-15));
  CHECK(oracle.p_met_given_shock("ZAMBIA", "ECF", "1.1. Revenue measures, excluding trade policy",
                                 d, 0.25) ==
        doctest::Approx(sigmoid(m.intercept + m.scale * (effect + 0.25))).epsilon(1e-14));
  // Case, white space and a final period do not matter.
  CHECK(oracle.effect(" zambia ", "ecf", "1.1.  REVENUE measures, excluding trade policy",
                      "  publish a medium-term   revenue strategy BY END-June 2012. ") ==
        doctest::Approx(effect).epsilon(1e-15));
}

TEST_CASE("oracle: compound, vague and unknown conditions") {
  const MonaOracle oracle;
  const OracleModel& m = oracle.model();
  // The hardest action counts, plus the compound penalty per extra action.
  const auto f = MonaOracle::parse("Prepare a new value-added tax law and enact a tax procedures code");
  REQUIRE(f.actions.size() == 2);
  CHECK(oracle.effect("", "", "", "Prepare a new value-added tax law and enact a tax procedures code") ==
        doctest::Approx(-1.2 + m.compound_penalty).epsilon(1e-15));
  // Text with no action at a clause start is vague; unknown context fields count 0.
  CHECK(MonaOracle::parse("The authorities will think about taxes").actions.empty());
  CHECK(oracle.effect("ATLANTIS", "XYZ", "99.9. Nothing", "lorem ipsum") == m.vague_action);
  CHECK(oracle.effect("ATLANTIS", "XYZ", "99.9. Nothing", "") == m.vague_action);
  // Objects that contain action words are not read as actions ("to eliminate" is not a clause).
  const auto g = MonaOracle::parse(
      "Submit to parliament legislation to eliminate nuisance taxes and introduce an excise tax on "
      "selected goods");
  REQUIRE(g.actions.size() == 1);
  CHECK(mona_actions[g.actions[0]].text == "Submit to parliament");
  // Each qualifier group counts once, at its most extreme phrase.
  CHECK(MonaOracle::parse("Adopt a comprehensive strategy nationwide, covering all line ministries").breadth ==
        -0.9);
}

TEST_CASE("oracle: the confounded cue gets no credit") {
  const MonaOracle oracle;
  const std::string d = "Prepare a governance diagnostic";
  CHECK(MonaOracle::parse(d + ", as set out in the MEFP").cue);
  CHECK(oracle.p_met("KENYA", "ECF", "10.1. Governance, anti-corruption and the rule of law", d) ==
        oracle.p_met("KENYA", "ECF", "10.1. Governance, anti-corruption and the rule of law",
                     d + ", as set out in the MEFP"));
}

TEST_CASE("oracle: p_met integrates the program shock out") {
  // Against a Monte Carlo average over N(0, shock_sd^2): 400k draws, standard error < 5e-4.
  const MonaOracle oracle;
  const OracleModel& m = oracle.model();
  rlxf::Rng rng(11);
  for (const char* d : {"Publish a trade policy review", "Privatize the national airline",
                        "Reduce fuel subsidies"}) {
    const double base = m.intercept + m.scale * oracle.effect("GHANA", "ECF", "", d);
    double sum = 0;
    const int n = 400000;
    for (int i = 0; i < n; ++i)
      sum += sigmoid(base + m.scale * m.shock_sd * rng.next_normal());
    CHECK(oracle.p_met("GHANA", "ECF", "", d) == doctest::Approx(sum / n).epsilon(0.002));
  }
  // Without a shock it is the plain logistic.
  const MonaOracle fixed(OracleModel{.shock_sd = 0});
  CHECK(fixed.p_met("GHANA", "ECF", "", "Reduce fuel subsidies") ==
        doctest::Approx(fixed.p_met_given_shock("GHANA", "ECF", "", "Reduce fuel subsidies", 0)));
}

TEST_CASE("generator: every description reads back as the features it was written with") {
  const auto& rows = default_rows();
  REQUIRE(rows.size() == 20000);
  const MonaOracle oracle;
  std::size_t checked = 0;
  for (const auto& r : rows) {
    const ConditionFeatures f = MonaOracle::parse(r.record.description);
    const bool same = f.actions == r.features.actions && f.breadth == r.features.breadth &&
                      f.specificity == r.features.specificity &&
                      f.dependency == r.features.dependency && f.timing == r.features.timing &&
                      f.cue == r.features.cue;
    if (!same)
      FAIL_CHECK("features differ for: " << r.record.description);
    const double p = oracle.p_met_given_shock(r.record.country_name, r.record.arrangement_type,
                                              r.record.economic_descriptor, r.record.description,
                                              r.shock);
    if (p != r.p_met)
      FAIL_CHECK("p_met differs for row " << checked);
    ++checked;
  }
  CHECK(checked == rows.size());
}

TEST_CASE("generator: seeded, and the fine status agrees with the drawn outcome") {
  const auto a = generate_mona({.seed = 3, .rows = 500});
  const auto b = generate_mona({.seed = 3, .rows = 500});
  const auto c = generate_mona({.seed = 4, .rows = 500});
  CHECK(csv_of(a) == csv_of(b));
  CHECK(csv_of(a) != csv_of(c));

  const LabelMapping paper;
  for (const auto& r : default_rows()) {
    const auto label = paper.label_of(r.record.pc_status);
    REQUIRE(label.has_value());
    if (!r.met)
      CHECK(*label == Label::none);
    else
      CHECK(*label == (*r.met ? Label::met : Label::non_met));
  }
}

TEST_CASE("generator: the cue goes with MET in the data, within countries too") {
  // Per country, the MET rate of rows with the cue minus that of rows without, averaged over
  // countries with enough rows of both kinds: positive, although the oracle ignores the cue.
  std::map<std::string, std::array<double, 4>> by_country;  // met&cue, cue, met&plain, plain
  std::size_t cue = 0, cue_met = 0, plain = 0, plain_met = 0;
  for (const auto& r : default_rows()) {
    if (!r.met)
      continue;
    auto& s = by_country[r.record.country_name];
    if (r.features.cue) {
      s[0] += *r.met, s[1] += 1, ++cue, cue_met += *r.met;
    } else {
      s[2] += *r.met, s[3] += 1, ++plain, plain_met += *r.met;
    }
  }
  CHECK(double(cue_met) / double(cue) > double(plain_met) / double(plain) + 0.1);
  double diff = 0;
  int countries = 0;
  for (const auto& [name, s] : by_country) {
    if (s[1] < 30 || s[3] < 30)
      continue;
    diff += s[0] / s[1] - s[2] / s[3];
    ++countries;
  }
  REQUIRE(countries >= 10);
  CHECK(diff / countries > 0.02);
}

TEST_CASE("shipped data: data/mona_synthetic.csv is the generator's output with its defaults") {
  std::ifstream in(RLXF_DATA_DIR "/mona_synthetic.csv", std::ios::binary);
  REQUIRE(in.is_open());
  const std::string shipped((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(shipped == csv_of(default_rows()));

  // It loads through the MONA loader with the drawn labels, and its Bayes-optimal accuracy on
  // the held-out split lies in the band the problem was tuned for.
  const MonaTable table = load_mona(RLXF_DATA_DIR "/mona_synthetic.csv");
  const auto labelled = labelled_rows(default_rows());
  CHECK(table.labelled() == labelled);
  for (std::size_t i : labelled)
    CHECK((table.labels[i] == Label::met) == *default_rows()[i].met);
  const Split split = random_split(labelled, 0.2, 0);
  const double bayes = bayes_accuracy(default_rows(), split.test);
  CHECK(bayes > 0.85);
  CHECK(bayes < 0.92);
}
