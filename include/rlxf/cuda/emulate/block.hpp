#pragma once
// BlockRunner: runs one thread block of a kernel on the CPU, one fiber per GPU thread.
//
// Threads run one at a time, in thread order, each until it reaches a block barrier or a
// warp-wide operation; a barrier releases when every thread of the block has reached it (at
// the same source line), a warp operation when all 32 lanes have. Running the threads this
// way is deterministic, and it is what lets the runner check what a GPU would not report:
// - shared memory is poisoned (0xff bytes: NaN in every float type) at block start, and,
//   with Options::check_shared, every byte carries a shadow of its last writer and readers
//   in the current barrier interval, so an access outside an array, a read of a byte no
//   thread wrote, and two threads touching a byte (one writing) with no barrier between
//   them (or no __syncwarp, within a warp) raise a KernelFault;
// - a barrier some threads skip (exited, or waiting elsewhere) and a warp operation some
//   lanes miss raise a KernelFault naming the threads and the source lines.
#include <boost/context/fiber.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <source_location>
#include <sstream>
#include <string>
#include <vector>

#include "rlxf/cuda/emulate/fault.hpp"
#include "rlxf/cuda/emulate/fragment.hpp"
#include "rlxf/cuda/emulate/options.hpp"
#include "rlxf/cuda/emulate/stack_pool.hpp"
#include "rlxf/cuda/platform.hpp"

namespace rlxf::cuda::emulate {

class BlockRunner {
 public:
  // `stacks` provides the fibers' stacks (see stack_pool()); it must outlive the runner.
  BlockRunner(const LaunchConfig& config, const Options& options, StackPool& stacks)
      : config_(config),
        options_(options),
        threads_count_(static_cast<int>(config.block.count())),
        warps_count_(ceil_div(threads_count_, warp_size)),
        stacks_(stacks),
        smem_(static_cast<std::size_t>(config.shared_bytes) + alignment),
        shadow_(options.check_shared ? static_cast<std::size_t>(config.shared_bytes) : 0),
        threads_(static_cast<std::size_t>(threads_count_)),
        warps_(static_cast<std::size_t>(warps_count_)) {
    if (threads_count_ % warp_size != 0)
      raise(Fault::bad_launch, "the emulator needs whole warps: a block of ", threads_count_,
            " threads is not a multiple of 32");
    for (int k = 0; k < static_cast<int>(FragmentKind::count); ++k)
      maps_[static_cast<std::size_t>(k)] =
          FragmentMap(static_cast<FragmentKind>(k), options.fragments, options.seed);
  }

  // Runs block `block_idx`: body(thread) is called on each thread's fiber with the thread's
  // rank (x fastest). Rethrows the first fault with the block and thread named.
  template <class Body>
  void run(Dim3 block_idx, Body& body) {
    begin_block(block_idx);
    for (int t = 0; t < threads_count_; ++t) {
      threads_[static_cast<std::size_t>(t)].fiber = boost::context::fiber(
          std::allocator_arg, PooledStack{&stacks_}, [this, t, &body](boost::context::fiber&& sched) {
            scheduler_ = std::move(sched);
            try {
              body(t);
            } catch (const boost::context::detail::forced_unwind&) {
              throw;  // the fiber is being destroyed: let Boost unwind it
            } catch (...) {
              if (!fault_) fault_ = std::current_exception();
            }
            threads_[static_cast<std::size_t>(t)].status = Status::done;
            ++done_;
            return std::move(scheduler_);
          });
    }
    while (done_ < threads_count_ && !fault_) {
      bool ran = false;
      for (int t = 0; t < threads_count_ && !fault_; ++t) {
        auto& th = threads_[static_cast<std::size_t>(t)];
        if (th.status != Status::runnable) continue;
        current_ = t;
        th.fiber = std::move(th.fiber).resume();
        ran = true;
      }
      if (!ran && !fault_) fault_ = std::make_exception_ptr(stuck_fault());
    }
    if (fault_) {
      for (auto& th : threads_) th.fiber = {};  // unwinds the stacks of suspended threads
      std::exception_ptr f = std::exchange(fault_, nullptr);
      try {
        std::rethrow_exception(f);
      } catch (KernelFault& e) {
        e.add_context(concat("block ", dim_text(block_idx)));
        throw;
      }
    }
  }

  // ---- what a thread's context calls (always from the running thread's fiber) ----
  const LaunchConfig& config() const { return config_; }
  const Options& options() const { return options_; }
  Dim3 block_idx() const { return block_idx_; }
  int current() const { return current_; }
  const FragmentMap& map(FragmentKind k) const { return maps_[static_cast<std::size_t>(k)]; }

  // The block barrier (__syncthreads).
  void barrier(std::source_location where) {
    auto& th = threads_[static_cast<std::size_t>(current_)];
    th.status = Status::at_barrier;
    th.where = where;
    if (++at_barrier_ < threads_count_) return suspend();
    for (const auto& other : threads_)
      if (!same_place(other.where, where))
        raise(Fault::barrier_divergence, "barrier divergence: ", groups_text());
    at_barrier_ = 0;
    ++epoch_;
    for (auto& other : threads_) other.status = Status::runnable;
  }

  // A warp-wide rendezvous: returns once all 32 lanes of the caller's warp have called it
  // from the same source line. Returns the generation (its parity picks the scratch
  // buffer lanes exchange data through; see Warp). `sync_memory` makes it a __syncwarp.
  std::uint64_t warp_rendezvous(std::source_location where, bool sync_memory) {
    auto& th = threads_[static_cast<std::size_t>(current_)];
    auto& w = warps_[static_cast<std::size_t>(current_ / warp_size)];
    const std::uint64_t generation = w.generation;
    th.status = Status::at_warp;
    th.where = where;
    if (++w.arrived < warp_size) {
      suspend();
      return generation;
    }
    const int first = current_ / warp_size * warp_size;
    for (int lane = 0; lane < warp_size; ++lane)
      if (!same_place(threads_[static_cast<std::size_t>(first + lane)].where, where))
        raise(Fault::warp_divergence, "warp divergence: ", groups_text());
    w.arrived = 0;
    ++w.generation;
    if (sync_memory) ++w.memory_syncs;
    for (int lane = 0; lane < warp_size; ++lane)
      threads_[static_cast<std::size_t>(first + lane)].status = Status::runnable;
    return generation;
  }

  // Scratch a warp exchanges values through (shuffles, ballots, mma operands).
  struct Warp {
    int arrived = 0;
    std::uint64_t generation = 0;
    std::uint64_t memory_syncs = 0;
    std::uint64_t lanes[2][warp_size] = {};
    float tiles[2][3][256] = {};  // A, B, C of an m16n16k16 mma, as float
  };
  Warp& warp() { return warps_[static_cast<std::size_t>(current_ / warp_size)]; }

  // Names a shared-memory element in messages: array name and index, e.g. "sA[37]".
  struct Access {
    const char* array;
    long index;
  };
  // Shared memory: `bytes` at byte offset `offset`, read or written by the current thread.
  std::byte* shared_base() { return aligned_smem(); }
  void shared_read(std::size_t offset, std::size_t bytes, Access what) {
    if (!options_.check_shared) return;
    for (std::size_t b = offset; b < offset + bytes; ++b) on_read(b, what);
  }
  void shared_write(std::size_t offset, std::size_t bytes, Access what) {
    if (!options_.check_shared) return;
    for (std::size_t b = offset; b < offset + bytes; ++b) on_write(b, what);
  }

  // "(x,y,z)" of a thread rank.
  std::string thread_text(int t) const {
    const int bx = config_.block.x, by = config_.block.y;
    return dim_text(Dim3{t % bx, t / bx % by, t / (bx * by)});
  }

  static constexpr std::size_t alignment = 128;

 private:
  enum class Status : std::uint8_t { runnable, at_barrier, at_warp, done };
  struct Thread {
    boost::context::fiber fiber;
    Status status = Status::runnable;
    std::source_location where;
  };
  // Per shared byte: the last writer and the readers since the last barrier.
  struct Shadow {
    std::int32_t writer = -1;         // -1: never written in this block
    std::uint32_t write_epoch = 0;
    std::uint64_t write_syncs = 0;    // the writer's warp's __syncwarp count at the write
    std::int32_t reader = -1;         // -2: several threads
    std::int32_t read_warp = -1;      // the readers' warp, -1 if several warps
    std::uint32_t read_epoch = 0;
    std::uint64_t read_syncs = 0;     // lowest __syncwarp count among the readers
  };

  template <class... Args>
  static std::string concat(const Args&... args) {
    return detail::concat(args...);
  }
  static std::string text(Access a) { return concat(a.array, "[", a.index, "]"); }
  static std::string dim_text(Dim3 d) { return concat("(", d.x, ",", d.y, ",", d.z, ")"); }
  static bool same_place(const std::source_location& a, const std::source_location& b) {
    return a.line() == b.line() && a.column() == b.column() &&
           std::strcmp(a.file_name(), b.file_name()) == 0;
  }
  static std::string place_text(const std::source_location& w) {
    std::string file = w.file_name();
    if (const auto slash = file.rfind('/'); slash != std::string::npos) file = file.substr(slash + 1);
    return concat(file, ":", w.line());
  }

  std::byte* aligned_smem() {
    auto p = reinterpret_cast<std::uintptr_t>(smem_.data());
    return smem_.data() + ((alignment - p % alignment) % alignment);
  }

  void begin_block(Dim3 block_idx) {
    block_idx_ = block_idx;
    std::memset(aligned_smem(), 0xff, static_cast<std::size_t>(config_.shared_bytes));
    std::fill(shadow_.begin(), shadow_.end(), Shadow{});
    for (auto& th : threads_) th = Thread{};
    for (auto& w : warps_) w = Warp{};
    epoch_ = 1;
    done_ = 0;
    at_barrier_ = 0;
  }

  void suspend() { scheduler_ = std::move(scheduler_).resume(); }

  int warp_of(int t) const { return t / warp_size; }
  std::uint64_t syncs_of(int t) const { return warps_[static_cast<std::size_t>(warp_of(t))].memory_syncs; }
  // Whether thread t's access now is ordered after thread `other`'s access made when its
  // warp had `syncs` __syncwarps: only through a later __syncwarp of their common warp.
  bool ordered_after(int t, int other, std::uint64_t syncs) const {
    return warp_of(t) == warp_of(other) && syncs_of(t) > syncs;
  }

  [[noreturn]] void race(Access what, const char* access, int other, const char* other_access) {
    raise(Fault::shared_race, "shared-memory race on ", text(what), ": thread ", thread_text(current_),
          " ", access, " it after thread ", thread_text(other), " ", other_access,
          " it with no barrier between (a missing __syncthreads?)");
  }

  void on_read(std::size_t b, Access what) {
    Shadow& s = shadow_[b];
    const int t = current_;
    if (s.writer == -1)
      raise(Fault::uninitialised_read, "read of uninitialised shared memory: thread ",
            thread_text(t), " reads ", text(what), " (byte ", b, "), which no thread of the block wrote");
    if (s.write_epoch == epoch_ && s.writer != t && !ordered_after(t, s.writer, s.write_syncs))
      race(what, "reads", s.writer, "wrote");
    if (s.read_epoch != epoch_) {
      s.reader = t;
      s.read_warp = warp_of(t);
      s.read_epoch = epoch_;
      s.read_syncs = syncs_of(t);
    } else if (s.reader != t) {
      s.reader = -2;
      if (s.read_warp != warp_of(t)) s.read_warp = -1;
      s.read_syncs = std::min(s.read_syncs, syncs_of(t));
    }
  }

  void on_write(std::size_t b, Access what) {
    Shadow& s = shadow_[b];
    const int t = current_;
    if (s.write_epoch == epoch_ && s.writer != t && !ordered_after(t, s.writer, s.write_syncs))
      race(what, "writes", s.writer, "wrote");
    if (s.read_epoch == epoch_ && s.reader != t) {
      if (s.reader >= 0 && !ordered_after(t, s.reader, s.read_syncs)) race(what, "writes", s.reader, "read");
      if (s.reader == -2 && !(s.read_warp == warp_of(t) && syncs_of(t) > s.read_syncs))
        raise(Fault::shared_race, "shared-memory race on ", text(what), ": thread ", thread_text(t),
              " writes it after other threads read it with no barrier between (a missing "
              "__syncthreads?)");
    }
    s.writer = t;
    s.write_epoch = epoch_;
    s.write_syncs = syncs_of(t);
  }

  // Threads grouped by where they stand, e.g. "threads (0,0,0)-(63,0,0) wait at the barrier
  // at gemm.hpp:120; threads (64,0,0)-(127,0,0) exited".
  std::string groups_text() const {
    std::ostringstream os;
    int start = 0;
    auto describe = [&](int t) {
      const auto& th = threads_[static_cast<std::size_t>(t)];
      switch (th.status) {
        case Status::done: return std::string("exited");
        case Status::at_barrier: return "wait at the barrier at " + place_text(th.where);
        case Status::at_warp: return "wait in a warp operation at " + place_text(th.where);
        case Status::runnable: return std::string("have not arrived yet");
      }
      return std::string();
    };
    for (int t = 1; t <= threads_count_; ++t) {
      if (t < threads_count_ && describe(t) == describe(start)) continue;
      if (start > 0) os << "; ";
      os << (t - start == 1 ? "thread " : "threads ") << thread_text(start);
      if (t - start > 1) os << "-" << thread_text(t - 1);
      os << " " << describe(start);
      start = t;
    }
    return os.str();
  }

  // No thread can run and some have not exited: a barrier or warp operation that can never
  // complete.
  KernelFault stuck_fault() const {
    bool barrier = false;
    for (const auto& th : threads_) barrier = barrier || th.status == Status::at_barrier;
    return barrier ? KernelFault(Fault::barrier_divergence, "barrier divergence: " + groups_text())
                   : KernelFault(Fault::warp_divergence, "warp divergence: " + groups_text());
  }

  LaunchConfig config_;
  Options options_;
  int threads_count_, warps_count_;
  StackPool& stacks_;
  std::vector<std::byte> smem_;
  std::vector<Shadow> shadow_;
  std::vector<Thread> threads_;
  std::vector<Warp> warps_;
  std::array<FragmentMap, static_cast<std::size_t>(FragmentKind::count)> maps_;
  boost::context::fiber scheduler_;
  std::exception_ptr fault_;
  Dim3 block_idx_;
  int current_ = 0, done_ = 0, at_barrier_ = 0;
  std::uint32_t epoch_ = 1;
};

}  // namespace rlxf::cuda::emulate
