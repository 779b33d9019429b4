#include <doctest/doctest.h>

#include <cstddef>

#include "rlxf/concepts.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/schedule.hpp"

namespace {
struct NoZeroGrad {  // an optimizer missing zero_grad()
  void step() {}
  double lr() const { return 0; }
  void set_lr(double) {}
  std::size_t steps() const { return 0; }
};
struct StringSchedule {  // returns the wrong type
  const char* operator()(std::size_t) const { return "0.1"; }
};
}  // namespace

TEST_CASE("concepts accept rlxf's types and reject incomplete ones") {
  static_assert(rlxf::Optimizer<rlxf::optim::AdamW<float>>);
  static_assert(!rlxf::Optimizer<NoZeroGrad>);
  static_assert(!rlxf::Optimizer<int>);
  static_assert(rlxf::Schedule<rlxf::optim::Cosine>);
  static_assert(rlxf::Schedule<double (*)(std::size_t)>);
  static_assert(!rlxf::Schedule<StringSchedule>);
  CHECK(rlxf::optim::LinearDecay(1.0, 0, 10)(5) == doctest::Approx(0.5));
}
