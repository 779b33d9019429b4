#pragma once
// Storage types bf16 and f16 and the DType tag. Conversions from float round to nearest,
// ties to even, exactly as IEEE 754 specifies (overflow to infinity, gradual underflow
// for f16, NaN stays NaN and is quietened). Conversions to float are exact.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

namespace rlxf {

// bfloat16: 1 sign, 8 exponent, 7 mantissa bits: the top half of an IEEE binary32.
struct bf16 {
  std::uint16_t bits = 0;

  static constexpr bf16 from_bits(std::uint16_t b) { return bf16{b}; }
  static constexpr bf16 from_float(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)  // NaN: keep sign and payload top, force quiet bit
      return bf16{static_cast<std::uint16_t>((x >> 16) | 0x0040u)};
    // Add just under half an ulp, plus one if the kept part is odd: ties go to even.
    const std::uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
    return bf16{static_cast<std::uint16_t>(rounded >> 16)};
  }
  constexpr float to_float() const { return std::bit_cast<float>(std::uint32_t{bits} << 16); }
  explicit constexpr operator float() const { return to_float(); }
};

// IEEE binary16: 1 sign, 5 exponent, 10 mantissa bits, max 65504, subnormals down to 2^-24.
struct f16 {
  std::uint16_t bits = 0;

  static constexpr f16 from_bits(std::uint16_t b) { return f16{b}; }
  static constexpr f16 from_float(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)  // NaN: quiet, keep the top payload bits
      return f16{static_cast<std::uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu))};
    if (ax >= 0x477ff000u)  // >= 65520 (halfway between 65504 and 2^16) rounds to infinity
      return f16{static_cast<std::uint16_t>(sign | 0x7c00u)};
    if (ax >= 0x38800000u) {  // normal in f16 (>= 2^-14): rebias and round 13 bits away
      const std::uint32_t r = ax - (112u << 23);
      std::uint32_t h = r >> 13;
      const std::uint32_t rem = r & 0x1fffu;
      if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carry may bump the exponent
      return f16{static_cast<std::uint16_t>(sign | h)};
    }
    // Subnormal in f16: the result is round(|f| / 2^-24).
    const std::uint32_t e = ax >> 23;
    if (e == 0) return f16{sign};  // float subnormals are far below 2^-25
    const std::uint32_t m = (ax & 0x7fffffu) | 0x800000u;  // |f| = m * 2^(e - 150)
    const std::uint32_t shift = 126u - e;                  // |f| / 2^-24 = m / 2^shift
    if (shift >= 32u) return f16{sign};
    std::uint32_t h = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) ++h;  // h == 0x400 is the smallest normal
    return f16{static_cast<std::uint16_t>(sign | h)};
  }
  constexpr float to_float() const {
    const std::uint32_t sign = std::uint32_t{bits & 0x8000u} << 16;
    const std::uint32_t exp = (bits >> 10) & 0x1fu;
    const std::uint32_t man = bits & 0x3ffu;
    if (exp == 0x1fu)  // inf / NaN
      return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0) return std::bit_cast<float>(sign);
    // Subnormal: man * 2^-24, exact in float (normalise the mantissa).
    const int lead = std::bit_width(man) - 1;  // 0..9
    const std::uint32_t fexp = static_cast<std::uint32_t>(lead - 24 + 127);
    const std::uint32_t fman = (man << (23 - lead)) & 0x7fffffu;
    return std::bit_cast<float>(sign | (fexp << 23) | fman);
  }
  explicit constexpr operator float() const { return to_float(); }
};

// Element types of stored tensors: the floating types above and the integer types
// checkpoints carry (token ids, counts, masks). boolean is one byte holding 0 or 1.
enum class DType : std::uint8_t { f32, f64, f16, bf16, i32, i64, u8, boolean };

constexpr std::size_t size_of(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
    case DType::boolean: return 1;
  }
  return 0;
}

constexpr bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16;
}

// Names as safetensors spells them.
constexpr std::string_view name_of(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
  }
  return "?";
}

// Every DType, for lookups by name.
inline constexpr DType all_dtypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16,
                                       DType::i32, DType::i64, DType::u8,  DType::boolean};

// The DType whose safetensors name is `name`, or nullopt.
constexpr std::optional<DType> dtype_from_name(std::string_view name) {
  for (const DType t : all_dtypes)
    if (name_of(t) == name) return t;
  return std::nullopt;
}

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

// A stored value as a double: an arithmetic type converted, bf16 and f16 widened exactly.
template <class T>
constexpr double as_double(T v) {
  if constexpr (std::is_arithmetic_v<T>)
    return static_cast<double>(v);
  else
    return static_cast<double>(v.to_float());
}

}  // namespace rlxf
