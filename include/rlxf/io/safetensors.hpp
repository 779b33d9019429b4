#pragma once
// Checkpoint files in Hugging Face's safetensors format: `Safetensors` reads, `SafetensorsWriter`
// writes.
//
// The format: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON (the header), then the data
// buffer. The header is an object mapping each tensor name to
//   {"dtype": "F32", "shape": [4, 8], "data_offsets": [begin, end]}
// with byte offsets relative to the start of the data buffer, plus an optional "__metadata__"
// object whose values are strings. Tensor data is little-endian and row-major; a scalar has
// shape []. Writers pad the header with trailing spaces to a multiple of 8 bytes, so the data
// buffer starts 8-byte aligned in the file.
//
// The reader trusts nothing in the file and enforces what Hugging Face's reader enforces: the
// header is at most 100 MB; every shape's element count and byte size are computed without
// overflow and equal end - begin; taken in offset order the tensors' ranges tile the data
// buffer exactly (no overlap, no gap, no trailing bytes). As there, whitespace may surround the
// JSON, "__metadata__": null means no metadata, and unknown fields in a tensor entry are ignored
// (nested at most 128 levels deep, serde_json's limit). It is stricter in three ways: a repeated
// tensor name, metadata key or dtype/shape/data_offsets field is an error (HF silently keeps
// one); only the dtypes of rlxf::DType are accepted (F64, F32, F16, BF16, I64, I32, U8, BOOL);
// and BOOL bytes other than 0 and 1 are an error when read.
//
// Every error is an rlxf::Error whose message starts with the file (or source) name and names the
// tensor and field concerned, e.g.
//   model.safetensors: tensor 'wte.weight': data_offsets [0, 100] do not match shape (4, 8) of
//   F32 (128 bytes)
//
// Files are read whole into memory (no mmap). Writing is atomic on POSIX systems: see
// SafetensorsWriter::write.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <ranges>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/text.hpp"
#include "rlxf/io/file.hpp"
#include "rlxf/io/json.hpp"

namespace rlxf::io {

// Largest header accepted and written, as in Hugging Face's reader.
inline constexpr std::size_t max_header_bytes = 100'000'000;

// Element types tensors are read into and written from. Floating: float, double, f16, bf16.
// Integer: bool and the standard signed and unsigned integer types (character types excluded).
template <class T>
concept FloatElement = std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, f16> ||
    std::same_as<T, bf16>;
template <class T>
concept IntElement = std::same_as<T, bool> ||
    (std::integral<T> && !std::same_as<T, char> && !std::same_as<T, wchar_t> &&
     !std::same_as<T, char8_t> && !std::same_as<T, char16_t> && !std::same_as<T, char32_t>);
template <class T>
concept TensorElement = FloatElement<T> || IntElement<T>;

// One tensor of a file as its header describes it (after validation).
struct TensorInfo {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::size_t> shape;  // empty for a scalar
  std::size_t begin = 0;           // byte range [begin, end) within the data buffer
  std::size_t end = 0;

  // Product of the shape (1 for a scalar); the reader has checked it does not overflow.
  std::size_t numel() const {
    std::size_t n = 1;
    for (const std::size_t d : shape) n *= d;
    return n;
  }
};

namespace detail {

inline constexpr std::string_view metadata_key = "__metadata__";
// Nesting allowed inside an ignored field of a tensor entry: serde_json's recursion limit, so any
// nesting Hugging Face's reader accepts is accepted here. It bounds the parser's memory.
inline constexpr std::size_t max_ignored_depth = 128;

using rlxf::is_valid_utf8;
using rlxf::printable;

inline std::string quote(std::string_view s) {
  // Appended piece by piece: "'" + printable(s) trips a false GCC 12 -Wrestrict warning.
  std::string out = "'";
  out += printable(s);
  out += '\'';
  return out;
}

template <class Int>
std::string format_list(std::span<const Int> values, char open, char close) {
  std::string out(1, open);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(values[i]);
  }
  return out + close;
}
inline std::string format_shape(std::span<const std::size_t> shape) {
  return format_list(shape, '(', ')');
}

// Product of `shape`, or nullopt when a partial product overflows size_t (as Hugging Face
// multiplies: [2^40, 2^40, 0] overflows, [0, 2^40, 2^40] does not).
inline std::optional<std::size_t> checked_numel(std::span<const std::size_t> shape) {
  std::size_t n = 1;
  for (const std::size_t d : shape) {
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

// Byte size of a tensor: numel(shape) * size_of(dtype), failing on overflow.
inline std::size_t checked_nbytes(std::span<const std::size_t> shape, DType dtype) {
  const std::optional<std::size_t> n = checked_numel(shape);
  if (!n) fail("shape ", format_shape(shape), " has more elements than size_t can count");
  if (*n > std::numeric_limits<std::size_t>::max() / size_of(dtype))
    fail("shape ", format_shape(shape), " of ", name_of(dtype),
         " has more bytes than size_t can count");
  return *n * size_of(dtype);
}

template <class U>
U load_le(const std::byte* p) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i)
    v = static_cast<U>(v | static_cast<U>(std::to_integer<U>(p[i]) << (8 * i)));
  return v;
}

template <class U>
void store_le(std::byte* p, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xffu);
}

template <class T>
std::string type_name() {
  if constexpr (std::same_as<T, float>)
    return "float";
  else if constexpr (std::same_as<T, double>)
    return "double";
  else if constexpr (std::same_as<T, f16>)
    return "rlxf::f16";
  else if constexpr (std::same_as<T, bf16>)
    return "rlxf::bf16";
  else if constexpr (std::same_as<T, bool>)
    return "bool";
  else
    return std::string(std::is_signed_v<T> ? "int" : "uint") + std::to_string(8 * sizeof(T));
}

// ---- the header: JSON events to entries ----

// A tensor entry as the JSON gives it, before validation.
struct HeaderEntry {
  std::string name;
  std::optional<std::string> dtype;
  std::optional<std::vector<std::uint64_t>> shape;
  std::optional<std::vector<std::uint64_t>> offsets;
};

struct Header {
  std::vector<HeaderEntry> entries;  // in header order
  std::map<std::string, std::string> metadata;
};

// An nlohmann SAX handler that turns the header's JSON events straight into a Header, checking
// the structure as it goes (no JSON tree is built, so memory stays proportional to what is
// kept). Errors throw rlxf::Error from inside the parser; the handler always returns true.
class HeaderParser {
 public:
  using json = nlohmann::json;

  static Header parse(std::string_view text) {
    // nlohmann's lexer takes a NUL byte for the end of input, so "{}\0garbage" would pass;
    // valid JSON text never contains one (inside strings it must be escaped).
    if (const auto nul = text.find('\0'); nul != std::string_view::npos)
      fail("header is not valid JSON: NUL byte at byte ", nul,
           " of the header (padding must be spaces)");
    Header header;
    HeaderParser handler(header);
    json::sax_parse(text.data(), text.data() + text.size(), &handler, json::input_format_t::json,
                    /*strict=*/true, /*ignore_comments=*/false);
    return header;
  }

  bool null() { return scalar("null"); }
  bool boolean(bool) { return scalar("a boolean"); }
  bool number_integer(json::number_integer_t v) {  // the parser gives negative numbers (and -0)
    if (state_ == State::array && v >= 0) return push(static_cast<std::uint64_t>(v));
    if (state_ == State::array)
      fail(where(), field_name(), " element ", array_->size(), " is negative (", v, ")");
    return scalar("a number");
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (state_ == State::array) return push(v);
    return scalar("a number");
  }
  bool number_float(json::number_float_t, const std::string& text) {
    if (state_ == State::array)
      fail(where(), field_name(), " element ", array_->size(), " is ", printable(text),
           ", not an integer in [0, 2^64)");
    return scalar("a number");
  }
  bool string(std::string& s) {
    if (state_ == State::metadata) {
      out_.metadata.emplace(std::move(meta_key_), std::move(s));
      return true;
    }
    if (state_ == State::entry && field_ == Field::dtype) {
      entry().dtype = std::move(s);
      return true;
    }
    return scalar("a string");
  }
  bool binary(json::binary_t&) { return scalar("binary data"); }  // JSON text has none

  bool start_object(std::size_t) { return open("an object", true); }
  bool start_array(std::size_t) { return open("an array", false); }
  bool end_object() {
    if (state_ == State::ignored) return close_ignored();
    state_ = State::top;  // end of the metadata or a tensor entry (or of the header itself)
    return true;
  }
  bool end_array() {
    if (state_ == State::ignored) return close_ignored();
    state_ = State::entry;  // end of shape or data_offsets
    return true;
  }

  bool key(std::string& k) {
    if (state_ == State::top) {
      if (!top_keys_.insert(k).second)
        fail(k == metadata_key ? std::string(metadata_key) : "tensor " + quote(k),
             " appears twice in the header");
      key_ = std::move(k);
    } else if (state_ == State::metadata) {
      if (out_.metadata.contains(k)) fail("__metadata__: key ", quote(k), " appears twice");
      meta_key_ = std::move(k);
    } else if (state_ == State::entry) {
      field_ = k == "dtype"          ? Field::dtype
               : k == "shape"        ? Field::shape
               : k == "data_offsets" ? Field::offsets
                                     : Field::ignored;
      const bool seen = (field_ == Field::dtype && entry().dtype) ||
                        (field_ == Field::shape && entry().shape) ||
                        (field_ == Field::offsets && entry().offsets);
      if (seen) fail(where(), "field '", field_name(), "' appears twice");
    }
    return true;  // keys inside an ignored field are ignored
  }

  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    fail("header is not valid JSON: ", printable(json_error_text(e)));
  }

 private:
  // Where the parser is: before the header object, in it (between entries), in the metadata
  // object, in a tensor entry, in its shape or data_offsets array, or in an ignored field.
  enum class State { before, top, metadata, entry, array, ignored };
  enum class Field { dtype, shape, offsets, ignored };

  explicit HeaderParser(Header& out) : out_(out) {}

  HeaderEntry& entry() { return out_.entries.back(); }
  std::string where() const {
    return state_ == State::metadata ? "__metadata__: "
                                     : "tensor " + quote(out_.entries.back().name) + ": ";
  }
  std::string_view field_name() const {
    return field_ == Field::dtype ? "dtype" : field_ == Field::shape ? "shape" : "data_offsets";
  }

  bool push(std::uint64_t v) {
    if (field_ == Field::offsets && array_->size() == 2)
      fail(where(), "data_offsets has more than 2 elements (it is [begin, end])");
    array_->push_back(v);
    return true;
  }

  // An object or array begins: the structural steps are taken here, anything else is an error
  // reported as for a misplaced scalar.
  bool open(std::string_view kind, bool object) {
    if (state_ == State::before && object) {
      state_ = State::top;
    } else if (state_ == State::top && object) {
      if (key_ == metadata_key) {
        state_ = State::metadata;
      } else {
        out_.entries.emplace_back().name = key_;
        state_ = State::entry;
      }
    } else if (state_ == State::entry && field_ == Field::ignored) {
      state_ = State::ignored;
      ignored_depth_ = 1;
    } else if (state_ == State::entry && !object && field_ != Field::dtype) {
      auto& target = field_ == Field::shape ? entry().shape : entry().offsets;
      array_ = &target.emplace();
      state_ = State::array;
    } else if (state_ == State::ignored) {
      if (++ignored_depth_ > max_ignored_depth)
        fail(where(), "an ignored field nests deeper than ", max_ignored_depth, " levels");
    } else {
      return scalar(kind);
    }
    return true;
  }

  bool close_ignored() {
    if (--ignored_depth_ == 0) state_ = State::entry;
    return true;
  }

  // A value of `kind` ("a string", "an array", ...) that is not a step of the structure: fine
  // where it is ignored, else an error saying what was expected.
  bool scalar(std::string_view kind) {
    switch (state_) {
      case State::before:
        fail("header is ", kind, ", not a JSON object");
      case State::top:
        if (key_ == metadata_key) {
          if (kind == "null") return true;  // as Hugging Face: no metadata
          fail("__metadata__ is ", kind, ", not an object of strings");
        }
        fail("tensor ", quote(key_), ": entry is ", kind, ", not an object");
      case State::metadata:
        fail("__metadata__: value of ", quote(meta_key_), " is ", kind, ", not a string");
      case State::entry:
        if (field_ == Field::ignored) return true;
        fail(where(), "field '", field_name(), "' is ", kind, ", not ",
             field_ == Field::dtype ? "a string" : "an array of integers");
      case State::array:
        fail(where(), field_name(), " element ", array_->size(), " is ", kind, ", not an integer");
      case State::ignored:
        break;
    }
    return true;
  }

  Header& out_;
  State state_ = State::before;
  Field field_ = Field::ignored;
  std::string key_;                 // the current top-level key
  std::string meta_key_;            // the current metadata key
  std::set<std::string> top_keys_;  // a tree, not a hash set: no hash flooding by crafted names
  std::vector<std::uint64_t>* array_ = nullptr;  // the shape or data_offsets being filled
  std::size_t ignored_depth_ = 0;
};

// Checks one entry against the data buffer's size and returns it as a TensorInfo.
inline TensorInfo validate_entry(HeaderEntry& e, std::size_t data_size) {
  TensorInfo t;
  t.name = std::move(e.name);
  if (!e.dtype) fail("missing field 'dtype'");
  if (!e.shape) fail("missing field 'shape'");
  if (!e.offsets) fail("missing field 'data_offsets'");
  const std::optional<DType> dtype = dtype_from_name(*e.dtype);
  if (!dtype)
    fail("unknown dtype ", quote(*e.dtype),
         " (rlxf reads F64, F32, F16, BF16, I64, I32, U8, BOOL)");
  t.dtype = *dtype;
  const std::vector<std::uint64_t>& off = *e.offsets;
  if (off.size() != 2)
    fail("data_offsets has ", off.size(), off.size() == 1 ? " element" : " elements",
         ", expected 2 ([begin, end])");
  for (const std::uint64_t d : *e.shape) {
    if (!std::in_range<std::size_t>(d)) fail("shape dimension ", d, " does not fit size_t");
    t.shape.push_back(static_cast<std::size_t>(d));
  }
  const std::size_t nbytes = checked_nbytes(t.shape, t.dtype);
  const std::string range = format_list(std::span<const std::uint64_t>(off), '[', ']');
  if (off[1] < off[0]) fail("data_offsets ", range, " end before they begin");
  if (off[1] > data_size)
    fail("data_offsets ", range, " exceed the data buffer (", data_size, " bytes)");
  t.begin = static_cast<std::size_t>(off[0]);
  t.end = static_cast<std::size_t>(off[1]);
  if (t.end - t.begin != nbytes)
    fail("data_offsets ", range, " do not match shape ", format_shape(t.shape), " of ",
         name_of(t.dtype), " (", nbytes, " bytes)");
  return t;
}

// Validates every entry, then checks that the ranges, in offset order, tile the data buffer.
// Returns the tensors in offset order.
inline std::vector<TensorInfo> validate(Header& header, std::size_t data_size) {
  std::vector<TensorInfo> tensors;
  tensors.reserve(header.entries.size());
  for (HeaderEntry& e : header.entries)
    with_context("tensor " + quote(e.name),
                 [&] { tensors.push_back(validate_entry(e, data_size)); });
  std::stable_sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
  });
  std::size_t covered = 0;  // the ranges so far cover [0, covered)
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = tensors[i];
    const auto range = [](const TensorInfo& x) {
      return "[" + std::to_string(x.begin) + ", " + std::to_string(x.end) + "]";
    };
    if (t.begin < covered)
      fail("tensor ", quote(t.name), ": data_offsets ", range(t), " overlap tensor ",
           quote(tensors[i - 1].name), " at ", range(tensors[i - 1]));
    if (t.begin > covered)
      fail("bytes [", covered, ", ", t.begin,
           ") of the data buffer belong to no tensor (gap before tensor ", quote(t.name), ")");
    covered = t.end;
  }
  if (covered != data_size)
    fail(data_size - covered, " trailing bytes after the last tensor (the data buffer is ",
         data_size, " bytes, the tensors cover ", covered, ")");
  return tensors;
}

// ---- element conversion ----

// double to float rounding to odd: truncate toward zero, then set the last bit if anything was
// cut off. Rounding that float to nearest-even into a format with at least 2 fewer significand
// bits (float has 24, f16 11, bf16 8) gives the same result as rounding the double directly;
// plain double -> float -> f16 rounds twice and can be one ulp off near ties.
inline float round_to_odd(double d) {
  const float f = static_cast<float>(d);
  if (static_cast<double>(f) == d || d != d) return f;  // exact, or NaN
  const float toward_zero =
      std::abs(static_cast<double>(f)) > std::abs(d) ? std::nextafter(f, 0.0f) : f;
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(toward_zero) | 1u);
}

// The value of a floating element as float or double (exact, except double -> float).
template <FloatElement T>
auto widen(T x) {
  if constexpr (std::same_as<T, f16> || std::same_as<T, bf16>)
    return x.to_float();
  else
    return x;
}
template <FloatElement T>
float for_half(T x) {  // the float to round to f16 / bf16
  if constexpr (std::same_as<T, double>)
    return round_to_odd(x);
  else
    return widen(x);
}
template <FloatElement T>
auto bits_of(T x) {
  if constexpr (std::same_as<T, float>)
    return std::bit_cast<std::uint32_t>(x);
  else if constexpr (std::same_as<T, double>)
    return std::bit_cast<std::uint64_t>(x);
  else
    return x.bits;
}

// An integer value converted to To, failing when it does not fit; `target` names To.
template <class To, class From>
To int_to(From v, std::size_t i, std::string_view target) {
  if constexpr (std::same_as<From, bool>) {
    return int_to<To>(int{v}, i, target);
  } else if constexpr (std::same_as<To, bool>) {
    if (v != 0 && v != 1) fail("element ", i, " (", +v, ") does not fit ", target, " (0 or 1)");
    return v == 1;
  } else {
    if (!std::in_range<To>(v)) fail("element ", i, " (", +v, ") does not fit ", target);
    return static_cast<To>(v);
  }
}

// out[i] = convert(U loaded from element i, i).
template <class U, class T, class F>
void decode_each(std::span<const std::byte> src, std::vector<T>& out, F convert) {
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = convert(load_le<U>(src.data() + i * sizeof(U)), i);
}

template <class T>
[[noreturn]] void cannot_read(DType dtype, std::string_view hint) {
  fail("cannot read ", name_of(dtype), " as ", type_name<T>(), " (", hint, ")");
}
template <class T>
[[noreturn]] void cannot_store(DType dtype, std::string_view hint) {
  fail("cannot store ", type_name<T>(), " data as ", name_of(dtype), " (", hint, ")");
}

// Fills `out` (sized to the element count) from the bytes of a tensor of `dtype`.
template <TensorElement T>
void decode(DType dtype, std::span<const std::byte> src, std::vector<T>& out) {
  if constexpr (std::same_as<T, float> || std::same_as<T, double>) {
    switch (dtype) {
      case DType::f32:
        return decode_each<std::uint32_t>(src, out, [](std::uint32_t b, std::size_t) {
          return static_cast<T>(std::bit_cast<float>(b));
        });
      case DType::f64:
        return decode_each<std::uint64_t>(src, out, [](std::uint64_t b, std::size_t) {
          return static_cast<T>(std::bit_cast<double>(b));
        });
      case DType::f16:
        return decode_each<std::uint16_t>(src, out, [](std::uint16_t b, std::size_t) {
          return static_cast<T>(f16::from_bits(b).to_float());
        });
      case DType::bf16:
        return decode_each<std::uint16_t>(src, out, [](std::uint16_t b, std::size_t) {
          return static_cast<T>(bf16::from_bits(b).to_float());
        });
      default:
        cannot_read<T>(dtype, "integer tensors read as integer types");
    }
  } else if constexpr (FloatElement<T>) {  // f16, bf16: the stored bits, no conversion
    if (dtype != dtype_v<T>) cannot_read<T>(dtype, "read as float or double to convert");
    decode_each<std::uint16_t>(src, out,
                               [](std::uint16_t b, std::size_t) { return T::from_bits(b); });
  } else {
    const std::string target = type_name<T>();
    switch (dtype) {
      case DType::i32:
        return decode_each<std::uint32_t>(src, out, [&](std::uint32_t b, std::size_t i) {
          return int_to<T>(std::bit_cast<std::int32_t>(b), i, target);
        });
      case DType::i64:
        return decode_each<std::uint64_t>(src, out, [&](std::uint64_t b, std::size_t i) {
          return int_to<T>(std::bit_cast<std::int64_t>(b), i, target);
        });
      case DType::u8:
        return decode_each<std::uint8_t>(
            src, out, [&](std::uint8_t b, std::size_t i) { return int_to<T>(b, i, target); });
      case DType::boolean:
        return decode_each<std::uint8_t>(src, out, [&](std::uint8_t b, std::size_t i) {
          if (b > 1) fail("element ", i, " is byte ", +b, "; BOOL elements must be 0 or 1");
          return int_to<T>(b, i, target);
        });
      default:
        cannot_read<T>(dtype, "floating-point tensors read as float or double");
    }
  }
}

// The bytes of element i are the little-endian bits(data[i], i).
template <class T, class F>
std::vector<std::byte> encode_each(std::span<const T> data, F bits) {
  using U = std::invoke_result_t<F, T, std::size_t>;
  std::vector<std::byte> out(data.size() * sizeof(U));
  for (std::size_t i = 0; i < data.size(); ++i)
    store_le<U>(out.data() + i * sizeof(U), bits(data[i], i));
  return out;
}

// The little-endian bytes of `data` stored as `to`. Floating data rounds to nearest-even into
// narrower types (double -> f16/bf16 in one rounding); integer data must fit `to` exactly.
template <TensorElement T>
std::vector<std::byte> encode(std::span<const T> data, DType to) {
  if constexpr (FloatElement<T>) {
    if (to == dtype_v<T>)  // the bits as they are (NaN payloads included)
      return encode_each(data, [](T x, std::size_t) { return bits_of(x); });
    switch (to) {
      case DType::f32:
        return encode_each(data, [](T x, std::size_t) {
          return std::bit_cast<std::uint32_t>(static_cast<float>(widen(x)));
        });
      case DType::f64:
        return encode_each(data, [](T x, std::size_t) {
          return std::bit_cast<std::uint64_t>(static_cast<double>(widen(x)));
        });
      case DType::f16:
        return encode_each(data,
                           [](T x, std::size_t) { return f16::from_float(for_half(x)).bits; });
      case DType::bf16:
        return encode_each(data,
                           [](T x, std::size_t) { return bf16::from_float(for_half(x)).bits; });
      default:
        cannot_store<T>(to, "integer dtypes take integer data");
    }
  } else {
    const std::string target(name_of(to));
    switch (to) {
      case DType::i32:
        return encode_each(data, [&](T x, std::size_t i) {
          return std::bit_cast<std::uint32_t>(int_to<std::int32_t>(x, i, target));
        });
      case DType::i64:
        return encode_each(data, [&](T x, std::size_t i) {
          return std::bit_cast<std::uint64_t>(int_to<std::int64_t>(x, i, target));
        });
      case DType::u8:
        return encode_each(data,
                           [&](T x, std::size_t i) { return int_to<std::uint8_t>(x, i, target); });
      case DType::boolean:
        return encode_each(data, [&](T x, std::size_t i) {
          return static_cast<std::uint8_t>(int_to<bool>(x, i, target));
        });
      default:
        cannot_store<T>(to, "floating dtypes take float, double, f16 or bf16 data");
    }
  }
}

}  // namespace detail


// A safetensors file held in memory, validated on construction.
//
//   auto ckpt = rlxf::io::Safetensors::load("model.safetensors");
//   for (const auto& t : ckpt.tensors()) ...;                 // name, dtype, shape, byte range
//   std::vector<float> w = ckpt.read<float>("wte.weight");    // F32/F64/F16/BF16 converted
class Safetensors {
 public:
  // Reads and validates the file at `path`; errors name the path.
  static Safetensors load(const std::filesystem::path& path) {
    std::vector<std::byte> bytes =
        with_context(path.string(), [&] { return detail::read_file(path); });
    return parse(std::move(bytes), path.string());
  }

  // Validates the bytes of a whole file; errors start with `source_name`.
  static Safetensors parse(std::vector<std::byte> bytes, std::string source_name) {
    Safetensors st;
    st.source_ = std::move(source_name);
    st.bytes_ = std::move(bytes);
    with_context(st.source_, [&] { st.index(); });
    return st;
  }

  const std::string& source() const noexcept { return source_; }
  // Every tensor, in the order of their data in the file.
  const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  // The tensor called `name`, or nullptr.
  const TensorInfo* find(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
  }

  // The elements of tensor `name`, row-major, converted to T. Floating tensors (F32, F64, F16,
  // BF16) read as float or double (rounding to nearest-even where T is narrower), or as f16/bf16
  // when stored exactly so. Integer tensors (I32, I64, U8, BOOL) read as any integer type or bool;
  // a value that does not fit T is an error. Reading floating data as integers or back is an error.
  template <TensorElement T>
  std::vector<T> read(std::string_view name) const {
    const TensorInfo& t = get(name);
    std::vector<T> out(t.numel());
    with_context(source_ + ": tensor " + detail::quote(t.name),
                 [&] { detail::decode(t.dtype, bytes_of(t), out); });
    return out;
  }

  // The stored little-endian bytes of tensor `name` (not aligned to its element type).
  std::span<const std::byte> raw(std::string_view name) const { return bytes_of(get(name)); }

 private:
  Safetensors() = default;

  const TensorInfo& get(std::string_view name) const {
    const TensorInfo* t = find(name);
    if (!t) fail(source_, ": no tensor named ", detail::quote(name));
    return *t;
  }
  std::span<const std::byte> bytes_of(const TensorInfo& t) const {
    return std::span(bytes_).subspan(data_start_ + t.begin, t.end - t.begin);
  }

  void index() {
    if (bytes_.size() < 8)
      fail("file is ", bytes_.size(), " bytes, too short for the 8-byte header length");
    const std::uint64_t n = detail::load_le<std::uint64_t>(bytes_.data());
    if (n > max_header_bytes)
      fail("header length ", n, " exceeds the limit of ", max_header_bytes, " bytes");
    if (n > bytes_.size() - 8)
      fail("header length ", n, " exceeds the ", bytes_.size() - 8,
           " bytes after the length prefix (truncated file?)");
    data_start_ = 8 + static_cast<std::size_t>(n);
    detail::Header header = detail::HeaderParser::parse(
        std::string_view(reinterpret_cast<const char*>(bytes_.data()) + 8, data_start_ - 8));
    tensors_ = detail::validate(header, bytes_.size() - data_start_);
    metadata_ = std::move(header.metadata);
    for (std::size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
  }

  std::string source_;
  std::vector<std::byte> bytes_;  // the whole file
  std::size_t data_start_ = 0;    // file offset of the data buffer: 8 + header length
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
  std::map<std::string, std::string> metadata_;
};

// Collects tensors and metadata, then writes a safetensors file laid out as Hugging Face's
// writer lays it out: tensors ordered by dtype (I64, F64, F32, I32, BF16, F16, U8, BOOL: larger
// elements first, so every tensor starts at a multiple of its element size in the 8-aligned data
// buffer), then by name; the header lists "__metadata__" (keys sorted) first, then the tensors in
// that order, each as {"dtype", "shape", "data_offsets"}, compact, padded with spaces to a
// multiple of 8 bytes. For the same tensors and metadata the bytes equal HF's output (whose
// metadata order follows a hash map when there are several keys).
//
//   rlxf::io::SafetensorsWriter w;
//   w.add("wte.weight", weights, {vocab, dim});                 // stored as F32
//   w.add("wte.weight.bf16", weights, {vocab, dim}, rlxf::DType::bf16);
//   w.set_metadata("format", "pt");
//   w.write("model.safetensors");
class SafetensorsWriter {
 public:
  // Adds tensor `name` with the row-major elements of `data` (a contiguous range: vector, span,
  // array), stored as `store_as`: floating data as F32/F64/F16/BF16, rounding to nearest-even;
  // integer data (and bool) as I32/I64/U8/BOOL, each value required to fit. The data is converted
  // and copied now. Errors: a repeated or reserved name, invalid UTF-8, a shape whose element
  // count differs from data's size, a dtype of the other kind, an integer that does not fit.
  template <std::ranges::contiguous_range R>
  requires std::ranges::sized_range<R> && TensorElement<std::ranges::range_value_t<R>>
  void add(std::string name, const R& data, std::vector<std::size_t> shape,
           DType store_as = dtype_v<std::ranges::range_value_t<R>>) {
    using T = std::ranges::range_value_t<R>;
    const std::span<const T> values(std::ranges::data(data), std::ranges::size(data));
    with_context("tensor " + detail::quote(name), [&] {
      check_new_name(name);
      const std::optional<std::size_t> n = detail::checked_numel(shape);
      if (!n)
        fail("shape ", detail::format_shape(shape), " has more elements than size_t can count");
      if (*n != values.size())
        fail("shape ", detail::format_shape(shape), " has ", *n, " elements but the data has ",
             values.size());
      tensors_.emplace(std::move(name),
                       Entry{store_as, std::move(shape), detail::encode(values, store_as)});
    });
  }

  // Adds tensor `name` from bytes already in the file's encoding (little-endian `dtype`
  // elements, row-major), e.g. Safetensors::raw of another file.
  void add_raw(std::string name, DType dtype, std::vector<std::size_t> shape,
               std::span<const std::byte> bytes) {
    with_context("tensor " + detail::quote(name), [&] {
      check_new_name(name);
      const std::size_t nbytes = detail::checked_nbytes(shape, dtype);
      if (nbytes != bytes.size())
        fail("shape ", detail::format_shape(shape), " of ", name_of(dtype), " needs ", nbytes,
             " bytes but ", bytes.size(), " were given");
      tensors_.emplace(std::move(name),
                       Entry{dtype, std::move(shape), {bytes.begin(), bytes.end()}});
    });
  }

  // Sets metadata `key` to `value` (replacing an earlier value). Both must be valid UTF-8.
  void set_metadata(std::string key, std::string value) {
    if (!detail::is_valid_utf8(key) || !detail::is_valid_utf8(value))
      fail("metadata ", detail::quote(key), ": key and value must be valid UTF-8");
    metadata_.insert_or_assign(std::move(key), std::move(value));
  }

  // The whole file in memory.
  std::vector<std::byte> to_bytes() const {
    const std::vector<const Tensor*> order = layout();
    const std::string head = header(order);
    std::size_t size = 8 + head.size();
    for (const Tensor* t : order) size += t->second.bytes.size();
    std::vector<std::byte> out(size);
    detail::store_le<std::uint64_t>(out.data(), head.size());
    std::memcpy(out.data() + 8, head.data(), head.size());
    std::size_t at = 8 + head.size();
    for (const Tensor* t : order) {
      const std::vector<std::byte>& bytes = t->second.bytes;
      std::copy(bytes.begin(), bytes.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
      at += bytes.size();
    }
    return out;
  }

  // Writes the file atomically: to "<path>.tmp-<pid>-<n>" in the same directory, fsync, then
  // rename onto `path`. A crash leaves either the old file or the new one, never a partial file;
  // on error the temporary file is removed and an existing file at `path` is untouched. Errors
  // name `path` and the system's reason.
  void write(const std::filesystem::path& path) const {
    with_context(path.string(), [&] {
      const std::vector<const Tensor*> order = layout();
      const std::string head = header(order);
      std::array<std::byte, 8> prefix{};
      detail::store_le<std::uint64_t>(prefix.data(), head.size());
      detail::AtomicFile file(path);
      file.append(prefix);
      file.append(std::as_bytes(std::span(head)));
      for (const Tensor* t : order) file.append(t->second.bytes);
      file.commit();
    });
  }

 private:
  struct Entry {
    DType dtype;
    std::vector<std::size_t> shape;
    std::vector<std::byte> bytes;
  };
  using Tensor = std::pair<const std::string, Entry>;

  // Hugging Face's Dtype enum order (of the dtypes rlxf has); its writer sorts by it, descending.
  static constexpr int hf_dtype_rank(DType t) {
    switch (t) {
      case DType::boolean:
        return 0;
      case DType::u8:
        return 1;
      case DType::f16:
        return 2;
      case DType::bf16:
        return 3;
      case DType::i32:
        return 4;
      case DType::f32:
        return 5;
      case DType::f64:
        return 6;
      case DType::i64:
        return 7;
    }
    return 0;
  }

  // The tensors in file order: dtype rank descending, then name.
  std::vector<const Tensor*> layout() const {
    std::vector<const Tensor*> order;
    for (const Tensor& t : tensors_) order.push_back(&t);  // by name already
    std::stable_sort(order.begin(), order.end(), [](const Tensor* a, const Tensor* b) {
      return hf_dtype_rank(a->second.dtype) > hf_dtype_rank(b->second.dtype);
    });
    return order;
  }

  void check_new_name(const std::string& name) const {
    if (name == detail::metadata_key) fail("the name __metadata__ is reserved for the metadata");
    if (!detail::is_valid_utf8(name)) fail("name is not valid UTF-8");
    if (tensors_.contains(name)) fail("added twice");
  }

  // The header JSON, padded with spaces to a multiple of 8 bytes.
  std::string header(const std::vector<const Tensor*>& order) const {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata_.empty()) h[std::string(detail::metadata_key)] = metadata_;
    std::size_t offset = 0;
    for (const Tensor* t : order) {
      const Entry& e = t->second;
      const std::size_t end = offset + e.bytes.size();
      h[t->first] = {{"dtype", std::string(name_of(e.dtype))},
                     {"shape", e.shape},
                     {"data_offsets", {offset, end}}};
      offset = end;
    }
    std::string text = h.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    if (text.size() > max_header_bytes)
      fail("the header would be ", text.size(), " bytes, above the limit of ", max_header_bytes,
           " bytes that readers enforce");
    return text;
  }

  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace rlxf::io
