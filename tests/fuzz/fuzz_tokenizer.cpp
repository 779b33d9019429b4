// libFuzzer target for the tokenizer files: the input is cut at 0xff bytes (which UTF-8 never
// holds) into vocab.json, merges.txt and an optional special_tokens_map.json, written to a
// scratch folder and loaded with tokenize::Bpe::load. A tokenizer that loads must round-trip
// text: decode(encode(s)) == s for sample strings and for the input itself. An rlxf::Error is
// the expected outcome for most inputs; anything else (a crash, a sanitizer report, another
// exception, a broken round trip) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "scratch.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/tokenize/bpe.hpp"

namespace {

const std::filesystem::path& scratch() { return rlxf_fuzz::scratch_dir("fuzz_tokenizer"); }

void write(const std::filesystem::path& path, std::string_view text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(text.data(), static_cast<std::streamsize>(text.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t cut = text.find('\xff', start);
    parts.push_back(text.substr(start, cut == std::string_view::npos ? std::string_view::npos : cut - start));
    if (cut == std::string_view::npos || parts.size() == 3) break;
    start = cut + 1;
  }
  const auto& dir = scratch();
  write(dir / "vocab.json", parts[0]);
  write(dir / "merges.txt", parts.size() > 1 ? parts[1] : "#version: 0.2\n");
  if (parts.size() > 2)
    write(dir / "special_tokens_map.json", parts[2]);
  else
    std::filesystem::remove(dir / "special_tokens_map.json");
  try {
    const rlxf::tokenize::Bpe bpe = rlxf::tokenize::Bpe::load(dir);
    for (const std::string_view s : {std::string_view("Submit the budget to parliament"), std::string_view("\xc3\xa9\x00\x01", 4), text}) {
      const auto ids = bpe.encode(s);
      for (const auto id : ids)
        if (id < 0 || static_cast<std::size_t>(id) >= bpe.vocab_size()) std::abort();
      if (bpe.decode(ids) != s) std::abort();
    }
  } catch (const rlxf::Error&) {
  }
  return 0;
}
