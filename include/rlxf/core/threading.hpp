#pragma once
// Threading: OpenMP when the build has it, serial otherwise. Work is split statically, so
// which thread computes an element never changes a result; only floating-point reductions
// that are split across threads (none in rlxf's kernels unless a comment says so) could.
#include <cstddef>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace rlxf {

// Threads a parallel region will use.
inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Sets the thread count for later parallel regions (ignored without OpenMP).
inline void set_threads([[maybe_unused]] int n) {
#if defined(_OPENMP)
  if (n > 0) omp_set_num_threads(n);
#endif
}

// Elements of light work (a few to a few tens of flops each) below which a parallel region
// costs more than it saves. A region costs microseconds on an idle machine, and can cost a
// scheduler time slice when the cores are shared, so small calls (gradient checks, short
// sequences) stay serial.
inline constexpr std::size_t parallel_grain = std::size_t{1} << 14;

// The min_parallel argument of parallel_for for tasks of task_size elements each: the fewest
// tasks that make up a grain (at least two).
constexpr std::size_t min_parallel_tasks(std::size_t task_size) {
  const std::size_t size = task_size > 0 ? task_size : 1;
  return parallel_grain / size > 2 ? parallel_grain / size : 2;
}

// Calls f(i) for i in [0, n), in parallel when n is at least `min_parallel`. `f` must not
// throw: an exception cannot leave an OpenMP region.
template <class F>
void parallel_for(std::size_t n, F&& f, [[maybe_unused]] std::size_t min_parallel = 2) {
#if defined(_OPENMP)
  if (n >= min_parallel && omp_get_max_threads() > 1 && !omp_in_parallel()) {
    const auto count = static_cast<long long>(n);
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < count; ++i) f(static_cast<std::size_t>(i));
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) f(i);
}

}  // namespace rlxf
