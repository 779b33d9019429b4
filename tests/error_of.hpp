#pragma once
// Test support: the message of the rlxf::Error an expression throws.
#include <string>

#include "rlxf/core/error.hpp"

namespace rlxf::test {

// The what() of the rlxf::Error that f() throws, or "" when it returns. Any other exception
// escapes and fails the test.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const rlxf::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace rlxf::test
