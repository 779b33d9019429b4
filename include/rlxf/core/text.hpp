#pragma once
// Text from input files made safe to quote in an error message.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "rlxf/core/error.hpp"

namespace rlxf {

// UTF-8 as Unicode defines it (table 3-7): no overlong forms, no surrogates, at most U+10FFFF.
inline bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned lo = 0x80, hi = 0xbf;  // range allowed for the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (std::size_t k = 2; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += len;
  }
  return true;
}

// `s` made safe for an error message: control bytes (and, unless s is valid UTF-8, bytes from
// 0x80) written as \xNN, cut after 200 bytes.
inline std::string printable(std::string_view s) {
  constexpr std::size_t max = 200;
  const bool utf8 = is_valid_utf8(s);
  std::size_t n = std::min(s.size(), max);
  if (utf8)  // do not cut inside a character
    while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
      detail::append_hex_escape(out, c);
    else
      out += s[i];
  }
  if (n < s.size()) out += "...";
  return out;
}

}  // namespace rlxf
