#pragma once
// A seeded generator of MONA-format data whose outcomes follow the oracle (data/oracle.hpp).
//
//   const auto rows = rlxf::data::generate_mona({.seed = 7, .rows = 20000});
//   // rows[i].record: the 30 export columns; rows[i].p_met: the row's true P(MET)
//
// Arrangements are drawn one at a time: a country, an approval year (2002-2022), an arrangement
// type open to that country in that year, a program capacity shock u ~ N(0, shock_sd^2), then
// 2-8 reviews after approval (R0), each assessing 8-16 conditions. A condition is an economic
// descriptor, one of its objects, an action that applies to the object (sometimes two actions:
// a compound condition) and optional qualifiers: a scope (broad or specific), a dependency on
// others, a deadline, and the confounded cue, which a program uses with probability
// sigmoid(cue_bias + cue_slope * (capacity + u)). The outcome MET is drawn with the oracle's
// P(MET | u), then a fine status consistent with it (Met or Partially Met; else Not Met, Waived,
// Delayed, Met with delay, Modified, Reprogrammed or Replaced). The last review of programs
// approved from 2021 on is not yet assessed: its rows have an empty status and no label.
// The same seed gives the same rows, on any machine with IEEE doubles.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/data/mona_record.hpp"
#include "rlxf/data/oracle.hpp"

namespace rlxf::data {

struct SyntheticConfig {
  std::uint64_t seed = 20240501;
  std::size_t rows = 20000;  // exactly this many rows
  OracleModel model{};
  double cue_bias = -2.2;
  double cue_slope = 2.0;
  double compound_rate = 0.08;
  double broad_rate = 0.22, specific_rate = 0.15, dependency_rate = 0.18;
  double deadline_rate = 0.35, months_after_approval_rate = 0.08;
};

struct SyntheticRow {
  MonaRecord record;
  ConditionFeatures features;  // what the generator wrote into the description
  double p_met;                // the oracle's P(MET) given the program's shock
  double shock;                // the program's capacity shock u
  std::optional<bool> met;     // the drawn outcome; empty when not yet assessed
};

namespace synthetic_detail {

inline constexpr std::array<std::string_view, 12> months{
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December"};

inline std::string two_digits(int v) {
  return std::string(1, static_cast<char>('0' + v / 10)) + static_cast<char>('0' + v % 10);
}

// A calendar month as a count since year 0, and its last day as YYYY-MM-DD.
inline std::string month_end(int month_index) {
  static constexpr std::array<int, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int year = month_index / 12, month = month_index % 12;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int day = days[static_cast<std::size_t>(month)] + (month == 1 && leap ? 1 : 0);
  return std::to_string(year) + "-" + two_digits(month + 1) + "-" + two_digits(day);
}
inline std::string month_day(int month_index, int day) {
  return std::to_string(month_index / 12) + "-" + two_digits(month_index % 12 + 1) + "-" +
         two_digits(day);
}
// "R0", "R1", ...: a review's code.
inline std::string review_code(int review) {
  std::string code = "R";
  code += std::to_string(review);
  return code;
}
inline std::string end_month_text(int month_index) {
  return "end-" + std::string(months[static_cast<std::size_t>(month_index % 12)]) + " " +
         std::to_string(month_index / 12);
}

class Draws {
 public:
  explicit Draws(std::uint64_t seed) : rng_(seed) {}
  bool chance(double p) { return rng_.next_uniform() < p; }
  std::size_t below(std::size_t n) {
    return rng_.next_below(static_cast<std::uint32_t>(n));
  }
  double normal() { return rng_.next_normal(); }
  template <class Weights>
  std::size_t weighted(const Weights& w) {
    double total = 0;
    for (double x : w)
      total += x;
    double u = rng_.next_uniform() * total;
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (u < w[i])
        return i;
      u -= w[i];
    }
    for (std::size_t i = w.size(); i-- > 0;)
      if (w[i] > 0)
        return i;
    fail("synthetic generator: no positive weight");
  }

 private:
  Rng rng_;
};

// How often each arrangement type is chosen among those open to a country in a year.
inline constexpr std::array<double, mona_arrangement_types.size()> type_weights{
    4, 1, 4, 1, 1, 1, 1, 0.5, 1, 0.5, 3, 2, 0.3, 0.5};

inline std::string capitalize(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z')
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}
inline std::string uncapitalize(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'A' && out[0] <= 'Z' && !(out.size() > 1 && out[1] >= 'A' && out[1] <= 'Z'))
    out[0] = static_cast<char>(out[0] - 'A' + 'a');
  return out;
}

// The object's text with its '^' replaced by `adjective` ("" or "comprehensive "), fixing "an"
// before a consonant.
inline std::string object_text(std::string_view text, std::string_view adjective) {
  const std::size_t mark = text.find('^');
  if (mark == text.npos)
    return std::string(text);
  std::string head(text.substr(0, mark));
  if (!adjective.empty() && head.size() >= 3 && head.compare(head.size() - 3, 3, "an ") == 0 &&
      (head.size() == 3 || head[head.size() - 4] == ' '))
    head.erase(head.size() - 2, 1);
  return head + std::string(adjective) + std::string(text.substr(mark + 1));
}

inline std::vector<std::size_t> objects_of(const DescriptorProfile& d) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < d.objects.size(); ++i)
    if (!d.objects[i].text.empty())
      out.push_back(i);
  return out;
}

inline std::vector<std::size_t> actions_for(ObjectKind kind) {
  std::vector<std::size_t> out;
  for (std::size_t a = 0; a < mona_actions.size(); ++a)
    if (mona_actions[a].kinds & static_cast<unsigned>(kind))
      out.push_back(a);
  return out;
}

inline std::vector<std::size_t> qualifiers_in(QualifierGroup g) {
  std::vector<std::size_t> out;
  for (std::size_t q = 0; q < mona_qualifiers.size(); ++q)
    if (mona_qualifiers[q].group == g)
      out.push_back(q);
  return out;
}

struct Clause {
  std::size_t action;
  std::size_t object;
};

inline std::string status_comment(Draws& draw, std::string_view status, int due_month) {
  const std::string next = end_month_text(due_month + 6);
  if (status == "Met")
    return draw.chance(0.5) ? "Met." : "Met. Completed in " + end_month_text(due_month).substr(4) + ".";
  if (status == "Partially Met")
    return "Partially met. The first stage was completed;\nthe remainder is reset as a structural "
           "benchmark for " + next + ".";
  if (status == "Not Met")
    return draw.chance(0.5) ? "Not met. Reset for " + next + "."
                            : "Not met.\nThe measure is still under discussion with stakeholders.";
  if (status == "Waived")
    return "Waived. Corrective actions were taken.";
  if (status == "Delayed")
    return "Delayed. Expected to be completed by the next review.";
  if (status == "Met with delay")
    return "Met with delay in " + end_month_text(due_month + 2).substr(4) + ".";
  if (status == "Modified")
    return "Modified; see the new condition.";
  if (status == "Reprogrammed")
    return "Reprogrammed to " + next + ".";
  if (status == "Replaced")
    return "Replaced by a new \"structural benchmark\" with a narrower scope.";
  return "To be assessed at the next review.";
}

}  // namespace synthetic_detail

inline std::vector<SyntheticRow> generate_mona(const SyntheticConfig& cfg) {
  using namespace synthetic_detail;
  RLXF_REQUIRE(cfg.rows > 0, "SyntheticConfig.rows must be positive");
  require_in("SyntheticConfig.rows", cfg.rows, Range::closed(1, 1e8));
  for (const auto& [name, rate] : {std::pair{"compound_rate", cfg.compound_rate}, std::pair{"broad_rate", cfg.broad_rate},
                                   std::pair{"specific_rate", cfg.specific_rate},
                                   std::pair{"dependency_rate", cfg.dependency_rate},
                                   std::pair{"deadline_rate", cfg.deadline_rate},
                                   std::pair{"months_after_approval_rate", cfg.months_after_approval_rate}})
    require_in(std::string("SyntheticConfig.") + name, rate, Range::closed(0, 1));
  require_in("SyntheticConfig.cue_bias", cfg.cue_bias, Range::closed(-100, 100));
  require_in("SyntheticConfig.cue_slope", cfg.cue_slope, Range::closed(-100, 100));
  Draws draw(cfg.seed);
  const MonaOracle oracle(cfg.model);
  const auto breadth = qualifiers_in(QualifierGroup::Breadth);
  const auto specific = qualifiers_in(QualifierGroup::Specificity);
  const auto dependency = qualifiers_in(QualifierGroup::Dependency);
  const auto cue = qualifiers_in(QualifierGroup::Cue).front();

  std::vector<SyntheticRow> rows;
  rows.reserve(cfg.rows);
  for (int arrangement = 501; rows.size() < cfg.rows; ++arrangement) {
    const CountryProfile& country = mona_countries[draw.below(mona_countries.size())];
    const int year = 2002 + static_cast<int>(draw.below(21));
    std::array<double, mona_arrangement_types.size()> w{};
    for (std::size_t t = 0; t < w.size(); ++t) {
      const ArrangementProfile& a = mona_arrangement_types[t];
      const bool open = year >= a.first_year && year <= a.last_year &&
                        (country.concessional || !a.concessional);
      w[t] = open ? type_weights[t] * (country.concessional && !a.concessional ? 0.3 : 1.0) : 0;
    }
    const ArrangementProfile& type = mona_arrangement_types[draw.weighted(w)];
    const double shock = cfg.model.shock_sd * draw.normal();
    const double cue_rate = 1.0 / (1.0 + std::exp(-(cfg.cue_bias + cfg.cue_slope *
                                                                       (country.capacity + shock))));
    const int approval = year * 12 + static_cast<int>(draw.below(12));
    const int approval_day = 1 + static_cast<int>(draw.below(28));
    const int years = type.type == "SBA" || type.type == "SCF" || type.type == "ESF" ||
                              type.type == "PCL" || type.type == "PLL"
                          ? 2
                          : 3;
    const int initial_end = approval + 12 * years;
    const std::string revised_end =
        draw.chance(0.3) ? month_end(initial_end + 6 + static_cast<int>(draw.below(7))) : "N/A";
    const int reviews = std::min(2 + static_cast<int>(draw.below(7)), 2 * years);

    for (int review = 0; review <= reviews && rows.size() < cfg.rows; ++review) {
      const int board = approval + 6 * review;
      const bool assessed = !(year >= 2021 && review == reviews);
      const std::size_t conditions = 8 + draw.below(9);
      for (std::size_t seq = 0; seq < conditions && rows.size() < cfg.rows; ++seq) {
        std::string key;
        if (review == 0)
          key = draw.chance(0.7) ? "PA" : "SB";
        else
          key = std::array<const char*, 4>{"SB", "PC", "IT", "PA"}[draw.weighted(
              std::array<double, 4>{0.55, 0.25, 0.10, 0.10})];
        const std::size_t d = draw.below(mona_descriptors.size());
        const DescriptorProfile& desc = mona_descriptors[d];
        const auto objects = objects_of(desc);

        std::vector<Clause> clauses;
        const std::size_t n_clauses = draw.chance(cfg.compound_rate) ? 2 : 1;
        while (clauses.size() < n_clauses) {
          const std::size_t o = objects[draw.below(objects.size())];
          if (!clauses.empty() && clauses.front().object == o)
            continue;
          const auto actions = actions_for(desc.objects[o].kind);
          clauses.push_back({actions[draw.below(actions.size())], o});
        }
        // Scope: broad (the adjective "comprehensive" or a broad suffix), specific, or neither.
        std::string adjective, scope;
        ConditionFeatures features;
        for (const Clause& c : clauses)
          features.actions.push_back(c.action);
        if (draw.chance(cfg.broad_rate)) {
          // breadth.front() is the adjective; an object without a '^' takes the next phrase.
          std::size_t q = breadth[draw.below(breadth.size())];
          const bool has_mark =
              desc.objects[clauses.back().object].text.find('^') != std::string_view::npos;
          if (q == breadth.front() && !has_mark)
            q = breadth[1];
          if (q == breadth.front())
            adjective = std::string(mona_qualifiers[q].text) + " ";
          else
            scope = std::string(mona_qualifiers[q].text);
          features.breadth = mona_qualifiers[q].effect;
        } else if (draw.chance(cfg.specific_rate / (1 - cfg.broad_rate))) {
          const std::size_t q = specific[draw.below(specific.size())];
          scope = std::string(mona_qualifiers[q].text);
          features.specificity = mona_qualifiers[q].effect;
        }
        std::string description;
        for (std::size_t c = 0; c < clauses.size(); ++c) {
          const std::string action(mona_actions[clauses[c].action].text);
          const std::string object =
              object_text(desc.objects[clauses[c].object].text, c + 1 == clauses.size() ? adjective : "");
          description += c == 0 ? action : " and " + uncapitalize(action);
          description += " " + object;
        }
        description += scope;
        if (draw.chance(cfg.dependency_rate)) {
          const std::size_t q = dependency[draw.below(dependency.size())];
          description += mona_qualifiers[q].text;
          features.dependency = mona_qualifiers[q].effect;
        }
        const int due = board + 3 + static_cast<int>(draw.below(6));
        const auto timing = qualifiers_in(QualifierGroup::Timing);
        if (draw.chance(cfg.deadline_rate)) {
          description += " by " + end_month_text(due);
          features.timing = mona_qualifiers[timing[0]].effect;
        } else if (draw.chance(cfg.months_after_approval_rate / (1 - cfg.deadline_rate))) {
          description += mona_qualifiers[timing[1]].text;
          features.timing = mona_qualifiers[timing[1]].effect;
        }
        if (draw.chance(cue_rate)) {
          description += mona_qualifiers[cue].text;
          features.cue = true;
        }

        const double p = oracle.p_met_given_shock(country.name, type.type, desc.text, description,
                                                  shock);
        std::optional<bool> met;
        std::string status;
        if (assessed) {
          met = draw.chance(p);
          if (*met)
            status = draw.chance(0.8) ? "Met" : "Partially Met";
          else
            status = std::array<const char*, 7>{"Not Met", "Waived", "Delayed", "Met with delay",
                                                "Modified", "Reprogrammed", "Replaced"}
                [draw.weighted(std::array<double, 7>{0.45, 0.2, 0.15, 0.1, 0.05, 0.03, 0.02})];
        }

        MonaRecord r;
        r.arrangement_number = std::to_string(arrangement);
        r.country_name = country.name;
        r.country_code = std::to_string(country.code);
        r.arrangement_type = type.type;
        r.approval_date = month_day(approval, approval_day);
        r.approval_year = std::to_string(year);
        r.initial_end_date = month_day(initial_end, approval_day);
        r.initial_end_year = std::to_string(initial_end / 12);
        r.revised_end_date = revised_end;
        r.duration_from = "N/A";
        r.duration_to = "N/A";
        r.board_action_date = month_day(board, approval_day);
        r.program_type = "P1";
        r.review_type = review_code(review);
        r.review_status = std::array<const char*, 5>{"C", "E", "L", "P", "BLANK"}[draw.weighted(
            std::array<double, 5>{0.55, 0.2, 0.1, 0.1, 0.05})];
        r.key_code = key;
        r.economic_code = desc.economic_code;
        r.economic_descriptor = desc.text;
        r.description = description;
        r.description_code = std::to_string(clauses.front().action + 1);
        r.test_date = key == "PA" ? "Prior to Board approval"
                      : draw.chance(0.05) ? "Continuous"
                                          : capitalize(end_month_text(due));
        r.pc_status = status;
        r.comments = status_comment(draw, status, due);
        r.sort = std::to_string(seq % 14);
        r.es_order = std::to_string(d + 1);
        r.new_test_date = month_end(due);
        r.added_at = review_code(review == 0 ? 0 : review - 1);
        r.assessed_at = r.review_type;
        r.unique_id = r.arrangement_number + r.review_type + key + two_digits(static_cast<int>(seq));
        r.parent_id = r.arrangement_number + r.added_at + key + two_digits(static_cast<int>(seq));
        rows.push_back({std::move(r), std::move(features), p, shock, met});
      }
    }
  }
  return rows;
}

// The indices of the rows that carry an outcome, in order: the rows load_mona labels when it
// reads these rows back from a CSV file (data/mona.hpp, MonaTable::labelled).
inline std::vector<std::size_t> labelled_rows(std::span<const SyntheticRow> rows) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (rows[i].met)
      out.push_back(i);
  return out;
}

// The Bayes-optimal accuracy on the given (labelled) rows: the accuracy of predicting MET when
// the row's true P(MET) exceeds 1/2.
inline double bayes_accuracy(std::span<const SyntheticRow> rows, std::span<const std::size_t> indices) {
  RLXF_REQUIRE(!indices.empty(), "bayes_accuracy: no rows");
  std::size_t correct = 0;
  for (std::size_t i : indices) {
    RLXF_REQUIRE(i < rows.size() && rows[i].met, "bayes_accuracy: row ", i, " has no outcome");
    correct += (rows[i].p_met > 0.5) == *rows[i].met;
  }
  return static_cast<double>(correct) / static_cast<double>(indices.size());
}

}  // namespace rlxf::data
