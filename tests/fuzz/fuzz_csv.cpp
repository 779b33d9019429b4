// libFuzzer target for rlxf::data::CsvReader and, through it, the MONA loader (load_mona's
// stream overload in skip mode). Rejecting an input with an rlxf::Error is the expected outcome
// for many inputs; a crash, a sanitizer report, any other exception, or a broken property below
// is a finding.
//
// The first byte of the input picks the options (the rest is the CSV text):
//   bits 0-1  the block size of the main read: 4, 5, 64 or 65536 bytes
//   bits 2-3  the delimiter: ',', ';', '\t' or '|'
//   bit 4     require_consistent_fields (wrong counts are then caught, counted and skipped)
//   bit 5     validate_utf8 off
//   bit 6     max_field_bytes = 8 (instead of the default)
//
// Properties checked:
//  - the reader gives the same records, and the same error message, with the smallest block
//    (4 bytes) as with the chosen block size (block boundaries never change a result);
//  - after any error other than a wrong field count the reader refuses to go on;
//  - records read without a syntax error, written back with write_csv_record, read back equal;
//  - load_mona (comma-delimited inputs, skip mode): rows read = kept + skipped, kept = MET +
//    Non-MET + unlabelled = records, at most max_reported messages, a line for each row, and
//    for each kept row the policy prompt parses back to a context that renders the same prompt.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/data/csv.hpp"
#include "rlxf/data/mona.hpp"

namespace {

using rlxf::data::CsvOptions;
using rlxf::data::CsvReader;
using Records = std::vector<std::vector<std::string>>;

void require(bool property) {
  if (!property) std::abort();
}

struct Outcome {
  Records records;
  std::vector<std::size_t> lines;
  std::vector<std::string> count_errors;  // recoverable: wrong field count
  std::optional<std::string> error;       // final: syntax or size error
};

bool is_count_error(const std::string& what) {
  return what.find(" fields, expected ") != std::string::npos ||
         what.find(" fields, more than ") != std::string::npos;
}

Outcome read_all(std::string_view text, const CsvOptions& options) {
  std::istringstream in{std::string(text)};
  CsvReader csv(in, "fuzz.csv", options);
  Outcome out;
  std::vector<std::string> row;
  for (;;) {
    try {
      if (!csv.next(row)) {
        require(row.empty());
        break;
      }
      out.records.push_back(row);
      out.lines.push_back(csv.line());
    } catch (const rlxf::Error& e) {
      const std::string what = e.what();
      require(what.starts_with("fuzz.csv: line "));
      if (options.require_consistent_fields && is_count_error(what)) {
        out.count_errors.push_back(what);
        continue;
      }
      out.error = what;
      // The reader refuses to go on.
      bool refused = false;
      try {
        (void)csv.next(row);
      } catch (const rlxf::Error& again) {
        refused = std::string(again.what()).find("cannot read on") != std::string::npos;
      }
      require(refused);
      break;
    }
  }
  require(csv.records() == out.records.size() + out.count_errors.size());
  return out;
}

void check_write_round_trip(const Outcome& o, const CsvOptions& options) {
  if (o.error) return;
  std::ostringstream w;
  for (const auto& r : o.records) rlxf::data::write_csv_record(w, r, options.delimiter);
  CsvOptions plain = options;
  plain.require_consistent_fields = false;
  const Outcome back = read_all(w.str(), plain);
  require(!back.error);
  require(back.records == o.records);
}

void check_mona(std::string_view text, const CsvOptions& csv) {
  rlxf::data::MonaLoadOptions opt;
  opt.bad_rows = rlxf::data::BadRows::skip;
  opt.max_reported = 3;
  opt.csv = csv;
  std::istringstream in{std::string(text)};
  rlxf::data::MonaTable t;
  try {
    t = rlxf::data::load_mona(in, "fuzz.csv", opt);
  } catch (const rlxf::Error&) {
    return;
  }
  const auto& r = t.report;
  require(r.rows_read == r.rows_kept + r.rows_skipped);
  require(r.rows_skipped ==
          r.skipped_field_count + r.skipped_empty_required + r.skipped_status);
  require(r.rows_kept == r.met + r.non_met + r.unlabelled);
  require(t.records.size() == r.rows_kept && t.labels.size() == r.rows_kept &&
          t.lines.size() == r.rows_kept);
  require(r.messages.size() <= opt.max_reported);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const rlxf::data::MonaRecord& rec = t.records[i];
    require(!rlxf::data::collapse_space(rec.country_name).empty());
    require(!rlxf::data::collapse_space(rec.description).empty());
    require(opt.labels.label_of(rec.pc_status) == t.labels[i]);
    const rlxf::data::ConditionContext c = rlxf::data::condition_context(rec);
    const std::string prompt = rlxf::data::policy_prompt(c);
    const auto parsed = rlxf::data::parse_policy_prompt(prompt);
    require(parsed.has_value());
    require(rlxf::data::policy_prompt(*parsed) == prompt);
    (void)rlxf::data::classifier_text(rec);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  CsvOptions o;
  constexpr std::size_t blocks[] = {4, 5, 64, std::size_t{1} << 16};
  constexpr char delimiters[] = {',', ';', '\t', '|'};
  o.buffer_bytes = blocks[mode & 3];
  o.delimiter = delimiters[(mode >> 2) & 3];
  o.require_consistent_fields = (mode & 0x10) != 0;
  o.validate_utf8 = (mode & 0x20) == 0;
  if (mode & 0x40) o.max_field_bytes = 8;
  try {
    const Outcome a = read_all(text, o);
    CsvOptions small = o;
    small.buffer_bytes = 4;
    const Outcome b = read_all(text, small);
    require(a.records == b.records);
    require(a.lines == b.lines);
    require(a.count_errors == b.count_errors);
    require(a.error == b.error);
    check_write_round_trip(a, o);
    if (o.delimiter == ',') check_mona(text, o);
  } catch (const std::exception&) {
    std::abort();  // only rlxf::Error is expected, and every one is caught above
  }
  return 0;
}
