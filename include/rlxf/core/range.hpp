#pragma once
// Allowed ranges of configuration fields, and the one check every config struct uses: a value
// outside its range is an rlxf::Error naming the field, the value and the range, e.g.
//   "PpoConfig.lr = -0.001: expected a finite number in (0, 1]"
//
//   require_in("GenerationConfig.temperature", cfg.temperature, Range::above(0, 100));
// Ranges are over doubles: every integer a config holds (counts, sizes) up to 2^53 is exact.
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "rlxf/core/error.hpp"

namespace rlxf {

struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;  // (lo, ... rather than [lo, ...
  bool hi_open = false;

  static constexpr Range closed(double lo, double hi) { return {lo, hi, false, false}; }
  // (lo, hi]: e.g. a learning rate or a temperature.
  static constexpr Range above(double lo, double hi) { return {lo, hi, true, false}; }
  static constexpr Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }

  bool contains(double v) const {
    if (!std::isfinite(v)) return false;  // a config value is finite, whatever its range
    if (lo_open ? !(v > lo) : !(v >= lo)) return false;
    return hi_open ? v < hi : v <= hi;
  }

  // "[1, 4096]", "(0, 1]", ">= 0".
  std::string describe() const {
    const auto num = [](double x) {
      if (x == std::floor(x) && std::abs(x) < 1e15) return std::to_string(static_cast<long long>(x));
      return detail::concat(x);
    };
    if (std::isinf(hi) && std::isinf(lo)) return "any finite number";
    if (std::isinf(hi)) return (lo_open ? "> " : ">= ") + num(lo);
    return std::string(lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + (hi_open ? ")" : "]");
  }
};

// Throws unless `value` lies in `range`: "<field> = <value>: expected <range>". Integers are
// printed as integers (a negative count read as a huge unsigned one shows as such).
template <class T>
void require_in(std::string_view field, T value, const Range& range) {
  if (range.contains(static_cast<double>(value))) return;
  const std::string r = range.describe();
  fail(field, " = ", value, ": expected ", std::is_integral_v<T> ? "an integer" : "a finite number",
       r[0] == '[' || r[0] == '(' ? " in " : " ", r);
}

}  // namespace rlxf
