#include <doctest/doctest.h>

#include "error_of.hpp"
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/io/safetensors.hpp"

namespace fs = std::filesystem;
using rlxf::bf16;
using rlxf::DType;
using rlxf::f16;
using rlxf::io::Safetensors;
using rlxf::io::SafetensorsWriter;

namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out;
  for (const char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

void append_u64_le(std::vector<std::byte>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}

// A file made of `header` (as given: no padding added) and `data_bytes` zero bytes of data.
std::vector<std::byte> file_with(std::string_view header, std::size_t data_bytes = 0) {
  std::vector<std::byte> out;
  append_u64_le(out, header.size());
  const std::vector<std::byte> h = bytes_of(header);
  out.insert(out.end(), h.begin(), h.end());
  out.resize(out.size() + data_bytes, std::byte{0});
  return out;
}

using rlxf::test::error_of;

std::string parse_error(std::vector<std::byte> bytes) {
  return error_of([&] { (void)Safetensors::parse(std::move(bytes), "bad.safetensors"); });
}

// Parsing a file with `header` and `data_bytes` of data fails with a message that names the
// file and contains every one of `parts`.
void check_rejects(std::string_view header, std::size_t data_bytes,
                   std::initializer_list<std::string_view> parts) {
  const std::string msg = parse_error(file_with(header, data_bytes));
  INFO("header: ", std::string(header));
  INFO("message: ", msg);
  REQUIRE(msg.starts_with("bad.safetensors: "));
  for (const std::string_view p : parts) CHECK(msg.find(p) != std::string::npos);
}

std::vector<std::byte> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  const std::vector<char> chars((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i) out[i] = static_cast<std::byte>(chars[i]);
  return out;
}

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("rlxf_test_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
};

bool has_temp_file(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

// splitmix64: deterministic test values without depending on the library's RNG.
std::uint64_t mix(std::uint64_t i) {
  std::uint64_t z = i * 0x9e3779b97f4a7c15ull + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Floats of every magnitude, plus the edges: zeros, subnormals, infinities, NaNs with payloads,
// f16/bf16 rounding ties and overflow thresholds.
std::vector<float> awkward_floats() {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          1.0f,
                          -2.5f,
                          1e-45f,
                          -3.25e-39f,
                          65504.0f,
                          65520.0f,
                          0x1p-25f,
                          0x1.8p-24f,
                          1.00390625f,
                          1.01171875f,
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::bit_cast<float>(0x7fa00001u),   // signalling NaN
                          std::bit_cast<float>(0xffc12345u)};  // negative quiet NaN, payload
  for (std::uint64_t i = 0; i < 500; ++i)
    v.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(mix(i))));
  return v;
}

fs::path fixture(std::string_view name) {
  return fs::path(__FILE__).parent_path() / "fixtures" / "io" / name;
}

}  // namespace

TEST_CASE("every dtype round-trips through a file: F32/F64 bit for bit, F16/BF16 as from_float") {
  const std::vector<float> floats = awkward_floats();
  std::vector<double> doubles;
  for (std::uint64_t i = 0; i < 300; ++i) doubles.push_back(std::bit_cast<double>(mix(i + 1000)));
  doubles.insert(doubles.end(), {0.0, -0.0, 1e-320, std::numeric_limits<double>::infinity(),
                                 std::bit_cast<double>(0x7ff0000000000001ull)});
  const std::array<std::int32_t, 5> i32 = {std::numeric_limits<std::int32_t>::min(), -1, 0, 1,
                                           std::numeric_limits<std::int32_t>::max()};
  const std::array<std::int64_t, 4> i64 = {std::numeric_limits<std::int64_t>::min(), -7, 1ll << 40,
                                           std::numeric_limits<std::int64_t>::max()};
  std::vector<std::uint8_t> u8(256);
  for (std::size_t i = 0; i < 256; ++i) u8[i] = static_cast<std::uint8_t>(i);
  const std::array<bool, 5> mask = {true, false, false, true, true};
  const std::array<std::int64_t, 3> small = {-5, 0, 7};  // int64 data stored as I32

  SafetensorsWriter w;
  w.add("f32", floats, {floats.size()});
  w.add("f64", doubles, {doubles.size()});
  w.add("f16", floats, {floats.size()}, DType::f16);
  w.add("bf16", floats, {floats.size()}, DType::bf16);
  w.add("i32", i32, {5});
  w.add("i64.matrix", i64, {2, 2});
  w.add("u8", u8, {16, 16});
  w.add("mask", mask, {5});
  w.add("small", small, {1, 3}, DType::i32);
  w.add("scalar", std::array{2.75f}, {});
  w.add("empty", std::vector<double>{}, {3, 0});
  w.set_metadata("format", "pt");
  w.set_metadata("note", "ünïcödé ✓");

  ScratchDir dir;
  const fs::path path = dir.path / "all.safetensors";
  w.write(path);
  CHECK(read_all(path) == w.to_bytes());
  const Safetensors st = Safetensors::load(path);
  CHECK(st.source() == path.string());

  SUBCASE("floating values") {
    const auto f32 = st.read<float>("f32");
    REQUIRE(f32.size() == floats.size());
    for (std::size_t i = 0; i < floats.size(); ++i)
      CHECK(std::bit_cast<std::uint32_t>(f32[i]) == std::bit_cast<std::uint32_t>(floats[i]));
    const auto f64 = st.read<double>("f64");
    REQUIRE(f64.size() == doubles.size());
    for (std::size_t i = 0; i < doubles.size(); ++i)
      CHECK(std::bit_cast<std::uint64_t>(f64[i]) == std::bit_cast<std::uint64_t>(doubles[i]));
    const auto h = st.read<f16>("f16");
    const auto hf = st.read<float>("f16");
    const auto b = st.read<bf16>("bf16");
    const auto bd = st.read<double>("bf16");
    for (std::size_t i = 0; i < floats.size(); ++i) {
      CHECK(h[i].bits == f16::from_float(floats[i]).bits);
      CHECK(std::bit_cast<std::uint32_t>(hf[i]) == std::bit_cast<std::uint32_t>(h[i].to_float()));
      CHECK(b[i].bits == bf16::from_float(floats[i]).bits);
      CHECK(std::bit_cast<std::uint64_t>(bd[i]) ==
            std::bit_cast<std::uint64_t>(static_cast<double>(b[i].to_float())));
    }
    CHECK(st.read<float>("scalar") == std::vector<float>{2.75f});
    CHECK(st.read<double>("empty").empty());
  }
  SUBCASE("integer values") {
    CHECK(st.read<std::int32_t>("i32") == std::vector<std::int32_t>(i32.begin(), i32.end()));
    CHECK(st.read<std::int64_t>("i64.matrix") == std::vector<std::int64_t>(i64.begin(), i64.end()));
    CHECK(st.read<std::uint8_t>("u8") == u8);
    CHECK(st.read<bool>("mask") == std::vector<bool>(mask.begin(), mask.end()));
    CHECK(st.read<std::int64_t>("small") == std::vector<std::int64_t>(small.begin(), small.end()));
  }
  SUBCASE("tensor descriptions and metadata") {
    const rlxf::io::TensorInfo* t = st.find("i64.matrix");
    REQUIRE(t != nullptr);
    CHECK(t->dtype == DType::i64);
    CHECK(t->shape == std::vector<std::size_t>{2, 2});
    CHECK(t->numel() == 4);
    CHECK(t->end - t->begin == 32);
    CHECK(st.raw("i64.matrix").size() == 32);
    CHECK(st.find("u8")->shape == std::vector<std::size_t>{16, 16});
    CHECK(st.find("scalar")->shape.empty());
    CHECK(st.find("scalar")->numel() == 1);
    CHECK(st.find("empty")->numel() == 0);
    CHECK(st.find("small")->dtype == DType::i32);
    CHECK(st.find("mask")->dtype == DType::boolean);
    CHECK(st.find("nope") == nullptr);
    std::vector<std::string> names;
    for (const auto& ti : st.tensors()) names.push_back(ti.name);
    // File order: Hugging Face's, by dtype (I64, F64, F32, I32, BF16, F16, U8, BOOL), then name.
    CHECK(names == std::vector<std::string>{"i64.matrix", "empty", "f64", "f32", "scalar", "i32",
                                            "small", "bf16", "f16", "u8", "mask"});
    for (const auto& ti : st.tensors()) CHECK(ti.begin % rlxf::size_of(ti.dtype) == 0);  // aligned
    CHECK(st.metadata() ==
          std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcödé ✓"}});
  }
}

TEST_CASE("a file with no tensors round-trips, with and without metadata") {
  SafetensorsWriter w;
  const std::vector<std::byte> empty = w.to_bytes();
  CHECK(empty == file_with("{}      "));  // "{}" padded to 8 bytes, as Hugging Face writes it
  CHECK(Safetensors::parse(empty, "e").tensors().empty());
  w.set_metadata("k", "v");
  w.set_metadata("k", "w");  // replaces
  const Safetensors st = Safetensors::parse(w.to_bytes(), "m");
  CHECK(st.tensors().empty());
  CHECK(st.metadata() == std::map<std::string, std::string>{{"k", "w"}});
}

TEST_CASE("the writer's bytes match a file built by hand from the format's definition") {
  // Header JSON: metadata first, then the tensors in data order (Hugging Face's writer orders
  // by dtype, I64 before F32 before BF16), fields dtype/shape/data_offsets, no spaces.
  const std::string json = R"({"__metadata__":{"format":"pt"},)"
                           R"("c":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                           R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                           R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})";
  REQUIRE(json.size() == 194);  // padded with 6 spaces to 200, a multiple of 8
  std::vector<std::byte> expected = {std::byte{200}, std::byte{0}, std::byte{0}, std::byte{0},
                                     std::byte{0},   std::byte{0}, std::byte{0}, std::byte{0}};
  const std::vector<std::byte> header = bytes_of(json + "      ");
  expected.insert(expected.end(), header.begin(), header.end());
  const unsigned data[] = {
      0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // c: int64 -2 (little-endian)
      0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,  // a: 1.0f, -2.0f (IEEE binary32)
      0x80, 0x3f, 0x00, 0x3f, 0x40, 0xc0,  // b: bf16 1.0 = 0x3f80, 0.5 = 0x3f00, -3 = 0xc040
  };
  for (const unsigned d : data) expected.push_back(static_cast<std::byte>(d));
  REQUIRE(expected.size() == 8 + 200 + 22);

  SafetensorsWriter w;
  w.add("b", std::array{1.0, 0.5, -3.0}, {3}, DType::bf16);  // the order of adding does not matter
  w.add("a", std::array{1.0f, -2.0f}, {2});
  w.add("c", std::array<std::int64_t, 1>{-2}, {});
  w.set_metadata("format", "pt");
  CHECK(w.to_bytes() == expected);

  ScratchDir dir;
  w.write(dir.path / "hand.safetensors");
  CHECK(read_all(dir.path / "hand.safetensors") == expected);

  const Safetensors st = Safetensors::parse(expected, "hand");
  CHECK(st.read<float>("a") == std::vector<float>{1.0f, -2.0f});
  CHECK(st.read<float>("b") == std::vector<float>{1.0f, 0.5f, -3.0f});
  CHECK(st.read<std::int64_t>("c") == std::vector<std::int64_t>{-2});
}

TEST_CASE("reads the file Hugging Face's safetensors wrote (tools/make_io_fixture.py)") {
  const Safetensors st = Safetensors::load(fixture("hf_reference.safetensors"));
  CHECK(st.metadata() == std::map<std::string, std::string>{{"note", "rlxf fixture ε"}});
  CHECK(st.tensors().size() == 10);
  CHECK(st.tensors().front().name == "i64");  // HF's layout: by dtype, then name

  const auto f64 = st.read<double>("f64");
  CHECK(f64 == std::vector<double>{3.141592653589793, -2.718281828459045, 1e-300, 1e300});
  CHECK(st.read<float>("f32.matrix") == std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f});
  CHECK(st.find("f32.matrix")->shape == std::vector<std::size_t>{2, 3});
  std::vector<std::uint16_t> f16_bits;
  for (const f16 h : st.read<f16>("f16")) f16_bits.push_back(h.bits);
  // 0.5, -2.5, 65504, 2^-24, and 1/3 rounded by numpy from double
  CHECK(f16_bits == std::vector<std::uint16_t>{0x3800, 0xc100, 0x7bff, 0x0001, 0x3555});
  CHECK(st.read<float>("f16")[4] == f16::from_float(1.0f / 3.0f).to_float());
  CHECK(st.read<float>("bf16") == std::vector<float>{1.0f, -2.5f, 3.140625f, -0.0078125f});
  CHECK(st.read<std::int64_t>("i64") ==
        std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 1ll << 40, 0,
                                  std::numeric_limits<std::int64_t>::max()});
  CHECK(st.find("i64")->shape == std::vector<std::size_t>{2, 2});
  CHECK(st.read<std::int32_t>("i32") ==
        std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::min(), -1, 0,
                                  std::numeric_limits<std::int32_t>::max()});
  CHECK(st.read<int>("u8") == std::vector<int>{0, 51, 102, 153, 204, 255});
  CHECK(st.read<bool>("mask") == std::vector<bool>{true, false, true});
  CHECK(st.read<float>("scalar") == std::vector<float>{3.5f});
  CHECK(st.find("scalar")->shape.empty());
  CHECK(st.find("empty")->shape == std::vector<std::size_t>{0, 4});
  CHECK(st.read<float>("empty").empty());
}

TEST_CASE("the writer reproduces Hugging Face's file byte for byte") {
  const auto bits16 = [](std::initializer_list<std::uint16_t> bits, auto tag) {
    std::vector<decltype(tag)> out;
    for (const std::uint16_t b : bits) out.push_back(decltype(tag)::from_bits(b));
    return out;
  };
  SafetensorsWriter w;
  w.add("f64", std::array{3.141592653589793, -2.718281828459045, 1e-300, 1e300}, {4});
  w.add("f32.matrix", std::array{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}, {2, 3});
  w.add("f16", bits16({0x3800, 0xc100, 0x7bff, 0x0001, 0x3555}, f16{}), {5});
  w.add("bf16", bits16({0x3f80, 0xc020, 0x4049, 0xbc00}, bf16{}), {4});
  w.add("i64",
        std::array<std::int64_t, 4>{std::numeric_limits<std::int64_t>::min(), 1ll << 40, 0,
                                    std::numeric_limits<std::int64_t>::max()},
        {2, 2});
  w.add("i32",
        std::array<std::int32_t, 4>{std::numeric_limits<std::int32_t>::min(), -1, 0,
                                    std::numeric_limits<std::int32_t>::max()},
        {4});
  w.add("u8", std::array<std::uint8_t, 6>{0, 51, 102, 153, 204, 255}, {6});
  w.add("mask", std::array{true, false, true}, {3});
  w.add("scalar", std::array{3.5f}, {});
  w.add("empty", std::vector<float>{}, {0, 4});
  w.set_metadata("note", "rlxf fixture ε");
  CHECK(w.to_bytes() == read_all(fixture("hf_reference.safetensors")));
}

TEST_CASE("double data stored as F16/BF16 is rounded once, not through float") {
  // 1 + 2^-8 is the tie between bf16 1.0 and 1 + 2^-7; a hair above it must round up, though
  // rounding to float first lands exactly on the tie, which goes to even (1.0).
  const double above_bf16_tie = 1.00390625 + 0x1p-40;
  const double above_f16_tie = 1.0 + 0x1p-11 + 0x1p-40;
  const std::array doubles = {above_bf16_tie, -above_bf16_tie, 1.00390625, above_f16_tie,
                              1.0 + 0x1p-11,  1e300,           1e-300,     -1e-50};
  SafetensorsWriter w;
  w.add("b", doubles, {doubles.size()}, DType::bf16);
  w.add("h", doubles, {doubles.size()}, DType::f16);
  w.add("f", doubles, {doubles.size()}, DType::f32);
  const Safetensors st = Safetensors::parse(w.to_bytes(), "rounding");
  const auto b = st.read<bf16>("b");
  const auto h = st.read<f16>("h");
  CHECK(b[0].bits == 0x3f81);
  CHECK(b[1].bits == 0xbf81);
  CHECK(b[2].bits == 0x3f80);  // exact tie: to even
  CHECK(h[3].bits == 0x3c01);
  CHECK(h[4].bits == 0x3c00);  // exact tie: to even
  CHECK(b[5].bits == 0x7f80);  // beyond float: infinity
  CHECK(h[5].bits == 0x7c00);
  CHECK(b[6].bits == 0x0000);  // far below the smallest subnormal: zero, sign kept
  CHECK(b[7].bits == 0x8000);
  CHECK(h[7].bits == 0x8000);
  CHECK(bf16::from_float(static_cast<float>(above_bf16_tie)).bits ==
        0x3f80);  // the double rounding avoided
  const auto f = st.read<float>("f");
  for (std::size_t i = 0; i < doubles.size(); ++i) CHECK(f[i] == static_cast<float>(doubles[i]));
}

TEST_CASE("read converts within a kind and refuses to cross kinds") {
  SafetensorsWriter w;
  w.add("f64", std::array{0.1, 1e300}, {2});
  w.add("i64", std::array<std::int64_t, 3>{-1, 300, 1ll << 40}, {3});
  w.add("u8", std::array<std::uint8_t, 2>{0, 255}, {2});
  w.add("flags", std::array<std::uint8_t, 2>{1, 0}, {2}, DType::boolean);
  w.add("f32", std::array{1.5f}, {1});
  const Safetensors st = Safetensors::parse(w.to_bytes(), "conv.safetensors");

  CHECK(st.read<float>("f64") == std::vector<float>{0.1f, std::numeric_limits<float>::infinity()});
  CHECK(st.read<std::int64_t>("u8") == std::vector<std::int64_t>{0, 255});
  CHECK(st.read<std::int8_t>("flags") == std::vector<std::int8_t>{1, 0});
  CHECK(st.read<bool>("flags") == std::vector<bool>{true, false});

  const auto fails_with = [&](auto read, std::initializer_list<std::string_view> parts) {
    const std::string msg = error_of(read);
    INFO("message: ", msg);
    CHECK(msg.starts_with("conv.safetensors: "));
    for (const std::string_view p : parts) CHECK(contains(msg, p));
  };
  fails_with([&] { (void)st.read<std::int16_t>("i64"); },
             {"tensor 'i64': element 2 (1099511627776) does not fit int16"});
  fails_with([&] { (void)st.read<std::uint32_t>("i64"); }, {"element 0 (-1) does not fit uint32"});
  fails_with([&] { (void)st.read<std::int8_t>("u8"); }, {"element 1 (255) does not fit int8"});
  fails_with([&] { (void)st.read<bool>("u8"); }, {"element 1 (255) does not fit bool (0 or 1)"});
  fails_with(
      [&] { (void)st.read<std::int32_t>("f32"); },
      {"tensor 'f32': cannot read F32 as int32 (floating-point tensors read as float or double)"});
  fails_with([&] { (void)st.read<float>("i64"); },
             {"cannot read I64 as float (integer tensors read as integer types)"});
  fails_with([&] { (void)st.read<f16>("f32"); },
             {"cannot read F32 as rlxf::f16 (read as float or double to convert)"});
  fails_with([&] { (void)st.read<float>("missing"); },
             {"conv.safetensors: no tensor named 'missing'"});
  fails_with([&] { (void)st.raw("missing"); }, {"no tensor named 'missing'"});

  // BOOL bytes other than 0 and 1 are invalid file content.
  const std::vector<std::byte> bad_bool =
      file_with(R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", 0);
  std::vector<std::byte> file = bad_bool;
  file.push_back(std::byte{1});
  file.push_back(std::byte{2});
  const Safetensors b = Safetensors::parse(file, "bool.safetensors");
  CHECK(b.raw("b").size() == 2);
  CHECK(error_of([&] { (void)b.read<int>("b"); }) ==
        "bool.safetensors: tensor 'b': element 1 is byte 2; BOOL elements must be 0 or 1");
}

TEST_CASE("the writer refuses bad tensors and metadata") {
  SafetensorsWriter w;
  w.add("x", std::array{1.0f}, {1});
  const auto rejects = [](auto add, std::string_view part) {
    const std::string msg = error_of(add);
    INFO("message: ", msg);
    CHECK(contains(msg, part));
  };
  rejects([&] { w.add("x", std::array{2.0f}, {1}); }, "tensor 'x': added twice");
  rejects([&] { w.add("__metadata__", std::array{2.0f}, {1}); },
          "the name __metadata__ is reserved");
  rejects([&] { w.add("bad\xff", std::array{2.0f}, {1}); }, "name is not valid UTF-8");
  rejects(
      [&] {
        w.add("y", std::array{1.0f, 2.0f, 3.0f}, {2, 2});
      },
      "tensor 'y': shape (2, 2) has 4 elements but the data has 3");
  rejects(
      [&] {
        w.add("y", std::array{1.0f}, {1ull << 32, 1ull << 32, 2});
      },
      "shape (4294967296, 4294967296, 2) has more elements than size_t can count");
  rejects([&] { w.add("y", std::array{1.0f}, {1}, DType::i32); },
          "cannot store float data as I32 (integer dtypes take integer data)");
  rejects([&] { w.add("y", std::array{1}, {1}, DType::f32); },
          "cannot store int32 data as F32 (floating dtypes take float, double, f16 or bf16 data)");
  rejects(
      [&] {
        w.add("y", std::array{1, 300}, {2}, DType::u8);
      },
      "tensor 'y': element 1 (300) does not fit U8");
  rejects(
      [&] {
        w.add("y", std::array{0, 2}, {2}, DType::boolean);
      },
      "element 1 (2) does not fit BOOL (0 or 1)");
  rejects([&] { w.add("y", std::array<std::int64_t, 1>{1ll << 31}, {1}, DType::i32); },
          "element 0 (2147483648) does not fit I32");
  rejects([&] { w.add_raw("y", DType::f32, {3}, std::vector<std::byte>(8)); },
          "tensor 'y': shape (3) of F32 needs 12 bytes but 8 were given");
  rejects([&] { w.set_metadata("k", "\xc0\x80"); },
          "metadata 'k': key and value must be valid UTF-8");
  // Nothing above was added: the file holds x alone.
  const Safetensors st = Safetensors::parse(w.to_bytes(), "w");
  REQUIRE(st.tensors().size() == 1);
  CHECK(st.metadata().empty());
}

TEST_CASE("add_raw copies a tensor verbatim from another file") {
  SafetensorsWriter a;
  a.add("w", std::array{1.0f, 2.0f}, {2}, DType::bf16);
  const Safetensors src = Safetensors::parse(a.to_bytes(), "a");
  SafetensorsWriter b;
  const rlxf::io::TensorInfo& t = *src.find("w");
  b.add_raw(t.name, t.dtype, t.shape, src.raw(t.name));
  CHECK(b.to_bytes() == a.to_bytes());
}

TEST_CASE("write replaces an existing file atomically and leaves no temporary file") {
  ScratchDir dir;
  const fs::path path = dir.path / "model.safetensors";
  SafetensorsWriter first;
  first.add("a", std::array{1.0f}, {1});
  first.write(path);
  SafetensorsWriter second;
  second.add("b", std::array{2.0, 3.0}, {2});
  second.write(path);
  CHECK(read_all(path) == second.to_bytes());
  CHECK(Safetensors::load(path).read<double>("b") == std::vector<double>{2.0, 3.0});
  CHECK_FALSE(has_temp_file(dir.path));
  // A relative path (no parent directory part) works too.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path);
  first.write("relative.safetensors");
  fs::current_path(cwd);
  CHECK(read_all(dir.path / "relative.safetensors") == first.to_bytes());
}

TEST_CASE("a failed write leaves the old file as it was and no temporary file") {
  ScratchDir dir;
  const fs::path path = dir.path / "model.safetensors";
  SafetensorsWriter old_content;
  old_content.add("old", std::array{7.0f}, {1});
  old_content.write(path);
  const std::vector<std::byte> old_bytes = read_all(path);

  SUBCASE("the disk fills up halfway (file size limit)") {
    SafetensorsWriter big;
    big.add("w", std::vector<float>(1 << 16, 1.0f), {1 << 16});  // 256 KiB
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    rlimit limited = saved;
    limited.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 64 * 1024);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
    const std::string msg = error_of([&] { big.write(path); });
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    INFO("message: ", msg);
    CHECK(msg.starts_with(path.string() + ": writing " + path.string() + ".tmp-"));
    CHECK(contains(msg, "File too large"));
  }
  SUBCASE("the target is a directory") {
    const fs::path target = dir.path / "a_directory";
    fs::create_directory(target);
    std::ofstream(target / "inside.txt") << "keep";
    const std::string msg = error_of([&] { old_content.write(target); });
    INFO("message: ", msg);
    CHECK(contains(msg, "onto the target: Is a directory"));
    CHECK(fs::is_directory(target));
    CHECK(fs::exists(target / "inside.txt"));
  }
  SUBCASE("the directory does not exist") {
    const std::string msg =
        error_of([&] { old_content.write(dir.path / "no" / "such.safetensors"); });
    CHECK(contains(msg, "cannot create temporary file"));
    CHECK(contains(msg, "No such file or directory"));
  }
  SUBCASE("the directory is not writable (skipped as root, which may write anywhere)") {
    if (::geteuid() != 0) {
      fs::permissions(dir.path,
                      fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                      fs::perm_options::remove);
      const std::string msg = error_of([&] { old_content.write(path); });
      fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::add);
      CHECK(contains(msg, "Permission denied"));
    }
  }
  CHECK(read_all(path) == old_bytes);
  CHECK_FALSE(has_temp_file(dir.path));
}

TEST_CASE("load names the file when it cannot be read") {
  ScratchDir dir;
  CHECK(error_of([&] { (void)Safetensors::load(dir.path / "missing.safetensors"); }) ==
        (dir.path / "missing.safetensors").string() + ": cannot open: No such file or directory");
  CHECK(error_of([&] { (void)Safetensors::load(dir.path); }) ==
        dir.path.string() + ": not a regular file");
  std::ofstream(dir.path / "short.safetensors") << "abc";
  CHECK(error_of([&] { (void)Safetensors::load(dir.path / "short.safetensors"); }) ==
        (dir.path / "short.safetensors").string() +
            ": file is 3 bytes, too short for the 8-byte header length");
}

TEST_CASE("hostile files: sizes and the header length") {
  for (std::size_t n = 0; n < 8; ++n)
    CHECK(parse_error(std::vector<std::byte>(n)) ==
          "bad.safetensors: file is " + std::to_string(n) +
              " bytes, too short for the 8-byte header length");
  std::vector<std::byte> f;
  append_u64_le(f, 100'000'001);
  f.resize(f.size() + 16);
  CHECK(parse_error(f) ==
        "bad.safetensors: header length 100000001 exceeds the limit of 100000000 bytes");
  f.clear();
  append_u64_le(f, std::numeric_limits<std::uint64_t>::max());
  CHECK(contains(parse_error(f), "header length 18446744073709551615 exceeds the limit"));
  f.clear();
  append_u64_le(f, 50);
  f.resize(f.size() + 10);
  CHECK(parse_error(f) ==
        "bad.safetensors: header length 50 exceeds the 10 bytes after the length prefix (truncated "
        "file?)");
}

TEST_CASE("hostile files: JSON that is not a header") {
  check_rejects("", 0, {"header is not valid JSON", "unexpected end of input"});
  check_rejects(R"({"a":)", 0, {"header is not valid JSON"});
  check_rejects("{} x", 0, {"header is not valid JSON"});
  check_rejects(std::string_view("{}\0\0", 4), 0,
                {"header is not valid JSON"});  // padding must be spaces
  check_rejects("{\"\xff\":1}", 0, {"header is not valid JSON", "\\xff"});  // invalid UTF-8
  check_rejects("[1]", 0, {"header is an array, not a JSON object"});
  check_rejects(R"("x")", 0, {"header is a string, not a JSON object"});
  check_rejects("null", 0, {"header is null, not a JSON object"});
  check_rejects(R"({"a":1})", 0, {"tensor 'a': entry is a number, not an object"});
  check_rejects(R"({"a":[]})", 0, {"tensor 'a': entry is an array, not an object"});
  check_rejects(R"({"__metadata__":{"k":1}})", 0,
                {"__metadata__: value of 'k' is a number, not a string"});
  check_rejects(R"({"__metadata__":{"k":{}}})", 0,
                {"__metadata__: value of 'k' is an object, not a string"});
  check_rejects(R"({"__metadata__":["k"]})", 0,
                {"__metadata__ is an array, not an object of strings"});
  check_rejects(R"({"__metadata__":"k"})", 0,
                {"__metadata__ is a string, not an object of strings"});
}

TEST_CASE("hostile files: repeated keys are errors, not silently dropped") {
  const std::string e = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  check_rejects(R"({"a":)" + e + R"(,"a":)" + e + "}", 4,
                {"tensor 'a' appears twice in the header"});
  check_rejects(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4,
                {"tensor 'a': field 'dtype' appears twice"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}})", 4,
                {"tensor 'a': field 'shape' appears twice"});
  check_rejects(R"({"__metadata__":{},"__metadata__":{}})", 0,
                {"__metadata__ appears twice in the header"});
  check_rejects(R"({"__metadata__":{"k":"1","k":"2"}})", 0,
                {"__metadata__: key 'k' appears twice"});
}

TEST_CASE("hostile files: missing and ill-typed fields") {
  check_rejects(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4,
                {"tensor 'a': missing field 'dtype'"});
  check_rejects(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4,
                {"tensor 'a': missing field 'shape'"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1]}})", 4,
                {"tensor 'a': missing field 'data_offsets'"});
  check_rejects(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4,
                {"tensor 'a': field 'dtype' is a number, not a string"});
  check_rejects(R"({"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", 4,
                {"tensor 'a': field 'shape' is a string, not an array of integers"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":{}}})", 4,
                {"tensor 'a': field 'data_offsets' is an object, not an array of integers"});
  check_rejects(R"({"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", 4,
                {"tensor 'a': shape element 0 is a string, not an integer"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1,[1]],"data_offsets":[0,4]}})", 4,
                {"tensor 'a': shape element 1 is an array, not an integer"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}})", 4,
                {"shape element 0 is a boolean, not an integer"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,null]}})", 4,
                {"data_offsets element 1 is null, not an integer"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4,
                {"tensor 'a': data_offsets has 1 element, expected 2 ([begin, end])"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 4,
                {"tensor 'a': data_offsets has more than 2 elements"});
  check_rejects(
      R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1,
      {"tensor 'a': unknown dtype 'F8_E4M3' (rlxf reads F64, F32, F16, BF16, I64, I32, U8, BOOL)"});
  check_rejects(R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4,
                {"unknown dtype 'f32'"});
}

TEST_CASE("hostile files: shapes") {
  check_rejects(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4,
                {"tensor 'a': shape element 0 is negative (-1)"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4,
                {"tensor 'a': shape element 0 is 1.5, not an integer in [0, 2^64)"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", 4,
                {"shape element 0 is 1.0"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1e2],"data_offsets":[0,400]}})", 400,
                {"shape element 0 is 1e2"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}})", 4,
                {"shape element 0 is 18446744073709551616, not an integer"});
  check_rejects(
      R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}})", 0,
      {"tensor 'a': shape (4294967296, 4294967296, 2) has more elements than size_t can count"});
  // As Hugging Face multiplies left to right, an overflow before a zero dimension is an error.
  check_rejects(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})",
                0, {"more elements than size_t can count"});
  check_rejects(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 0,
                {"shape (2305843009213693952) of F64 has more bytes than size_t can count"});
  CHECK(parse_error(file_with(
            R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})")) ==
        "");
}

TEST_CASE("hostile files: data offsets") {
  // The example message of the design: size mismatch with shape * dtype size.
  CHECK(parse_error(file_with(
            R"({"wte.weight":{"dtype":"F32","shape":[4,8],"data_offsets":[0,100]}})", 100)) ==
        "bad.safetensors: tensor 'wte.weight': data_offsets [0, 100] do not match shape (4, 8) of "
        "F32 "
        "(128 bytes)");
  check_rejects(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4,
                {"tensor 'a': data_offsets [4, 0] end before they begin"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4,
                {"tensor 'a': data_offsets [0, 8] exceed the data buffer (4 bytes)"});
  check_rejects(
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}})",
      4, {"data_offsets element 1 is 18446744073709551616, not an integer"});
  check_rejects(
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551611,18446744073709551615]}})",
      4,
      {"data_offsets [18446744073709551611, 18446744073709551615] exceed the data buffer (4 "
       "bytes)"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                12, {"tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                8, {"overlap"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                8, {"tensor 'z': data_offsets [4, 4] overlap tensor 'a' at [0, 8]"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                12,
                {"bytes [4, 8) of the data buffer belong to no tensor (gap before tensor 'b')"});
  check_rejects(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
                {"bytes [0, 4) of the data buffer belong to no tensor"});
  check_rejects(
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6,
      {"2 trailing bytes after the last tensor (the data buffer is 6 bytes, the tensors cover 4)"});
  check_rejects("{}", 3, {"3 trailing bytes after the last tensor"});
}

TEST_CASE("accepted: what Hugging Face's reader accepts besides the canonical layout") {
  // Whitespace around the header, metadata null, unknown fields (nested), offsets not in name
  // order, zero-size tensors sharing an offset.
  const std::string header =
      " \n{\"__metadata__\":null,"
      R"("b":{"data_offsets":[0,4],"shape":[],"dtype":"I32","extra":{"x":[1,{"y":null}],"z":"w"}},)"
      R"("a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
      R"("z0":{"dtype":"F64","shape":[0],"data_offsets":[4,4]},)"
      R"("z1":{"dtype":"F64","shape":[3,0],"data_offsets":[4,4]}}  )"
      "\t\r\n";
  std::vector<std::byte> f = file_with(header, 6);
  f[8 + header.size()] = std::byte{0x2a};  // b = 42
  f[8 + header.size() + 5] = std::byte{0xff};
  REQUIRE(parse_error(f) == "");
  const Safetensors st = Safetensors::parse(f, "ok");
  CHECK(st.metadata().empty());
  CHECK(st.read<int>("b") == std::vector<int>{42});
  CHECK(st.read<int>("a") == std::vector<int>{0, 255});
  CHECK(st.tensors()[0].name == "b");
  CHECK(st.find("z1")->shape == std::vector<std::size_t>{3, 0});
  // Nesting inside an ignored field is allowed up to 128 levels.
  const auto nested = [](std::size_t depth) {
    return R"({"a":{"dtype":"U8","shape":[],"data_offsets":[0,1],"x":)" + std::string(depth, '[') +
           std::string(depth, ']') + "}}";
  };
  CHECK(parse_error(file_with(nested(128), 1)) == "");
  check_rejects(nested(129), 1, {"tensor 'a': an ignored field nests deeper than 128 levels"});
  check_rejects(nested(1'000'000), 1, {"nests deeper than 128 levels"});
}

TEST_CASE("error messages show names safely") {
  // A control character in a name is escaped; a very long name is cut.
  check_rejects(R"({"a\nb":1})", 0, {"tensor 'a\\x0ab': entry is a number"});
  const std::string long_name(5000, 'n');
  const std::string msg = parse_error(file_with(R"({")" + long_name + R"(":1})"));
  CHECK(contains(msg, "'" + std::string(200, 'n') + "...'"));
  CHECK(msg.size() < 400);
  check_rejects(R"({"ε":1})", 0, {"tensor 'ε': entry is a number"});
}

TEST_CASE("every truncation of a valid file is an error, never a crash") {
  SafetensorsWriter w;
  w.add("a", std::array{1.0f, 2.0f, 3.0f}, {3});
  w.add("b", std::array<std::uint8_t, 1>{9}, {1});
  w.add("c", std::array{1.0}, {}, DType::bf16);
  w.add("d", std::vector<float>{}, {0});
  w.set_metadata("format", "pt");
  for (const std::vector<std::byte>& whole :
       {w.to_bytes(), read_all(fixture("hf_reference.safetensors"))}) {
    REQUIRE(parse_error(whole) == "");
    for (std::size_t n = 0; n < whole.size(); ++n) {
      CAPTURE(n);
      const std::string msg = parse_error(
          std::vector<std::byte>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)));
      CHECK(msg.starts_with("bad.safetensors: "));
    }
  }
}
