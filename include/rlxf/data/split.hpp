#pragma once
// Train/test splits of row indices, seeded and reproducible (Philox rlxf::Rng, so a seed gives
// the same split on every machine and build).
//
//   Split s = random_split(table.size(), 0.2, 7);                  // rows at random
//   Split g = group_split(table.column(&MonaRecord::arrangement_number), 0.2, 7);  // by arrangement
//   Split v = group_split(groups, s.train, 0.1, 8);                // validation out of train
//
// Every function returns sorted index lists; train and test are disjoint and together hold
// every index given. The overloads taking `indices` split that subset of rows (e.g. the
// labelled rows, or the train side of an earlier split) and return indices from it.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/rng.hpp"

namespace rlxf::data {

struct Split {
  std::vector<std::size_t> train;
  std::vector<std::size_t> test;
};

namespace split_detail {

// Internals (not rlxf::data::detail: that name would hide rlxf::detail from csv.hpp).
// The RNG stream splits draw from (so seed s here does not replay another use of seed s).
inline constexpr std::uint64_t split_stream = 0x53504C4954ULL;  // "SPLIT"

inline void check_fraction(double test_fraction, const char* fn) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    fail(fn, ": test_fraction must be in (0, 1) (got ", test_fraction, ")");
}

// Shuffles `v` in place: Fisher-Yates with draws from `rng`.
template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {
  if (v.size() > std::numeric_limits<std::uint32_t>::max())
    fail("split: more than 2^32 - 1 items to shuffle (", v.size(), ")");
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = rng.next_below(static_cast<std::uint32_t>(i));
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace split_detail

// Splits the rows listed in `indices` at random: round(size * test_fraction) of them (half
// away from zero) go to test, the rest to train. test_fraction must be in (0, 1).
inline Split random_split(std::span<const std::size_t> indices, double test_fraction,
                          std::uint64_t seed) {
  split_detail::check_fraction(test_fraction, "random_split");
  std::vector<std::size_t> order(indices.begin(), indices.end());
  Rng rng(seed, split_detail::split_stream);
  split_detail::shuffle(order, rng);
  const auto n_test = static_cast<std::size_t>(
      std::llround(static_cast<double>(order.size()) * test_fraction));
  Split s;
  s.test.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_test));
  s.train.assign(order.begin() + static_cast<std::ptrdiff_t>(n_test), order.end());
  std::sort(s.test.begin(), s.test.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

// Splits rows 0 .. n-1 at random (see above).
inline Split random_split(std::size_t n, double test_fraction, std::uint64_t seed) {
  std::vector<std::size_t> all(n);
  std::iota(all.begin(), all.end(), std::size_t{0});
  return random_split(all, test_fraction, seed);
}

// Splits the rows listed in `indices` so that rows of one group (groups[i] is row i's group,
// compared as exact strings, e.g. the arrangement number) all land on one side, and the test
// side holds as close to test_fraction of the rows as whole groups allow. The distinct groups
// (in order of first appearance) are shuffled; in that order, each group that still fits goes
// to test while the test rows stay at or under test_fraction * rows; then one more group goes
// to test if that lands closer to the target (the first in the order that does best). So the
// test share misses the fraction by less than the smallest group left out. With few groups a
// side may come out empty (one group is never split); check the sizes.
inline Split group_split(std::span<const std::string> groups, std::span<const std::size_t> indices,
                         double test_fraction, std::uint64_t seed) {
  split_detail::check_fraction(test_fraction, "group_split");
  std::unordered_map<std::string_view, std::size_t> id_of;
  std::vector<std::size_t> group_of(indices.size());
  std::vector<std::size_t> rows_in;  // rows per group id
  for (std::size_t k = 0; k < indices.size(); ++k) {
    if (indices[k] >= groups.size())
      fail("group_split: index ", indices[k], " is out of range for ", groups.size(), " groups");
    const auto [it, fresh] = id_of.emplace(groups[indices[k]], rows_in.size());
    if (fresh) rows_in.push_back(0);
    group_of[k] = it->second;
    ++rows_in[it->second];
  }
  std::vector<std::size_t> order(rows_in.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng rng(seed, split_detail::split_stream);
  split_detail::shuffle(order, rng);

  const double target = static_cast<double>(indices.size()) * test_fraction;
  std::vector<char> in_test(rows_in.size(), 0);
  std::size_t taken = 0;
  // Groups that fit under the target, in shuffled order; then at most one more: the first
  // with the smallest overshoot, if that is smaller than the gap left.
  for (const std::size_t g : order) {
    if (static_cast<double>(taken + rows_in[g]) <= target) {
      in_test[g] = 1;
      taken += rows_in[g];
    }
  }
  double best_error = target - static_cast<double>(taken);
  std::size_t best = rows_in.size();
  for (const std::size_t g : order) {
    const double error = static_cast<double>(taken + rows_in[g]) - target;
    if (!in_test[g] && error < best_error) {
      best_error = error;
      best = g;
    }
  }
  if (best != rows_in.size()) {
    in_test[best] = 1;
    taken += rows_in[best];
  }
  Split s;
  s.test.reserve(taken);
  s.train.reserve(indices.size() - taken);
  for (std::size_t k = 0; k < indices.size(); ++k)
    (in_test[group_of[k]] ? s.test : s.train).push_back(indices[k]);
  std::sort(s.test.begin(), s.test.end());
  std::sort(s.train.begin(), s.train.end());
  return s;
}

// Splits rows 0 .. groups.size()-1 by group (see above).
inline Split group_split(std::span<const std::string> groups, double test_fraction,
                         std::uint64_t seed) {
  std::vector<std::size_t> all(groups.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  return group_split(groups, all, test_fraction, seed);
}

}  // namespace rlxf::data
