// MemoryPlanner (core/memory_plan.hpp): the offsets it gives a recorded step are a valid
// packing (no two blocks alive at the same time overlap) no larger than the sum of the
// blocks and no smaller than the most bytes alive at once; a step that differs from its plan
// is served by its caller from that point and recorded again; what a step keeps past its end
// is never planned; an aborted step leaves no plan.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rlxf/core/memory_plan.hpp"
#include "rlxf/core/rng.hpp"

namespace {

using rlxf::MemoryPlanner;

std::size_t rounded(std::size_t bytes) { return (bytes + MemoryPlanner::align - 1) / MemoryPlanner::align * MemoryPlanner::align; }

// A step's allocations as a training step makes them: a random mix of allocations and
// releases of the most recent ones (forward activations kept for backward, temporaries
// freed at once), `keep` of them still alive at the end.
struct Script {
  std::vector<std::size_t> sizes;                   // allocation i's bytes
  std::vector<std::pair<bool, std::size_t>> events;  // (allocate?, allocation index)
};

Script random_script(std::uint64_t seed, std::size_t n, std::size_t keep) {
  rlxf::Rng rng(seed);
  Script s;
  std::vector<std::size_t> alive;
  while (s.sizes.size() < n || alive.size() > keep) {
    const bool alloc = s.sizes.size() < n && (alive.empty() || rng.next_below(3) != 0);
    if (alloc) {
      s.sizes.push_back(1 + rng.next_below(1u << (4 + rng.next_below(14))));
      s.events.push_back({true, s.sizes.size() - 1});
      alive.push_back(s.sizes.size() - 1);
    } else {  // release one of the last few
      const std::size_t k = alive.size() - 1 - rng.next_below(static_cast<std::uint32_t>(std::min<std::size_t>(alive.size(), 3)));
      s.events.push_back({false, alive[k]});
      alive.erase(alive.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
  return s;
}

struct Run {
  std::vector<MemoryPlanner::Grant> grants;
  std::vector<std::uint64_t> kept;  // ids alive at the end
};

// Runs the script as one planned step; `hold(run)`, called before each release, names an
// allocation whose release is skipped (or returns s.sizes.size() for none).
template <class Hold>
Run run_step(MemoryPlanner& planner, const Script& s, std::uint64_t key, const Hold& hold) {
  Run r;
  r.grants.resize(s.sizes.size());
  std::vector<bool> released(s.sizes.size(), false);
  planner.begin(key);
  for (const auto& [alloc, i] : s.events) {
    if (alloc) r.grants[i] = planner.allocate(s.sizes[i]);
    else if (hold(r) != i) planner.release(r.grants[i].id), released[i] = true;
  }
  planner.end();
  for (std::size_t i = 0; i < s.sizes.size(); ++i)
    if (!released[i]) r.kept.push_back(r.grants[i].id);
  return r;
}
Run run_step(MemoryPlanner& planner, const Script& s, std::uint64_t key = 7) {
  return run_step(planner, s, key, [&](const Run&) { return s.sizes.size(); });
}

}  // namespace

TEST_CASE("MemoryPlanner: a recorded step replays from the arena in a valid, tight packing") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    const Script s = random_script(seed, 200, 0);
    MemoryPlanner planner;
    const Run first = run_step(planner, s);
    for (const auto& g : first.grants) CHECK(g.offset == MemoryPlanner::unplanned);  // recorded: the caller's
    CHECK(planner.stats().recorded == 1);
    const std::size_t arena = planner.arena_bytes();
    const Run again = run_step(planner, s);
    CHECK(planner.stats().replayed == 1);
    CHECK(planner.stats().diverged == 0);
    // Every allocation from the arena, aligned, inside it, and no two alive at once overlap.
    std::vector<std::size_t> start(s.sizes.size()), end(s.sizes.size());
    for (std::size_t t = 0; t < s.events.size(); ++t) (s.events[t].first ? start : end)[s.events[t].second] = t;
    std::size_t sum = 0;
    for (std::size_t i = 0; i < s.sizes.size(); ++i) {
      const auto& g = again.grants[i];
      REQUIRE(g.offset != MemoryPlanner::unplanned);
      CHECK(g.offset % MemoryPlanner::align == 0);
      CHECK(g.offset + rounded(s.sizes[i]) <= arena);
      sum += rounded(s.sizes[i]);
      for (std::size_t j = 0; j < i; ++j) {
        const bool together = start[i] < end[j] && start[j] < end[i];
        const bool apart = g.offset + rounded(s.sizes[i]) <= again.grants[j].offset ||
                           again.grants[j].offset + rounded(s.sizes[j]) <= g.offset;
        if (together) REQUIRE(apart);
      }
    }
    // Bounds: the most bytes alive at one time <= arena <= all the bytes.
    std::size_t live = 0, most = 0;
    for (const auto& [alloc, i] : s.events) {
      live = alloc ? live + rounded(s.sizes[i]) : live - rounded(s.sizes[i]);
      most = std::max(most, live);
    }
    CHECK(arena >= most);
    CHECK(arena <= sum);
    CHECK(arena < sum);  // reuse happened (200 blocks, most of them short-lived)
  }
}

TEST_CASE("MemoryPlanner: a step unlike its plan is left to its caller from where it differs, then recorded again") {
  const Script s = random_script(3, 50, 0);
  MemoryPlanner planner;
  run_step(planner, s);
  Script other = s;
  other.sizes[20] += 1;  // the 21st allocation is another size: the plan holds up to it
  std::size_t first_changed = 0;
  for (std::size_t t = 0; t < other.events.size(); ++t)
    if (other.events[t].first && other.events[t].second == 20) first_changed = t;
  const Run r = run_step(planner, other);
  for (std::size_t t = 0; t < other.events.size(); ++t) {
    if (!other.events[t].first) continue;
    const std::size_t i = other.events[t].second;
    CHECK((r.grants[i].offset != MemoryPlanner::unplanned) == (t < first_changed));
  }
  CHECK(planner.stats().diverged == 1);
  CHECK(planner.plans() == 0);  // dropped
  run_step(planner, other);     // recorded
  const Run third = run_step(planner, other);
  for (const auto& g : third.grants) CHECK(g.offset != MemoryPlanner::unplanned);
  CHECK(planner.stats().recorded == 2);
  CHECK(planner.stats().replayed == 1);
}

TEST_CASE("MemoryPlanner: what a step keeps is never planned, and a block held past its step is not handed out again") {
  const Script s = random_script(5, 60, 4);
  MemoryPlanner planner;
  const Run first = run_step(planner, s);
  for (std::uint64_t id : first.kept) planner.release(id);
  // Replayed, except that the largest block the script releases is kept (a step's output held).
  std::size_t held = 0;
  for (const auto& [alloc, i] : s.events)
    if (!alloc && s.sizes[i] > s.sizes[held]) held = i;
  const Run second = run_step(planner, s, 7, [&](const Run&) { return held; });
  std::size_t own = 0;
  for (const auto& g : second.grants) own += g.offset == MemoryPlanner::unplanned;
  CHECK(own == 4);  // the 4 allocations alive at the end of the recorded step
  CHECK(planner.stats().replayed == 1);
  REQUIRE(second.grants[held].offset != MemoryPlanner::unplanned);
  const std::size_t held_at = second.grants[held].offset, held_end = held_at + rounded(s.sizes[held]);
  // The next step gets nothing that overlaps the held block, and leaves its plan.
  const Run third = run_step(planner, s);
  for (std::size_t i = 0; i < s.sizes.size(); ++i) {
    const auto& g = third.grants[i];
    if (g.offset != MemoryPlanner::unplanned) CHECK((g.offset + rounded(s.sizes[i]) <= held_at || held_end <= g.offset));
  }
  CHECK(planner.stats().diverged == 1);
  CHECK(planner.plans() == 0);
}

TEST_CASE("MemoryPlanner: keys keep plans apart; an aborted step keeps none; outside a step nothing is planned") {
  const Script a = random_script(8, 30, 0), b = random_script(9, 30, 0);
  MemoryPlanner planner;
  run_step(planner, a, 1);
  run_step(planner, b, 2);
  CHECK(planner.plans() == 2);
  run_step(planner, a, 1);
  run_step(planner, b, 2);
  CHECK(planner.stats().replayed == 2);
  // An exception ended the step: no plan from it.
  planner.begin(3);
  planner.allocate(1000);
  planner.end(false);
  CHECK(planner.plans() == 2);
  // Outside a step: the caller's, always.
  CHECK(planner.allocate(512).offset == MemoryPlanner::unplanned);
  CHECK_THROWS_AS(planner.end(), rlxf::Error);
  planner.begin(1);
  CHECK_THROWS_AS(planner.begin(1), rlxf::Error);
}
