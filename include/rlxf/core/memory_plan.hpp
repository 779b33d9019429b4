#pragma once
// MemoryPlanner: the memory a training step allocates, laid out once per step shape and then
// handed out from one arena, so a step of a shape seen before allocates nothing.
//
// A planned step (begin .. end) is identified by the caller's key (e.g. the minibatch's rows
// and width) and the size of its first allocation (sizes are compared exactly, as asked). The
// first step of an identity is recorded: every allocation is left to the caller (a pool
// allocation), and its size and lifetime (the allocations and releases before and after it)
// are kept. At its end the allocations released
// within the step are placed in one address range so that no two alive at the same time
// overlap (first fit, largest first: the static planning of TFLite's and TVM's arenas); what
// was still alive at the end (an output kept across steps) stays the caller's. A later step of
// the same identity replays the plan: its i-th allocation gets the i-th offset in the arena if
// its size is the recorded one and no arena allocation still alive overlaps it. Anything else
// (another size, more allocations than recorded, a block still held from earlier) is handed to
// the caller instead and the plan is recorded again next time, so a plan that does not fit a
// step costs memory, never correctness.
//
// The planner does bookkeeping only (offsets and sizes in bytes); cuda::Backend owns the arena
// and the allocations (core/ knows no device). Not thread-safe: one planner per backend, used
// from the thread that queues its work.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"

namespace rlxf {

class MemoryPlanner {
 public:
  // Offsets and sizes are multiples of this (cudaMalloc's alignment).
  static constexpr std::size_t align = 256;
  // A grant's offset when the caller allocates the memory itself.
  static constexpr std::size_t unplanned = std::numeric_limits<std::size_t>::max();
  // Plans kept (the least recently used is dropped beyond this).
  static constexpr std::size_t max_plans = 16;

  struct Grant {
    std::uint64_t id = 0;              // for release()
    std::size_t offset = unplanned;    // in the arena, or unplanned
  };
  struct Stats {
    std::size_t recorded = 0;    // steps recorded into a plan
    std::size_t replayed = 0;    // steps served wholly from the arena
    std::size_t diverged = 0;    // steps that left their plan (recorded again next time)
  };

  void begin(std::uint64_t key) {
    RLXF_REQUIRE(!in_step_, "MemoryPlanner: a planned step began inside another");
    in_step_ = true;
    key_ = key;
    plan_ = nullptr;
    recording_ = false;
    clean_ = true;
    cursor_ = 0;
    tick_ = 0;
    events_.clear();
    recorded_.clear();
  }

  // Memory for `bytes` inside a step (outside one, the caller's: offset unplanned).
  Grant allocate(std::size_t bytes) {
    const Grant g{next_id_++, in_step_ ? place(bytes) : unplanned};
    if (g.offset != unplanned) live_.emplace(g.id, Block{g.offset, round_up(bytes), generation_});
    if (recording_) {
      recorded_.emplace(g.id, events_.size());
      events_.push_back({bytes, tick_++, open});
    }
    return g;
  }

  // The memory of grant `id` is no longer used (at any time, in a step or after it).
  void release(std::uint64_t id) {
    live_.erase(id);
    if (!recording_) return;
    const auto it = recorded_.find(id);
    if (it != recorded_.end()) events_[it->second].end = tick_++;
  }

  // Ends the step; `completed` false (an exception left it) keeps no plan from it.
  void end(bool completed = true) {
    RLXF_REQUIRE(in_step_, "MemoryPlanner: end() without begin()");
    in_step_ = false;
    if (recording_) {
      recording_ = false;
      if (completed && !events_.empty()) add_plan();
    } else if (plan_ != nullptr) {
      if (clean_ && cursor_ == plan_->bytes.size()) ++stats_.replayed;
      else drop(plan_);  // left its plan: recorded again next time
    }
    plan_ = nullptr;
    recorded_.clear();
  }

  // Bytes the arena must have for every plan kept.
  std::size_t arena_bytes() const {
    std::size_t n = 0;
    for (const Plan& p : plans_) n = std::max(n, p.peak);
    return n;
  }
  // The arena was replaced: arena blocks still alive are in the old one and overlap nothing.
  void new_arena() { ++generation_; }

  const Stats& stats() const { return stats_; }
  std::size_t plans() const { return plans_.size(); }

 private:
  static constexpr std::size_t open = std::numeric_limits<std::size_t>::max();

  struct Plan {
    std::uint64_t key = 0;
    std::vector<std::size_t> bytes, offsets;
    std::size_t peak = 0;
    std::uint64_t last_used = 0;
  };
  struct Event {
    std::size_t bytes, start, end;  // bytes as asked (placed rounded up to align); end: open while alive
  };
  struct Block {
    std::size_t offset, bytes;
    std::uint64_t generation;
  };

  static std::size_t round_up(std::size_t bytes) { return (std::max<std::size_t>(bytes, 1) + align - 1) / align * align; }

  // The offset of the step's next allocation.
  std::size_t place(std::size_t bytes) {
    if (cursor_ == 0 && plan_ == nullptr && !recording_) {  // the first allocation picks the plan
      for (Plan& p : plans_)
        if (p.key == key_ && p.bytes.front() == bytes) plan_ = &p;
      if (plan_ == nullptr) {
        recording_ = true;
        return unplanned;
      }
      plan_->last_used = ++uses_;
    }
    if (recording_ || plan_ == nullptr) return unplanned;
    const std::size_t i = cursor_++;
    if (!clean_ || i >= plan_->bytes.size() || plan_->bytes[i] != bytes) {
      if (clean_) ++stats_.diverged;
      clean_ = false;
      return unplanned;
    }
    const std::size_t at = plan_->offsets[i];
    if (at == unplanned) return unplanned;
    for (const auto& [id, b] : live_)
      if (b.generation == generation_ && b.offset < at + round_up(bytes) && at < b.offset + b.bytes) {
        ++stats_.diverged;  // an arena block is still held (kept from an earlier step)
        clean_ = false;
        return unplanned;
      }
    return at;
  }

  // The recorded step as a plan: its released allocations placed, largest first, at the
  // lowest offset free of every placed allocation whose lifetime overlaps.
  void add_plan() {
    Plan p;
    p.key = key_;
    p.last_used = ++uses_;
    p.bytes.reserve(events_.size());
    for (const Event& e : events_) p.bytes.push_back(e.bytes);
    p.offsets.assign(events_.size(), unplanned);
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < events_.size(); ++i)
      if (events_[i].end != open) order.push_back(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return events_[a].bytes > events_[b].bytes; });
    std::vector<std::size_t> placed;  // by offset
    std::vector<std::pair<std::size_t, std::size_t>> taken;
    for (const std::size_t i : order) {
      const Event& e = events_[i];
      const std::size_t size = round_up(e.bytes);
      taken.clear();
      for (const std::size_t j : placed)
        if (events_[j].start < e.end && e.start < events_[j].end)
          taken.emplace_back(p.offsets[j], round_up(events_[j].bytes));
      std::sort(taken.begin(), taken.end());
      std::size_t at = 0;
      for (const auto& [offset, bytes] : taken) {
        if (offset >= at + size) break;
        at = std::max(at, offset + bytes);
      }
      p.offsets[i] = at;
      p.peak = std::max(p.peak, at + size);
      placed.push_back(i);
    }
    ++stats_.recorded;
    if (plans_.size() == max_plans)
      plans_.erase(std::min_element(plans_.begin(), plans_.end(),
                                    [](const Plan& a, const Plan& b) { return a.last_used < b.last_used; }));
    plans_.push_back(std::move(p));
  }

  void drop(const Plan* p) {
    plans_.erase(plans_.begin() + (p - plans_.data()));
  }

  std::vector<Plan> plans_;
  std::unordered_map<std::uint64_t, Block> live_;  // arena grants not yet released
  std::vector<Event> events_;                       // the step being recorded
  std::unordered_map<std::uint64_t, std::size_t> recorded_;  // its grants' events
  Plan* plan_ = nullptr;  // the plan being replayed
  std::uint64_t key_ = 0, next_id_ = 1, uses_ = 0, generation_ = 0;
  std::size_t cursor_ = 0, tick_ = 0;
  bool in_step_ = false, recording_ = false, clean_ = true;
  Stats stats_;
};

}  // namespace rlxf
