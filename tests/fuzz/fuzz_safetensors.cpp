// libFuzzer target for rlxf::io::Safetensors::parse. Rejecting an input with an rlxf::Error is
// the expected outcome for most inputs; a crash, a sanitizer report, any other exception, or a
// broken property below is a finding.
//
// Each input is parsed twice:
//  1. as it is, a whole safetensors file;
//  2. if a 0xff byte follows the 8-byte prefix, with the prefix replaced by the length of what
//     lies between them, and that 0xff removed. 0xff never occurs in UTF-8, so it can mark the
//     end of the header JSON: mutations that change the header's length then keep the file's
//     framing intact instead of being rejected at once for a wrong length prefix.
//
// Properties checked when the input parses:
//  - every tensor reads (floating ones as double and float, integer ones as int64; a BOOL
//    tensor may hold bytes other than 0 and 1, which is an rlxf::Error);
//  - copying every tensor verbatim (add_raw) and the metadata into a SafetensorsWriter gives
//    a file that parses to the same tensors, bytes and metadata.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/io/safetensors.hpp"

namespace {

using rlxf::io::Safetensors;

void require(bool property) {
  if (!property) std::abort();
}

void read_every_tensor(const Safetensors& st) {
  for (const rlxf::io::TensorInfo& t : st.tensors()) {
    require(st.raw(t.name).size() == t.end - t.begin);
    if (rlxf::is_floating(t.dtype)) {
      require(st.read<double>(t.name).size() == t.numel());
      require(st.read<float>(t.name).size() == t.numel());
    } else {
      try {
        require(st.read<std::int64_t>(t.name).size() == t.numel());
      } catch (const rlxf::Error&) {
        require(t.dtype == rlxf::DType::boolean);
      }
    }
  }
}

void check_round_trip(const Safetensors& st) {
  rlxf::io::SafetensorsWriter writer;
  for (const rlxf::io::TensorInfo& t : st.tensors())
    writer.add_raw(t.name, t.dtype, t.shape, st.raw(t.name));
  for (const auto& [key, value] : st.metadata()) writer.set_metadata(key, value);
  const Safetensors again = Safetensors::parse(writer.to_bytes(), "rewritten");
  require(again.metadata() == st.metadata());
  require(again.tensors().size() == st.tensors().size());
  for (const rlxf::io::TensorInfo& t : st.tensors()) {
    const rlxf::io::TensorInfo* u = again.find(t.name);
    require(u != nullptr && u->dtype == t.dtype && u->shape == t.shape);
    const auto a = st.raw(t.name), b = again.raw(t.name);
    require(a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0));
  }
}

void check_file(std::vector<std::byte> bytes) {
  std::optional<Safetensors> st;
  try {
    st.emplace(Safetensors::parse(std::move(bytes), "fuzz-input"));
  } catch (const rlxf::Error&) {
    return;
  }
  read_every_tensor(*st);
  check_round_trip(*st);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  check_file({input.begin(), input.end()});
  if (size <= 8) return 0;
  const auto marker = std::find(input.begin() + 8, input.end(), std::byte{0xff});
  if (marker == input.end()) return 0;
  const auto header_size = static_cast<std::uint64_t>(marker - (input.begin() + 8));
  std::vector<std::byte> framed;
  for (int i = 0; i < 8; ++i)
    framed.push_back(static_cast<std::byte>((header_size >> (8 * i)) & 0xffu));
  framed.insert(framed.end(), input.begin() + 8, marker);
  framed.insert(framed.end(), marker + 1, input.end());
  check_file(std::move(framed));
  return 0;
}
