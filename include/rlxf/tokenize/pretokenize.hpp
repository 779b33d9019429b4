#pragma once
// The two byte-level pieces of GPT-2's tokenizer that come before BPE merges:
//
// 1. Pre-tokenization: text is split into pieces with GPT-2's pattern
//      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//    implemented by hand (one left-to-right pass, no regex engine). Merges never cross a
//    piece boundary. The classes \p{L}, \p{N} and \s come from unicode_tables.hpp (\s is
//    JavaScript's, as in the reference encoder gpt-3-encoder). Input is bytes, not
//    necessarily UTF-8: each byte that does not start a valid UTF-8 sequence (overlong forms,
//    surrogates, code points above U+10FFFF and truncated sequences included) is one code
//    point of class `other`. The pieces are views into the input and concatenate back to it,
//    so every byte string round-trips.
//
// 2. The byte-to-unicode map: vocabulary files store a token's bytes as a printable string,
//    byte b written as the code point byte_to_unicode[b]. Bytes 33-126, 161-172 and 174-255
//    map to themselves; the other 68 bytes map to U+0100, U+0101, ... in byte order (so the
//    space 0x20 is 'Ġ' U+0120 and the newline 0x0A is 'Ċ' U+010A).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rlxf/tokenize/unicode_tables.hpp"

namespace rlxf::tokenize {

// The class of code point `cp` (any value; those outside every table range are `other`).
constexpr CharClass char_class(char32_t cp) {
  const auto it = std::upper_bound(code_point_ranges.begin(), code_point_ranges.end(), cp,
                                   [](char32_t c, const CodePointRange& r) { return c < r.first; });
  if (it == code_point_ranges.begin()) return CharClass::other;
  const CodePointRange& r = *(it - 1);
  return cp <= r.last ? r.char_class : CharClass::other;
}

namespace detail {

// char_class of the 128 ASCII code points, the common case.
inline constexpr std::array<CharClass, 128> ascii_classes = [] {
  std::array<CharClass, 128> t{};
  for (char32_t c = 0; c < 128; ++c) t[c] = char_class(c);
  return t;
}();

// One code point of the input: its class and its length in bytes (1 for an invalid byte).
struct CodePointInfo {
  CharClass char_class;
  std::uint32_t bytes;
};

// The code point starting at s[i] (i < s.size()), decoded as strict UTF-8 (RFC 3629).
inline CodePointInfo code_point_at(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return {ascii_classes[b0], 1};
  const std::size_t left = s.size() - i;
  const auto cont = [&](std::size_t k) { return k < left && (byte(i + k) & 0xC0) == 0x80; };
  char32_t cp = 0;
  std::uint32_t n = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) {
    cp = (char32_t{b0} & 0x1F) << 6 | (byte(i + 1) & 0x3F);
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    cp = (char32_t{b0} & 0x0F) << 12 | char32_t{byte(i + 1) & 0x3Fu} << 6 | (byte(i + 2) & 0x3F);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return {CharClass::other, 1};
    n = 3;
  } else if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    cp = (char32_t{b0} & 0x07) << 18 | char32_t{byte(i + 1) & 0x3Fu} << 12 |
         char32_t{byte(i + 2) & 0x3Fu} << 6 | (byte(i + 3) & 0x3F);
    if (cp < 0x10000 || cp > 0x10FFFF) return {CharClass::other, 1};
    n = 4;
  } else {
    return {CharClass::other, 1};
  }
  return {char_class(cp), n};
}

// Length of the contraction ('s 't 're 've 'm 'll 'd, lower case only) at s[i], or 0.
inline std::size_t contraction_at(std::string_view s, std::size_t i) {
  if (s[i] != '\'' || i + 1 >= s.size()) return 0;
  const char c1 = s[i + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char c2 = s[i + 2];
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// End of the run of code points of class `c` that starts at s[i].
inline std::size_t run_end(std::string_view s, std::size_t i, CharClass c) {
  while (i < s.size()) {
    const CodePointInfo cp = code_point_at(s, i);
    if (cp.char_class != c) break;
    i += cp.bytes;
  }
  return i;
}

}  // namespace detail

// Length in bytes of the GPT-2 piece that starts at s[i] (i < s.size()); always >= 1.
inline std::size_t gpt2_piece_length(std::string_view s, std::size_t i) {
  using detail::code_point_at;
  if (const std::size_t n = detail::contraction_at(s, i)) return n;  // 's|'t|'re|'ve|'m|'ll|'d
  const detail::CodePointInfo first = code_point_at(s, i);
  if (s[i] == ' ' && i + 1 < s.size()) {  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' with the space
    const detail::CodePointInfo next = code_point_at(s, i + 1);
    if (next.char_class != CharClass::space)
      return detail::run_end(s, i + 1 + next.bytes, next.char_class) - i;
  }
  if (first.char_class != CharClass::space)  // the same three without the space
    return detail::run_end(s, i + first.bytes, first.char_class) - i;
  // '\s+(?!\S)|\s+': the whole run of white space if it ends the text; else all of it but its
  // last code point (which then starts the next piece, e.g. the space of " world"), unless the
  // run is a single code point.
  std::size_t last = i, end = i + first.bytes;
  while (end < s.size()) {
    const detail::CodePointInfo cp = code_point_at(s, end);
    if (cp.char_class != CharClass::space) return (last > i ? last : end) - i;
    last = end;
    end += cp.bytes;
  }
  return end - i;
}

// Calls piece(std::string_view) for each GPT-2 pre-token of `text`, in order. The pieces are
// non-empty views into `text` and concatenate to it.
template <class F>
void for_each_gpt2_piece(std::string_view text, F&& piece) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = gpt2_piece_length(text, i);
    piece(text.substr(i, n));
    i += n;
  }
}

// GPT-2's byte-to-unicode map (see the top of this file): byte b is written as this code point.
inline constexpr std::array<char32_t, 256> byte_to_unicode = [] {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    map[b] = printable ? char32_t{b} : next++;
  }
  return map;
}();

// The byte that code point `cp` stands for in a vocabulary string, if any.
constexpr std::optional<unsigned char> unicode_to_byte(char32_t cp) {
  if (cp < 256 && byte_to_unicode[cp] == cp) return static_cast<unsigned char>(cp);
  if (cp >= 256 && cp < 256 + 68) {
    for (unsigned b = 0; b < 256; ++b)
      if (byte_to_unicode[b] == cp) return static_cast<unsigned char>(b);
  }
  return std::nullopt;
}

// `bytes` written with byte_to_unicode, as UTF-8 (the form of vocab.json and merges.txt).
inline std::string bytes_to_vocab_string(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const char32_t cp = byte_to_unicode[static_cast<unsigned char>(c)];
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {  // every mapped code point is below U+0800: two bytes
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

// The bytes a vocabulary string stands for, or nullopt when it is not valid UTF-8 or holds a
// code point outside the byte-to-unicode map (e.g. a special token such as "<|im_start|>" can
// be either; "<|endoftext|>" happens to be a valid byte string).
inline std::optional<std::string> vocab_string_to_bytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    char32_t cp = 0;
    if (b0 < 0x80) {
      cp = b0;
      i += 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF && i + 1 < s.size() &&
               (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      cp = (char32_t{b0} & 0x1F) << 6 | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      i += 2;
    } else {
      return std::nullopt;  // not UTF-8, or a code point >= U+0800: never a mapped byte
    }
    const std::optional<unsigned char> byte = unicode_to_byte(cp);
    if (!byte) return std::nullopt;
    out += static_cast<char>(*byte);
  }
  return out;
}

}  // namespace rlxf::tokenize
