#pragma once
// Preference pairs from historical outcomes: a MET condition is preferred to a Non-MET one
// proposed for the same country and economic descriptor, so that the pair differs mainly in
// what the condition asks, not where it is asked.
//
//   const auto pairs = data::outcome_pairs(table, split.train, seed);
//   // pairs[k] = {index of the MET row, index of the Non-MET row}
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/core/rng.hpp"
#include "rlxf/data/mona.hpp"

namespace rlxf::data {

struct OutcomePair {
  std::size_t chosen;    // a MET row
  std::size_t rejected;  // a Non-MET row of the same country and economic descriptor
};

// One pair per Non-MET row among `rows` whose (country, descriptor) group has a MET row among
// `rows`: the MET row is drawn uniformly from the group (seeded). Pairs come out in row order.
inline std::vector<OutcomePair> outcome_pairs(const MonaTable& table, std::span<const std::size_t> rows,
                                              std::uint64_t seed) {
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> met;
  const auto key = [&](std::size_t i) {
    return std::pair(collapse_space(table.records.at(i).country_name),
                     collapse_space(table.records.at(i).economic_descriptor));
  };
  for (std::size_t i : rows)
    if (table.labels.at(i) == Label::met)
      met[key(i)].push_back(i);
  Rng rng(seed, 0x5041495253ULL);  // "PAIRS"
  std::vector<OutcomePair> pairs;
  for (std::size_t i : rows) {
    if (table.labels[i] != Label::non_met)
      continue;
    const auto group = met.find(key(i));
    if (group == met.end())
      continue;
    const auto& candidates = group->second;
    pairs.push_back({candidates[rng.next_below(static_cast<std::uint32_t>(candidates.size()))], i});
  }
  return pairs;
}

}  // namespace rlxf::data
