#pragma once
// JSON input, the one way every rlxf reader takes JSON (configs, Hugging Face config.json,
// vocab.json, special_tokens_map.json, reward.json, trainer and algorithm state):
//   - parse_json / read_json refuse, before they build anything deep: nesting deeper than
//     JsonLimits::max_depth, a key twice in one object, a NUL byte, a file larger than
//     max_bytes. Nothing downstream (dump, comparison, conversion) then recurses on hostile
//     depth.
//   - json_as / json_get / json_require convert a value to the C++ type of its field without
//     coercion: an unsigned field takes only an integer in range (-1 is not SIZE_MAX, 2.7 is
//     not 2, 1e30 is not a count), a floating field any finite number, a bool only true/false.
// Errors name the source (the file) and the field.
//
//   const nlohmann::json j = rlxf::io::read_json("run/config.json");
//   const auto steps = rlxf::io::json_get<std::size_t>(j, "steps", 100);
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlxf/core/error.hpp"
#include "rlxf/core/text.hpp"
#include "rlxf/io/file.hpp"

namespace rlxf::io {

struct JsonLimits {
  std::size_t max_depth = 64;            // arrays and objects inside each other
  std::size_t max_bytes = std::size_t{1} << 28;  // 256 MiB: larger than any tokenizer or config file
};

namespace detail {

// Checks depth and duplicate keys as the DOM is built (nlohmann's parser is iterative; only
// what is done with a deep tree afterwards would recurse).
class JsonGuard {
 public:
  explicit JsonGuard(std::size_t max_depth) : max_depth_(max_depth) {}

  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (static_cast<std::size_t>(depth) >= max_depth_)
          fail("nested deeper than ", max_depth_, " levels of arrays and objects");
        if (event == E::object_start) {
          keys_.resize(static_cast<std::size_t>(depth) + 1);
          keys_.back().clear();
        }
        break;
      case E::key: {
        auto& seen = keys_[static_cast<std::size_t>(depth) - 1];
        const auto& k = parsed.get_ref<const std::string&>();
        if (!seen.insert(k).second) fail("key '", rlxf::printable(k), "' appears twice in one object");
        break;
      }
      case E::object_end:
        keys_.resize(static_cast<std::size_t>(depth));
        break;
      default:
        break;
    }
    return true;
  }

 private:
  std::size_t max_depth_;
  std::vector<std::unordered_set<std::string>> keys_;  // keys of each open object, by depth
};

// "an integer in [min, max]" of T.
template <class T>
std::string integer_range_text() {
  return rlxf::detail::concat("an integer in [", +std::numeric_limits<T>::min(), ", ", +std::numeric_limits<T>::max(), "]");
}

// nlohmann's message without its tag: "[json.exception.parse_error.101] parse error at line 1,
// column 5: ..." -> "parse error at line 1, column 5: ...".
inline std::string_view json_error_text(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  if (const auto tag_end = what.find("] "); tag_end != std::string_view::npos) what.remove_prefix(tag_end + 2);
  return what;
}

// A short description of a value for error messages: scalars as JSON, containers by kind.
inline std::string json_excerpt(const nlohmann::json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  if (v.is_number_float() && !std::isfinite(v.get<double>())) return v.get<double>() > 0 ? "inf" : "-inf";
  return rlxf::printable(v.dump());
}

}  // namespace detail

// Parses JSON text; errors start with `source` (a file name, "metadata 'x'", ...).
inline nlohmann::json parse_json(std::string_view text, std::string_view source, JsonLimits limits = {}) {
  return with_context(source, [&] {
    if (text.size() > limits.max_bytes) fail("JSON text of ", text.size(), " bytes, more than the limit of ", limits.max_bytes);
    if (const auto nul = text.find('\0'); nul != std::string_view::npos)
      fail("not valid JSON: NUL byte at byte ", nul);
    try {
      return nlohmann::json::parse(text, detail::JsonGuard(limits.max_depth));
    } catch (const nlohmann::json::exception& e) {
      fail("not valid JSON: ", rlxf::printable(detail::json_error_text(e)));
    }
  });
}

// Reads and parses a JSON file (a regular file of at most limits.max_bytes).
inline nlohmann::json read_json(const std::filesystem::path& path, JsonLimits limits = {}) {
  const std::vector<std::byte> bytes =
      with_context(path.string(), [&] { return rlxf::io::detail::read_file(path, limits.max_bytes); });
  return parse_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path.string(), limits);
}

// `v` as the C++ type of the field `field` (named in the error), checked and never coerced.
template <class T>
T json_as(const nlohmann::json& v, std::string_view field) {
  const auto wrong = [&](std::string_view expected) -> T {
    fail("field '", field, "' = ", detail::json_excerpt(v), ": expected ", expected);
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return wrong("true or false");
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    const std::string range = detail::integer_range_text<T>();
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return wrong(range);
      return static_cast<T>(u);
    }
    if (v.is_number_integer()) {  // negative (nlohmann keeps non-negative integers unsigned)
      const auto i = v.get<std::int64_t>();
      if (std::is_unsigned_v<T> || i < static_cast<std::int64_t>(std::numeric_limits<T>::min())) return wrong(range);
      return static_cast<T>(i);
    }
    return wrong(range);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number() || !std::isfinite(v.get<double>())) return wrong("a finite number");
    return static_cast<T>(v.get<double>());
  } else {
    static_assert(std::is_same_v<T, std::string>, "json_as: bool, integers, floating point or std::string");
    if (!v.is_string()) return wrong("a string");
    return v.get<std::string>();
  }
}

// obj[key] as T; `fallback` when the key is missing or null. `obj` must be an object.
template <class T>
T json_get(const nlohmann::json& obj, std::string_view key, const T& fallback) {
  if (!obj.is_object()) fail("expected a JSON object, got ", detail::json_excerpt(obj));
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  return json_as<T>(*it, key);
}

// obj[key] as T; a missing or null key is an error.
template <class T>
T json_require(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) fail("expected a JSON object, got ", detail::json_excerpt(obj));
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) fail("field '", key, "' is missing");
  return json_as<T>(*it, key);
}

// obj[key], which must be a JSON object (a nested section of a file).
inline const nlohmann::json& json_section(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) fail("expected a JSON object, got ", detail::json_excerpt(obj));
  const auto it = obj.find(key);
  if (it == obj.end()) fail("section '", key, "' is missing");
  if (!it->is_object()) fail("section '", key, "' = ", detail::json_excerpt(*it), ": expected an object");
  return *it;
}

}  // namespace rlxf::io
