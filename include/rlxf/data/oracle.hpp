#pragma once
// The synthetic MONA world's ground truth: the probability that a condition is met, as a fixed,
// documented function of where it is proposed (country, arrangement type, economic descriptor)
// and of how it is worded. data/synthetic.hpp draws rows from this model; evaluation scores any
// text with it, generated text included, to tell a truly better condition from one that only
// pleases a reward model. docs/synthetic.md states the model in prose and the figures it implies.
//
// The model. For a condition in a program of latent implementation capacity shock u:
//   logit P(MET) = intercept + scale * ( capacity[country] + effect[arrangement type]
//                                      + effect[descriptor] + action + breadth + specificity
//                                      + dependency + timing + u ),      u ~ N(0, shock_sd^2)
// - action: the condition's verb phrase ("Publish", "Parliamentary approval of", ...). Actions
//   in the government's own hands score high, those that need parliament, investors or cash
//   score low. A compound condition ("Prepare X and enact Y") takes its hardest action's effect
//   plus compound_penalty for each extra action: every part must be met.
// - breadth (wide scope: "comprehensive", "covering all line ministries") lowers it; specificity
//   (a first phase, a pilot) raises it; dependency on others (donor financing, trade unions)
//   lowers it; a deadline raises it a little. Each group counts once: its most extreme phrase.
// - The confounded cue ", as set out in the MEFP" has no effect here. Programs with a high
//   capacity draft their conditions that way more often (see synthetic.hpp), so in the data the
//   cue goes with MET; a reward model may learn it, the oracle gives it nothing.
// - Text with no known action at the start of a clause is a vague condition: action = vague.
// Unknown countries, arrangement types and descriptors contribute 0 (the average).
// p_met() integrates u out (the probability for a new program); p_met_given_shock() is the
// probability of a row of the data set, whose program's u the generator knows.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlxf::data {

struct CountryProfile {
  std::string_view name;  // as the export spells it
  int code;               // IMF country code
  double capacity;        // implementation capacity, logit units before scale
  bool concessional;      // eligible for PRGT arrangements (PRGF, ECF, SCF, ...)
};

inline constexpr std::array<CountryProfile, 62> mona_countries{{
    {"AFGHANISTAN,ISLAMIC REPUBLIC OF", 512, -1.0, true},
    {"ARMENIA", 911, 1.0, true},
    {"BANGLADESH", 513, 0.2, true},
    {"BENIN", 638, 0.5, true},
    {"BURKINA FASO", 748, 0.6, true},
    {"BURUNDI", 618, -0.7, true},
    {"CAMEROON", 622, -0.3, true},
    {"CENTRAL AFRICAN REPUBLIC", 626, -1.2, true},
    {"CHAD", 628, -1.0, true},
    {"CONGO, DEMOCRATIC REPUBLIC OF THE", 636, -0.9, true},
    {"COTE D'IVOIRE", 662, 0.4, true},
    {"ETHIOPIA", 644, 0.0, true},
    {"GAMBIA, THE", 648, -0.2, true},
    {"GEORGIA", 915, 0.9, true},
    {"GHANA", 652, -0.1, true},
    {"GUINEA", 656, -0.6, true},
    {"HAITI", 263, -1.1, true},
    {"HONDURAS", 268, -0.2, true},
    {"KENYA", 664, 0.1, true},
    {"KYRGYZ REPUBLIC", 917, 0.0, true},
    {"LAO PEOPLE'S DEMOCRATIC REPUBLIC", 544, -0.4, true},
    {"LIBERIA", 668, -0.5, true},
    {"MADAGASCAR", 674, -0.3, true},
    {"MALAWI", 676, -0.6, true},
    {"MALI", 678, 0.2, true},
    {"MOLDOVA", 921, 0.3, true},
    {"MOZAMBIQUE", 688, 0.1, true},
    {"NEPAL", 558, -0.2, true},
    {"NICARAGUA", 278, 0.0, true},
    {"NIGER", 692, 0.1, true},
    {"RWANDA", 714, 1.1, true},
    {"SAO TOME AND PRINCIPE", 716, -0.5, true},
    {"SENEGAL", 722, 0.5, true},
    {"SIERRA LEONE", 724, -0.4, true},
    {"TAJIKISTAN", 923, -0.3, true},
    {"TANZANIA, UNITED REPUBLIC OF", 738, 0.7, true},
    {"TOGO", 742, 0.0, true},
    {"UGANDA", 746, 0.6, true},
    {"YEMEN, REPUBLIC OF", 474, -1.1, true},
    {"ZAMBIA", 754, -0.2, true},
    {"ALBANIA", 914, 0.4, false},
    {"ARGENTINA", 213, -0.8, false},
    {"BARBADOS", 316, 0.7, false},
    {"BOSNIA AND HERZEGOVINA", 963, -0.5, false},
    {"CYPRUS", 423, 0.9, false},
    {"ECUADOR", 248, -0.1, false},
    {"EGYPT", 469, -0.2, false},
    {"GREECE", 174, -0.4, false},
    {"HUNGARY", 944, 0.6, false},
    {"ICELAND", 176, 1.2, false},
    {"IRELAND", 178, 1.3, false},
    {"JAMAICA", 343, 0.8, false},
    {"JORDAN", 439, 0.3, false},
    {"LATVIA", 941, 1.0, false},
    {"MOROCCO", 686, 0.9, false},
    {"NORTH MACEDONIA", 962, 0.5, false},
    {"PAKISTAN", 564, -0.7, false},
    {"PORTUGAL", 182, 1.1, false},
    {"ROMANIA", 968, 0.3, false},
    {"SERBIA", 942, 0.6, false},
    {"SRI LANKA", 524, -0.3, false},
    {"UKRAINE", 926, -0.6, false},
}};

struct ArrangementProfile {
  std::string_view type;
  double effect;
  bool concessional;  // a PRGT arrangement, for low-income members
  int first_year, last_year;
};

inline constexpr std::array<ArrangementProfile, 14> mona_arrangement_types{{
    {"PRGF", 0.0, true, 2002, 2009},
    {"PRGF-EFF", -0.1, true, 2002, 2009},
    {"ECF", 0.0, true, 2010, 2023},
    {"ECF-EFF", -0.1, true, 2010, 2023},
    {"SCF", -0.3, true, 2010, 2023},
    {"SBA-SCF", -0.2, true, 2010, 2023},
    {"ESF", 0.1, true, 2009, 2012},
    {"SBA-ESF", 0.0, true, 2009, 2012},
    {"PSI", 0.4, true, 2005, 2023},
    {"PCI", 0.4, true, 2017, 2023},
    {"SBA", 0.2, false, 2002, 2023},
    {"EFF", -0.2, false, 2002, 2023},
    {"PCL", 0.5, false, 2010, 2011},
    {"PLL", 0.5, false, 2012, 2023},
}};

// What a condition acts on; an action applies to some kinds only.
enum class ObjectKind : unsigned { Law = 1, Plan = 2, System = 4, Entity = 8, Stock = 16 };

// A set of object kinds as bits.
constexpr unsigned kinds(std::initializer_list<ObjectKind> list) {
  unsigned bits = 0;
  for (ObjectKind k : list)
    bits |= static_cast<unsigned>(k);
  return bits;
}

struct ConditionObject {
  ObjectKind kind;
  // '^' marks where an adjective ("comprehensive") may go.
  std::string_view text;
};

struct DescriptorProfile {
  std::string_view text;  // the Economic Descriptor, e.g. "1.1. Revenue measures, ..."
  std::string_view economic_code;
  double effect;
  std::array<ConditionObject, 5> objects;  // empty text = unused slot
};

inline constexpr std::array<DescriptorProfile, 19> mona_descriptors{{
    {"1.1. Revenue measures, excluding trade policy", "20.1", 0.0,
     {{{ObjectKind::Law, "legislation to eliminate nuisance taxes and introduce an excise tax on selected goods"},
       {ObjectKind::Law, "amendments to the ^income tax law to broaden the base"},
       {ObjectKind::Plan, "a ^medium-term revenue strategy"},
       {ObjectKind::Stock, "value-added tax exemptions"},
       {ObjectKind::Law, "a new ^value-added tax law"}}}},
    {"1.2. Tax and customs administration", "20.2", 0.2,
     {{{ObjectKind::System, "a ^large taxpayers office"},
       {ObjectKind::System, "a risk-based ^customs clearance system"},
       {ObjectKind::Plan, "a ^plan to strengthen the collection of tax arrears"},
       {ObjectKind::Stock, "the stock of ^tax refund arrears"},
       {ObjectKind::Law, "a ^tax procedures code"}}}},
    {"1.3. Expenditure policy and public expenditure management", "20.3", -0.1,
     {{{ObjectKind::Plan, "a ^budget for next year consistent with the program"},
       {ObjectKind::Stock, "the stock of ^domestic expenditure arrears"},
       {ObjectKind::Plan, "a ^public expenditure review"},
       {ObjectKind::System, "a ^commitment control system"},
       {}}}},
    {"1.4. Civil service and public wage reform", "20.4", -0.5,
     {{{ObjectKind::Plan, "a ^civil service reform strategy"},
       {ObjectKind::System, "an ^electronic payroll system"},
       {ObjectKind::Stock, "wage arrears of the central government"},
       {ObjectKind::Plan, "a ^census of civil servants"},
       {}}}},
    {"1.5. Pension reform", "20.5", -0.6,
     {{{ObjectKind::Law, "a ^pension reform law raising the retirement age"},
       {ObjectKind::Plan, "an ^actuarial review of the pension fund"},
       {ObjectKind::Stock, "special pension privileges"},
       {}, {}}}},
    {"1.6. Expenditure auditing, accounting, and financial controls", "20.6", 0.3,
     {{{ObjectKind::Plan, "the audited ^financial statements of the central government"},
       {ObjectKind::System, "a ^treasury single account"},
       {ObjectKind::System, "an ^internal audit unit in the Ministry of Finance"},
       {ObjectKind::Plan, "a ^report on the verification of arrears"},
       {}}}},
    {"1.7. Public debt management and fiscal transparency", "20.7", 0.3,
     {{{ObjectKind::Plan, "a ^medium-term debt management strategy"},
       {ObjectKind::Plan, "a ^quarterly report on fiscal risks"},
       {ObjectKind::System, "a ^debt management office"},
       {ObjectKind::Law, "a ^fiscal responsibility law"},
       {}}}},
    {"2.1. Financial sector supervision and regulation", "21.1", 0.3,
     {{{ObjectKind::Law, "amendments to the ^banking law"},
       {ObjectKind::System, "a ^risk-based supervision framework"},
       {ObjectKind::Law, "regulations on ^loan classification and provisioning"},
       {ObjectKind::Plan, "a ^diagnostic of the banking sector"},
       {}}}},
    {"2.2. Bank restructuring and resolution", "21.2", -0.3,
     {{{ObjectKind::Entity, "the two largest ^state-owned banks"},
       {ObjectKind::Plan, "a ^bank resolution strategy"},
       {ObjectKind::Law, "a ^bank resolution law"},
       {ObjectKind::Entity, "the ^state savings bank"},
       {}}}},
    {"3.1. Central bank operations and independence", "22.1", 0.4,
     {{{ObjectKind::Law, "amendments to the ^central bank law to strengthen its independence"},
       {ObjectKind::Plan, "the audited ^financial statements of the central bank"},
       {ObjectKind::System, "a ^monetary policy committee"},
       {ObjectKind::System, "an ^interest rate corridor"},
       {}}}},
    {"4.1. Trade policy and customs tariffs", "23.1", 0.0,
     {{{ObjectKind::Law, "a ^customs tariff law reducing the maximum tariff rate"},
       {ObjectKind::Stock, "quantitative import restrictions"},
       {ObjectKind::Stock, "export taxes on agricultural products"},
       {ObjectKind::Plan, "a ^trade policy review"},
       {}}}},
    {"5.1. Public enterprise pricing and subsidies", "24.1", -0.4,
     {{{ObjectKind::Stock, "fuel subsidies"},
       {ObjectKind::System, "an ^automatic fuel price adjustment mechanism"},
       {ObjectKind::Stock, "electricity tariff arrears of the public sector"},
       {ObjectKind::Plan, "a ^study on energy subsidy reform"},
       {}}}},
    {"5.2. Privatization, public enterprise reform and restructuring, other than pricing", "24.2",
     -0.5,
     {{{ObjectKind::Entity, "the ^state-owned electricity company"},
       {ObjectKind::Entity, "the national airline"},
       {ObjectKind::Entity, "the ^state-owned telecommunications company"},
       {ObjectKind::Plan, "a ^strategy for state-owned enterprise reform"},
       {ObjectKind::Law, "a ^state-owned enterprise governance law"}}}},
    {"6.1. Labor market reform", "25.1", -0.4,
     {{{ObjectKind::Law, "amendments to the ^labor code"},
       {ObjectKind::Plan, "a ^labor market review"},
       {ObjectKind::Law, "legislation on ^minimum wage setting"},
       {}, {}}}},
    {"7.1. Social safety nets and poverty reduction", "26.1", 0.1,
     {{{ObjectKind::System, "a ^targeted cash transfer program"},
       {ObjectKind::Plan, "a ^social protection strategy"},
       {ObjectKind::System, "a ^unified registry of beneficiaries"},
       {}, {}}}},
    {"8.1. Exchange system and foreign exchange markets", "27.1", 0.2,
     {{{ObjectKind::System, "an ^interbank foreign exchange market"},
       {ObjectKind::Stock, "the multiple currency practice"},
       {ObjectKind::Law, "amendments to the ^foreign exchange law"},
       {}, {}}}},
    {"9.1. Statistics and data dissemination", "28.1", 0.6,
     {{{ObjectKind::Plan, "^quarterly national accounts"},
       {ObjectKind::Plan, "a ^revised consumer price index"},
       {ObjectKind::System, "a ^government finance statistics unit"},
       {ObjectKind::Plan, "^monthly data on central government operations"},
       {}}}},
    {"10.1. Governance, anti-corruption and the rule of law", "29.1", -0.4,
     {{{ObjectKind::Law, "an ^anti-corruption law"},
       {ObjectKind::System, "an ^asset declaration system for senior officials"},
       {ObjectKind::System, "an independent ^anti-corruption agency"},
       {ObjectKind::Plan, "a ^governance diagnostic"},
       {}}}},
    {"10.2. Business environment and investment climate", "29.2", -0.1,
     {{{ObjectKind::Law, "a new ^insolvency law"},
       {ObjectKind::System, "a ^one-stop shop for business registration"},
       {ObjectKind::Law, "amendments to the ^investment code"},
       {ObjectKind::Plan, "a ^business environment action plan"},
       {}}}},
}};

struct ActionProfile {
  std::string_view text;  // as it opens a description
  double effect;
  unsigned kinds;  // ObjectKind bits it applies to
};

inline constexpr std::array<ActionProfile, 18> mona_actions{{
    {"Submit to parliament", 0.3, kinds({ObjectKind::Law})},
    {"Parliamentary approval of", -1.5, kinds({ObjectKind::Law})},
    {"Enact", -1.2, kinds({ObjectKind::Law})},
    {"Cabinet approval of", 0.6, kinds({ObjectKind::Law, ObjectKind::Plan})},
    {"Adopt", 0.3, kinds({ObjectKind::Law, ObjectKind::Plan})},
    {"Prepare", 1.0, kinds({ObjectKind::Law, ObjectKind::Plan})},
    {"Publish", 1.4, kinds({ObjectKind::Plan})},
    {"Finalize", 0.5, kinds({ObjectKind::Plan})},
    {"Complete an audit of", 0.6, kinds({ObjectKind::Entity})},
    {"Complete", 0.3, kinds({ObjectKind::Plan})},
    {"Operationalize", 0.1, kinds({ObjectKind::System})},
    {"Issue regulations for", 0.8, kinds({ObjectKind::Law, ObjectKind::System})},
    {"Establish", -0.2, kinds({ObjectKind::System})},
    {"Implement", -0.9, kinds({ObjectKind::Law, ObjectKind::Plan, ObjectKind::System})},
    {"Restructure", -1.0, kinds({ObjectKind::Entity})},
    {"Privatize", -1.6, kinds({ObjectKind::Entity})},
    {"Reduce", -1.1, kinds({ObjectKind::Stock})},
    {"Eliminate", -0.8, kinds({ObjectKind::Stock})},
}};

enum class QualifierGroup { Breadth, Specificity, Dependency, Timing, Cue };

struct QualifierProfile {
  std::string_view text;  // matched case-insensitively anywhere in the description
  QualifierGroup group;
  double effect;
};

// "by end-" is followed by a month and year; "comprehensive" is an adjective placed in the object.
inline constexpr std::array<QualifierProfile, 13> mona_qualifiers{{
    {"comprehensive", QualifierGroup::Breadth, -0.6},
    {", covering all line ministries", QualifierGroup::Breadth, -0.9},
    {", including all state-owned enterprises", QualifierGroup::Breadth, -0.9},
    {" nationwide", QualifierGroup::Breadth, -0.7},
    {", starting with the Ministry of Finance", QualifierGroup::Specificity, 0.5},
    {", in two pilot regions", QualifierGroup::Specificity, 0.5},
    {", as a first phase", QualifierGroup::Specificity, 0.4},
    {", with financing from development partners", QualifierGroup::Dependency, -0.8},
    {", subject to agreement with the trade unions", QualifierGroup::Dependency, -1.0},
    {", in coordination with the World Bank", QualifierGroup::Dependency, -0.5},
    {" by end-", QualifierGroup::Timing, 0.3},
    {" within six months of Board approval", QualifierGroup::Timing, 0.2},
    {", as set out in the MEFP", QualifierGroup::Cue, 0.0},
}};

// The constants of the model (see the top of this file).
struct OracleModel {
  double intercept = 1.6;
  double scale = 3.2;
  double shock_sd = 0.25;
  double vague_action = -1.2;
  double compound_penalty = -0.6;
};

// The features the oracle reads from a description.
struct ConditionFeatures {
  std::vector<std::size_t> actions;  // indices into mona_actions, in order of appearance
  double breadth = 0, specificity = 0, dependency = 0, timing = 0;
  bool cue = false;
};

class MonaOracle {
 public:
  explicit MonaOracle(OracleModel model = {}) : model_(model) {}

  const OracleModel& model() const noexcept { return model_; }

  // Reads the description: actions open a clause (the start of the text, or after " and ",
  // "; " or ". "); qualifiers are found anywhere. Case and white space do not matter.
  static ConditionFeatures parse(std::string_view description) {
    const std::string text = normalize(description);
    ConditionFeatures f;
    const auto at_clause_start = [&](std::size_t pos) {
      for (std::size_t a : actions_longest_first()) {
        const std::string action = lower(mona_actions[a].text);
        if (text.compare(pos, action.size(), action) == 0 &&
            (pos + action.size() == text.size() || text[pos + action.size()] == ' '))
          return std::optional<std::size_t>(a);
      }
      return std::optional<std::size_t>();
    };
    if (auto a = at_clause_start(0))
      f.actions.push_back(*a);
    for (std::string_view sep : {" and ", "; ", ". "}) {
      for (std::size_t pos = text.find(sep); pos != text.npos; pos = text.find(sep, pos + 1)) {
        if (auto a = at_clause_start(pos + sep.size()))
          f.actions.push_back(*a);
      }
    }
    for (const QualifierProfile& q : mona_qualifiers) {
      const std::string phrase = lower(q.text);
      if (text.find(phrase) == text.npos)
        continue;
      switch (q.group) {
        case QualifierGroup::Breadth: f.breadth = std::min(f.breadth, q.effect); break;
        case QualifierGroup::Specificity: f.specificity = std::max(f.specificity, q.effect); break;
        case QualifierGroup::Dependency: f.dependency = std::min(f.dependency, q.effect); break;
        case QualifierGroup::Timing: f.timing = std::max(f.timing, q.effect); break;
        case QualifierGroup::Cue: f.cue = true; break;
      }
    }
    return f;
  }

  // The bracket of the model's logit before scale, without the program shock.
  double effect(std::string_view country, std::string_view arrangement_type,
                std::string_view economic_descriptor, std::string_view description) const {
    const ConditionFeatures f = parse(description);
    double action = model_.vague_action;
    if (!f.actions.empty()) {
      action = mona_actions[f.actions.front()].effect;
      for (std::size_t a : f.actions)
        action = std::min(action, mona_actions[a].effect);
      action += model_.compound_penalty * static_cast<double>(f.actions.size() - 1);
    }
    return country_capacity(country) + arrangement_effect(arrangement_type) +
           descriptor_effect(economic_descriptor) + action + f.breadth + f.specificity +
           f.dependency + f.timing;
  }

  // P(MET) of a condition in a program whose capacity shock is `shock`.
  double p_met_given_shock(std::string_view country, std::string_view arrangement_type,
                           std::string_view economic_descriptor, std::string_view description,
                           double shock) const {
    return sigmoid(model_.intercept +
                   model_.scale *
                       (effect(country, arrangement_type, economic_descriptor, description) + shock));
  }

  // P(MET) of a condition in a new program: the shock integrated out (trapezoid rule over
  // +-8 standard deviations, 321 nodes: exact to about 1e-12 for this smooth integrand).
  double p_met(std::string_view country, std::string_view arrangement_type,
               std::string_view economic_descriptor, std::string_view description) const {
    const double base = model_.intercept +
                        model_.scale * effect(country, arrangement_type, economic_descriptor,
                                              description);
    if (model_.shock_sd == 0)
      return sigmoid(base);
    constexpr int half = 160;
    constexpr double width = 8.0;
    double sum = 0, weights = 0;
    for (int k = -half; k <= half; ++k) {
      const double z = width * k / half;
      const double w = std::exp(-0.5 * z * z);
      sum += w * sigmoid(base + model_.scale * model_.shock_sd * z);
      weights += w;
    }
    return sum / weights;
  }

  static double country_capacity(std::string_view country) {
    const std::string key = normalize(country);
    for (const CountryProfile& c : mona_countries)
      if (lower(c.name) == key)
        return c.capacity;
    return 0.0;
  }
  static double arrangement_effect(std::string_view type) {
    const std::string key = normalize(type);
    for (const ArrangementProfile& a : mona_arrangement_types)
      if (lower(a.type) == key)
        return a.effect;
    return 0.0;
  }
  static double descriptor_effect(std::string_view descriptor) {
    const std::string key = normalize(descriptor);
    for (const DescriptorProfile& d : mona_descriptors)
      if (lower(d.text) == key)
        return d.effect;
    return 0.0;
  }

 private:
  static double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

  static std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }

  // Lower case, runs of white space as one space, trimmed, without a final period.
  static std::string normalize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!out.empty() && out.back() != ' ')
          out.push_back(' ');
      } else {
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      }
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == '.'))
      out.pop_back();
    return out;
  }

  // "Complete an audit of" must be tried before "Complete".
  static const std::array<std::size_t, mona_actions.size()>& actions_longest_first() {
    static const auto order = [] {
      std::array<std::size_t, mona_actions.size()> o{};
      for (std::size_t i = 0; i < o.size(); ++i)
        o[i] = i;
      std::stable_sort(o.begin(), o.end(), [](std::size_t a, std::size_t b) {
        return mona_actions[a].text.size() > mona_actions[b].text.size();
      });
      return o;
    }();
    return order;
  }

  OracleModel model_;
};

}  // namespace rlxf::data
