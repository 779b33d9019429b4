// rlxf::data::outcome_pairs: MET rows preferred to Non-MET rows of the same country and economic
// descriptor, on hand-built tables whose pairs are counted by hand.
#include <doctest/doctest.h>

#include <cstddef>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rlxf/data/mona.hpp"
#include "rlxf/data/preference_pairs.hpp"

using namespace rlxf;
using data::Label;

namespace {

struct Row {
  std::string country, descriptor;
  Label label;
};

data::MonaTable table_of(const std::vector<Row>& rows) {
  data::MonaTable t;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    data::MonaRecord r;
    r.country_name = rows[i].country;
    r.arrangement_type = "ECF";
    r.economic_descriptor = rows[i].descriptor;
    r.description = "condition " + std::to_string(i);
    t.records.push_back(r);
    t.labels.push_back(rows[i].label);
    t.lines.push_back(i + 2);
  }
  return t;
}

const Label MET = Label::met, NON = Label::non_met, NONE = Label::none;

// Rows 0..12; the index set used below leaves out 9 and 10.
const std::vector<Row> kRows = {
    {"ZAMBIA", "Fiscal policy", MET},          // 0  group Z/F
    {"ZAMBIA", "Fiscal policy", NON},          // 1  -> pair (0 or 7)
    {"ZAMBIA", "Monetary policy", NON},        // 2  no MET in Z/M: no pair
    {" ZAMBIA ", "Fiscal   policy\t", NON},    // 3  same group after white space collapsing -> pair
    {"KENYA", "Fiscal policy", MET},           // 4  group K/F
    {"KENYA", "Fiscal policy", NON},           // 5  -> pair (4)
    {"KENYA", "Fiscal policy", NONE},          // 6  unlabelled: never used
    {"ZAMBIA", "Fiscal policy", MET},          // 7  group Z/F
    {"GHANA", "Debt management", NON},         // 8  its only MET (9) is outside the index set
    {"GHANA", "Debt management", MET},         // 9  (left out)
    {"KENYA", "Fiscal policy", NON},           // 10 (left out)
    {"KENYA", "Fiscal policy", MET},           // 11 group K/F
    {"GHANA", "Fiscal policy", NON},           // 12 no MET in G/F (9 is another descriptor)
};
const std::vector<std::size_t> kIndex = {0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12};

}  // namespace

TEST_CASE("outcome_pairs: one pair per eligible Non-MET row, in row order, within the index set") {
  const auto table = table_of(kRows);
  for (std::uint64_t seed : {0u, 1u, 2u, 77u}) {
    CAPTURE(seed);
    const auto pairs = data::outcome_pairs(table, kIndex, seed);
    // Hand count: Non-MET rows 1, 3 (group Z/F, MET 0, 7) and 5 (group K/F, MET 4, 11).
    REQUIRE(pairs.size() == 3);
    CHECK(pairs[0].rejected == 1);
    CHECK(pairs[1].rejected == 3);
    CHECK(pairs[2].rejected == 5);
    CHECK((pairs[0].chosen == 0 || pairs[0].chosen == 7));
    CHECK((pairs[1].chosen == 0 || pairs[1].chosen == 7));
    CHECK((pairs[2].chosen == 4 || pairs[2].chosen == 11));
    const std::set<std::size_t> index(kIndex.begin(), kIndex.end());
    for (const auto& p : pairs) {
      CHECK(table.labels[p.chosen] == MET);
      CHECK(table.labels[p.rejected] == NON);
      CHECK(index.count(p.chosen) == 1);
      CHECK(index.count(p.rejected) == 1);
      CHECK(data::collapse_space(table.records[p.chosen].country_name) ==
            data::collapse_space(table.records[p.rejected].country_name));
      CHECK(data::collapse_space(table.records[p.chosen].economic_descriptor) ==
            data::collapse_space(table.records[p.rejected].economic_descriptor));
    }
  }
  // With every row available, row 8 pairs with 9 and row 10 with a K/F MET row.
  std::vector<std::size_t> all(kRows.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  const auto full = data::outcome_pairs(table, all, 0);
  REQUIRE(full.size() == 5);
  CHECK(full[3].rejected == 8);
  CHECK(full[3].chosen == 9);
  CHECK(full[4].rejected == 10);
  CHECK((full[4].chosen == 4 || full[4].chosen == 11));
  // The pairs follow the order of `rows`, not of the table.
  const std::vector<std::size_t> reversed{5, 4, 3, 1, 0};
  const auto rev = data::outcome_pairs(table, reversed, 0);
  REQUIRE(rev.size() == 3);
  CHECK(rev[0].rejected == 5);
  CHECK(rev[0].chosen == 4);
  CHECK(rev[1].rejected == 3);
  CHECK(rev[1].chosen == 0);  // 7 is not among the rows
  CHECK(rev[2].rejected == 1);
  // No MET row, no Non-MET row, or no rows at all: no pairs.
  CHECK(data::outcome_pairs(table, std::vector<std::size_t>{1, 2, 3, 5}, 0).empty());
  CHECK(data::outcome_pairs(table, std::vector<std::size_t>{0, 4, 7}, 0).empty());
  CHECK(data::outcome_pairs(table, std::vector<std::size_t>{}, 0).empty());
}

TEST_CASE("outcome_pairs: the MET row is drawn per seed, deterministically, covering the group") {
  // One group with 5 MET rows and 40 Non-MET rows.
  std::vector<Row> rows;
  for (std::size_t i = 0; i < 45; ++i) rows.push_back({"ZAMBIA", "Fiscal policy", i % 9 == 0 ? MET : NON});
  const auto table = table_of(rows);
  std::vector<std::size_t> index(rows.size());
  for (std::size_t i = 0; i < index.size(); ++i) index[i] = i;
  const std::set<std::size_t> met{0, 9, 18, 27, 36};

  const auto chosen = [&](std::uint64_t seed) {
    std::vector<std::size_t> c;
    const auto pairs = data::outcome_pairs(table, index, seed);
    REQUIRE(pairs.size() == 40);
    std::size_t k = 0;
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (rows[i].label == NON) CHECK(pairs[k++].rejected == i);
    for (const auto& p : pairs) {
      CHECK(met.count(p.chosen) == 1);
      c.push_back(p.chosen);
    }
    return c;
  };
  const auto a = chosen(3), b = chosen(3), c = chosen(4);
  CHECK(a == b);
  CHECK(a != c);
  // 40 uniform draws from 5 rows: each appears (P(one missing) < 5 * 0.8^40 ~ 7e-4 for a given
  // seed; this seed is fixed, so the check is deterministic).
  CHECK(std::set<std::size_t>(a.begin(), a.end()) == met);
  // Roughly uniform over many draws (seeds 0..49: 2000 draws, 400 expected per row).
  std::map<std::size_t, std::size_t> counts;
  for (std::uint64_t s = 0; s < 50; ++s)
    for (std::size_t v : chosen(s)) ++counts[v];
  for (const auto& [row, n] : counts) {
    CAPTURE(row);
    CHECK(n > 320);
    CHECK(n < 480);
  }
}

TEST_CASE("outcome_pairs: a table read from CSV text") {
  std::ostringstream csv;
  std::vector<data::MonaRecord> records;
  const std::vector<std::pair<std::string, std::string>> status = {
      {"ZAMBIA", "Met"}, {"ZAMBIA", "Not Met"}, {"ZAMBIA", ""}, {"ZAMBIA", "Waived"}, {"KENYA", "Not Met"}};
  for (std::size_t i = 0; i < status.size(); ++i) {
    data::MonaRecord r;
    r.arrangement_number = std::to_string(100 + i);
    r.country_name = status[i].first;
    r.arrangement_type = "ECF";
    r.economic_descriptor = "Fiscal policy";
    r.description = "condition " + std::to_string(i);
    r.pc_status = status[i].second;
    records.push_back(r);
  }
  data::write_mona_csv(csv, records);
  std::istringstream in(csv.str());
  const auto table = data::load_mona(in, "pairs.csv");
  REQUIRE(table.size() == 5);
  const auto pairs = data::outcome_pairs(table, table.labelled(), 0);
  // Non-MET ZAMBIA rows 1 (Not Met) and 3 (Waived) pair with row 0; KENYA has no MET row.
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[0].chosen == 0);
  CHECK(pairs[0].rejected == 1);
  CHECK(pairs[1].chosen == 0);
  CHECK(pairs[1].rejected == 3);
}
