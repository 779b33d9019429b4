#pragma once
// Fiber stacks for the emulator: one per GPU thread of a block, each with a guard page below
// it (a kernel that overflows its stack faults instead of corrupting a neighbour), kept for
// reuse across blocks and launches because mapping memory costs more than running a block.
#include <sys/mman.h>
#include <unistd.h>

#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <map>
#include <memory>
#include <vector>

#include "rlxf/core/error.hpp"

namespace rlxf::cuda::emulate {

class StackPool {
 public:
  explicit StackPool(std::size_t stack_bytes) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    usable_ = (stack_bytes + page - 1) / page * page;
    guard_ = page;
  }
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool() {
    for (void* base : free_) ::munmap(base, usable_ + guard_);
  }

  boost::context::stack_context allocate() {
    void* base = nullptr;
    if (!free_.empty()) {
      base = free_.back();
      free_.pop_back();
    } else {
      base = ::mmap(nullptr, usable_ + guard_, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED) fail("emulator: cannot map a ", usable_, "-byte fiber stack");
      ::mprotect(base, guard_, PROT_NONE);  // stacks grow down onto the guard page
    }
    boost::context::stack_context sc;
    sc.size = usable_;
    sc.sp = static_cast<char*>(base) + guard_ + usable_;
    return sc;
  }

  void deallocate(boost::context::stack_context& sc) noexcept {
    free_.push_back(static_cast<char*>(sc.sp) - usable_ - guard_);
  }

 private:
  std::size_t usable_ = 0, guard_ = 0;
  std::vector<void*> free_;
};

// The allocator Boost.Context copies into each fiber: a handle on the pool.
struct PooledStack {
  StackPool* pool;
  boost::context::stack_context allocate() { return pool->allocate(); }
  void deallocate(boost::context::stack_context& sc) noexcept { pool->deallocate(sc); }
};

// The calling thread's pool of stacks of `stack_bytes`, kept for the thread's lifetime so
// launches after the first map no memory.
inline StackPool& stack_pool(std::size_t stack_bytes) {
  thread_local std::map<std::size_t, std::unique_ptr<StackPool>> pools;
  auto& pool = pools[stack_bytes];
  if (!pool) pool = std::make_unique<StackPool>(stack_bytes);
  return *pool;
}

}  // namespace rlxf::cuda::emulate
