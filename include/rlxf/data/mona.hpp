#pragma once
// The MONA loader: a MONA-format CSV export (see docs/data.md and data/mona_record.hpp) read into
// records, labels MET / Non-MET as the RLXF paper defines them, and the texts the models see:
// the policy's prompt (the paper's template, and its inverse) and the classifier's input.
//
//   rlxf::data::MonaTable t = rlxf::data::load_mona("mona.csv", {.bad_rows = rlxf::data::BadRows::skip});
//   std::cout << t.report.summary() << '\n';
//   for (std::size_t i : t.labelled())
//     train(classifier_text(t.records[i]), t.labels[i] == rlxf::data::Label::met);
//
// Columns are found by NAME in the header (any order, case and surrounding spaces ignored; extra
// columns ignored). Required: Arrangement Number, Country Name, Arrangement Type, Economic
// Descriptor, Description, PC Status. Every other column of the 30 is read when present and
// left empty when absent. Field values are kept exactly as the file holds them.
//
// A row is bad when it has a different number of fields than the header, when Country Name,
// Arrangement Type or Description is empty (or only white space), or when the label mapping
// rejects its PC Status. MonaLoadOptions::bad_rows says whether a bad row throws (the default)
// or is skipped and counted. Syntax errors the CSV reader cannot recover from (an unterminated
// quote, invalid UTF-8, a NUL byte, a bare CR, ...) always throw.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/data/csv.hpp"
#include "rlxf/data/mona_record.hpp"

namespace rlxf::data {

// ---------------------------------------------------------------------------------------------
// Labels

// The classifier's target. MET is the positive class (1), as in the paper's P(MET) reward.
enum class Label : std::uint8_t { non_met = 0, met = 1, none = 2 };

inline std::string_view to_string(Label l) {
  switch (l) {
    case Label::non_met: return "Non-MET";
    case Label::met: return "MET";
    case Label::none: return "unlabelled";
  }
  return "invalid label";
}

// Internals (not rlxf::data::detail: that name would hide rlxf::detail from csv.hpp).
namespace mona_detail {
inline bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
}  // namespace mona_detail

// `s` with ASCII white space trimmed and every inner run of it replaced by one space.
inline std::string collapse_space(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending = false;
  for (const char c : s) {
    if (mona_detail::is_ascii_space(c)) {
      pending = !out.empty();
      continue;
    }
    if (pending) out.push_back(' ');
    pending = false;
    out.push_back(c);
  }
  return out;
}

// The form statuses are compared in: white space collapsed (collapse_space), ASCII lower case.
// " Partially   MET " -> "partially met".
inline std::string normalize_status(std::string_view status) {
  std::string out = collapse_space(status);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Which PC Status values mean MET, Non-MET, or no label. Statuses are compared after
// normalize_status, so "Met", " met " and "MET" are one status. The defaults are the paper's:
// MET = Met, Partially Met (PM); Non-MET = every other non-empty status (Not Met, Waived,
// Delayed, Met with delay, Modified, ...); an empty status carries no label.
// When non_met is given explicitly, a status in none of the three lists is a bad row (so a typo
// such as "Met wth delay" is caught instead of silently counted as Non-MET).
// A status may appear in one list only (checked by validate()).
struct LabelMapping {
  std::vector<std::string> met = {"Met", "Partially Met", "PM"};
  std::vector<std::string> non_met = {};  // empty: every status not in met or unlabelled
  std::vector<std::string> unlabelled = {""};

  // Throws rlxf::Error naming a status listed twice (in two lists, normalised).
  void validate() const {
    std::map<std::string, std::string_view> seen;  // normalised status -> its list
    const auto add = [&](const std::vector<std::string>& list, std::string_view name) {
      for (const auto& s : list) {
        auto [it, fresh] = seen.emplace(normalize_status(s), name);
        if (!fresh && it->second != name)
          fail("label mapping: status '", s, "' is in both ", it->second, " and ", name);
      }
    };
    add(met, "met");
    add(non_met, "non_met");
    add(unlabelled, "unlabelled");
  }

  // The label of `status`, or nullopt when the mapping rejects it (a status in no list when
  // non_met is explicit, or an empty status when "" is not in unlabelled). Validates the
  // mapping first; for many statuses, load_mona normalises the lists once instead.
  std::optional<Label> label_of(std::string_view status) const;
};

// ---------------------------------------------------------------------------------------------
// Loading

enum class BadRows {
  fail,  // throw rlxf::Error at the first bad row, naming the file, the line and the column
  skip,  // leave the row out, count it, and keep its message (up to max_reported of them)
};

struct MonaLoadOptions {
  BadRows bad_rows = BadRows::fail;
  LabelMapping labels = {};
  // With BadRows::skip: how many messages about skipped rows MonaLoadReport::messages keeps.
  std::size_t max_reported = 20;
  // The CSV dialect (delimiter, field cap, buffer). expected_fields and
  // require_consistent_fields are ignored: the loader compares each row with the header itself.
  CsvOptions csv = {};
};

// What a load saw. Row counts are of data records (the header excluded).
struct MonaLoadReport {
  std::string source;
  std::size_t rows_read = 0;
  std::size_t rows_kept = 0;
  std::size_t rows_skipped = 0;
  // Skipped rows by reason (they add up to rows_skipped).
  std::size_t skipped_field_count = 0;     // fields != header columns
  std::size_t skipped_empty_required = 0;  // empty Country Name, Arrangement Type or Description
  std::size_t skipped_status = 0;          // PC Status rejected by the label mapping
  // Kept rows by label.
  std::size_t met = 0;
  std::size_t non_met = 0;
  std::size_t unlabelled = 0;
  // Kept rows by PC Status, normalised (normalize_status; "" for an empty status).
  std::map<std::string, std::size_t> statuses;
  // The first MonaLoadOptions::max_reported messages about skipped rows, each
  // "<source>: line L[, column 'C']: <what is wrong>".
  std::vector<std::string> messages;
  // The names of the header's columns the loader did not find (the optional ones of the 30).
  std::vector<std::string> absent_columns;

  // One line: "mona.csv: 49012 rows read, 48990 kept (31000 MET, 15000 Non-MET, 2990
  // unlabelled), 22 skipped (22 field count, 0 empty required field, 0 status)".
  std::string summary() const {
    return detail::concat(source, ": ", rows_read, " rows read, ", rows_kept, " kept (", met,
                          " MET, ", non_met, " Non-MET, ", unlabelled, " unlabelled), ",
                          rows_skipped, " skipped (", skipped_field_count, " field count, ",
                          skipped_empty_required, " empty required field, ", skipped_status,
                          " status)");
  }
};

// The loaded rows: records[i], labels[i] and lines[i] (the 1-based physical line where the row
// starts in the file) describe row i.
struct MonaTable {
  std::vector<MonaRecord> records;
  std::vector<Label> labels;
  std::vector<std::size_t> lines;
  MonaLoadReport report;

  std::size_t size() const noexcept { return records.size(); }

  // Indices of the rows labelled MET or Non-MET, in order.
  std::vector<std::size_t> labelled() const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] != Label::none) out.push_back(i);
    return out;
  }

  // One column of every row, e.g. column(&MonaRecord::arrangement_number) for group_split.
  std::vector<std::string> column(std::string MonaRecord::*field) const {
    std::vector<std::string> out;
    out.reserve(records.size());
    for (const auto& r : records) out.push_back(r.*field);
    return out;
  }
};

// The columns a MONA file must have (matched as CsvHeader matches names).
inline constexpr std::array<std::string_view, 6> mona_required_columns{
    "Arrangement Number", "Country Name",     "Arrangement Type",
    "Economic Descriptor", "Description", "PC Status"};

namespace mona_detail {

// LabelMapping with its lists normalised once.
class StatusLabeler {
 public:
  explicit StatusLabeler(const LabelMapping& m) : explicit_non_met_(!m.non_met.empty()) {
    m.validate();
    for (const auto& s : m.met) met_.push_back(normalize_status(s));
    for (const auto& s : m.non_met) non_met_.push_back(normalize_status(s));
    for (const auto& s : m.unlabelled) unlabelled_.push_back(normalize_status(s));
  }
  // The label of the normalised status `key`.
  std::optional<Label> operator()(const std::string& key) const {
    const auto in = [&](const std::vector<std::string>& list) {
      return std::find(list.begin(), list.end(), key) != list.end();
    };
    if (in(met_)) return Label::met;
    if (in(unlabelled_)) return Label::none;
    if (in(non_met_) || (!explicit_non_met_ && !key.empty())) return Label::non_met;
    return std::nullopt;
  }
  std::string describe() const {
    const auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "'" : ", '") + x + "'";
      return s.empty() ? std::string("none") : s;
    };
    return detail::concat("met: ", list(met_), "; non_met: ",
                          explicit_non_met_ ? list(non_met_) : std::string("any other non-empty status"),
                          "; unlabelled: ", list(unlabelled_));
  }

 private:
  bool explicit_non_met_;
  std::vector<std::string> met_, non_met_, unlabelled_;
};

}  // namespace mona_detail

inline std::optional<Label> LabelMapping::label_of(std::string_view status) const {
  return mona_detail::StatusLabeler(*this)(normalize_status(status));
}

namespace mona_detail {

inline bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return is_ascii_space(c); });
}

inline MonaTable load_mona(CsvReader& csv, const MonaLoadOptions& opt) {
  const StatusLabeler labeler(opt.labels);
  MonaTable t;
  MonaLoadReport& rep = t.report;
  rep.source = csv.source();

  const CsvHeader header = csv.read_header();
  {
    std::vector<std::string_view> missing;
    for (const std::string_view name : mona_required_columns)
      if (!header.contains(name)) missing.push_back(name);
    if (!missing.empty()) {
      std::string miss, found;
      for (const auto m : missing) miss += detail::concat(miss.empty() ? "'" : ", '", m, "'");
      for (const auto& n : header.names()) found += (found.empty() ? "'" : ", '") + n + "'";
      Error e(detail::concat("not a MONA export: missing required column",
                             missing.size() > 1 ? "s " : " ", miss, " (the header on line ",
                             csv.line(), " has ", header.size(), " columns: ", found, ")"));
      e.add_context(csv.source());
      throw e;
    }
  }
  // Column index in the file of each of the 30 MONA columns, if present (index() also rejects
  // a name that two columns match).
  std::array<std::optional<std::size_t>, mona_columns.size()> where{};
  for (std::size_t k = 0; k < mona_columns.size(); ++k) {
    if (header.contains(mona_columns[k].name))
      where[k] = header.index(mona_columns[k].name);
    else
      rep.absent_columns.emplace_back(mona_columns[k].name);
  }
  const std::size_t ncols = header.size();

  const auto bad_row = [&](std::size_t& counter, std::string msg) {
    if (opt.bad_rows == BadRows::fail) {
      Error e(std::move(msg));
      e.add_context(csv.source());
      throw e;
    }
    ++rep.rows_skipped;
    ++counter;
    if (rep.messages.size() < opt.max_reported) rep.messages.push_back(csv.source() + ": " + msg);
  };

  std::vector<std::string> row;
  std::string status_key;
  while (csv.next(row)) {
    ++rep.rows_read;
    const std::size_t line = csv.line();
    if (row.size() != ncols) {
      std::string detail_msg =
          row.size() < ncols
              ? detail::concat("; columns ", row.size() + 1, " ('", header.names()[row.size()],
                               "') onwards are missing")
              : detail::concat("; ", row.size() - ncols, " field",
                               row.size() - ncols > 1 ? "s" : "", " beyond the last column");
      bad_row(rep.skipped_field_count,
              detail::concat("line ", line, ": record has ", row.size(), " field",
                             row.size() == 1 ? "" : "s", " but the header has ", ncols,
                             " columns", detail_msg));
      continue;
    }
    MonaRecord rec;
    for (std::size_t k = 0; k < mona_columns.size(); ++k)
      if (where[k]) rec.*(mona_columns[k].field) = std::move(row[*where[k]]);

    bool ok = true;
    for (const auto member : {&MonaRecord::country_name, &MonaRecord::arrangement_type,
                              &MonaRecord::description}) {
      if (!blank(rec.*member)) continue;
      std::string_view name;
      for (const auto& c : mona_columns)
        if (c.field == member) name = c.name;
      bad_row(rep.skipped_empty_required,
              detail::concat("line ", line, ", column '", name, "': empty ", name,
                             " (a required field)"));
      ok = false;
      break;
    }
    if (!ok) continue;

    status_key = normalize_status(rec.pc_status);
    const std::optional<Label> label = labeler(status_key);
    if (!label) {
      bad_row(rep.skipped_status,
              detail::concat("line ", line, ", column 'PC Status': status '", rec.pc_status,
                             "' is not in the label mapping (", labeler.describe(), ")"));
      continue;
    }
    ++rep.rows_kept;
    ++rep.statuses[status_key];
    switch (*label) {
      case Label::met: ++rep.met; break;
      case Label::non_met: ++rep.non_met; break;
      case Label::none: ++rep.unlabelled; break;
    }
    t.records.push_back(std::move(rec));
    t.labels.push_back(*label);
    t.lines.push_back(line);
  }
  return t;
}

inline CsvOptions mona_csv_options(CsvOptions o) {
  o.expected_fields = 0;
  o.require_consistent_fields = false;
  return o;
}

}  // namespace mona_detail

// Reads a MONA export from `in` (open it in binary mode); `source` (e.g. the file name) starts
// every error message and MonaLoadReport::source.
inline MonaTable load_mona(std::istream& in, std::string source, const MonaLoadOptions& options = {}) {
  CsvReader csv(in, std::move(source), mona_detail::mona_csv_options(options.csv));
  return mona_detail::load_mona(csv, options);
}

// Reads the MONA export at `path`.
inline MonaTable load_mona(const std::filesystem::path& path, const MonaLoadOptions& options = {}) {
  CsvReader csv = CsvReader::open(path, mona_detail::mona_csv_options(options.csv));
  return mona_detail::load_mona(csv, options);
}

// ---------------------------------------------------------------------------------------------
// The texts the models see

// What the policy is asked about: a condition's country, arrangement type and economic
// descriptor (the paper's "Economic Condition Classification").
struct ConditionContext {
  std::string country;
  std::string arrangement_type;
  std::string economic_descriptor;
  friend bool operator==(const ConditionContext&, const ConditionContext&) = default;
};

// The context of a record, each field with its white space collapsed (collapse_space).
inline ConditionContext condition_context(const MonaRecord& r) {
  return {collapse_space(r.country_name), collapse_space(r.arrangement_type),
          collapse_space(r.economic_descriptor)};
}

namespace mona_detail {
inline constexpr std::string_view prompt_head =
    "Given the economic indicators and historical performance of ";
inline constexpr std::string_view prompt_mid1 =
    ", what would be an appropriate policy proposal under the ";
inline constexpr std::string_view prompt_mid2 = " for achieving ";
inline constexpr std::string_view prompt_tail = "? Describe the proposed condition.";
}  // namespace mona_detail

// The paper's prompt for the policy LLM, exactly:
//   "Given the economic indicators and historical performance of <country>, what would be an
//    appropriate policy proposal under the <arrangement type> for achieving <economic
//    descriptor>? Describe the proposed condition."
// (one line; the fields are inserted as they are).
inline std::string policy_prompt(const ConditionContext& c) {
  std::string s;
  s.reserve(mona_detail::prompt_head.size() + mona_detail::prompt_mid1.size() + mona_detail::prompt_mid2.size() +
            mona_detail::prompt_tail.size() + c.country.size() + c.arrangement_type.size() +
            c.economic_descriptor.size());
  s.append(mona_detail::prompt_head).append(c.country);
  s.append(mona_detail::prompt_mid1).append(c.arrangement_type);
  s.append(mona_detail::prompt_mid2).append(c.economic_descriptor);
  s.append(mona_detail::prompt_tail);
  return s;
}

// The context a policy_prompt was made from, or nullopt when `prompt` does not follow the
// template (ASCII white space around the whole prompt is ignored). The fixed text is matched,
// so fields may hold commas ("AFGHANISTAN,ISLAMIC REPUBLIC OF") and question marks; the inverse
// is exact unless the country contains ", what would be an appropriate policy proposal under
// the " or the arrangement type contains " for achieving " (the first occurrence is taken).
inline std::optional<ConditionContext> parse_policy_prompt(std::string_view prompt) {
  while (!prompt.empty() && mona_detail::is_ascii_space(prompt.front())) prompt.remove_prefix(1);
  while (!prompt.empty() && mona_detail::is_ascii_space(prompt.back())) prompt.remove_suffix(1);
  if (!prompt.starts_with(mona_detail::prompt_head)) return std::nullopt;
  prompt.remove_prefix(mona_detail::prompt_head.size());
  if (!prompt.ends_with(mona_detail::prompt_tail)) return std::nullopt;
  prompt.remove_suffix(mona_detail::prompt_tail.size());
  const std::size_t a = prompt.find(mona_detail::prompt_mid1);
  if (a == std::string_view::npos) return std::nullopt;
  const std::string_view rest = prompt.substr(a + mona_detail::prompt_mid1.size());
  const std::size_t b = rest.find(mona_detail::prompt_mid2);
  if (b == std::string_view::npos) return std::nullopt;
  return ConditionContext{std::string(prompt.substr(0, a)), std::string(rest.substr(0, b)),
                          std::string(rest.substr(b + mona_detail::prompt_mid2.size()))};
}

// The classifier's input for one condition: country, arrangement type, economic descriptor and
// description joined by " | ", each with its white space collapsed (collapse_space: runs of
// spaces, tabs and line breaks become one space; ends trimmed):
//   "ZAMBIA | ECF | 1.1. Revenue measures, excluding trade policy | Submit to parliament ..."
// The same function builds the reward model's input from (prompt, response): parse the prompt
// with parse_policy_prompt and pass the response as the description.
inline std::string classifier_text(const ConditionContext& c, std::string_view description) {
  constexpr std::string_view sep = " | ";
  std::string s = collapse_space(c.country);
  s.append(sep).append(collapse_space(c.arrangement_type));
  s.append(sep).append(collapse_space(c.economic_descriptor));
  s.append(sep).append(collapse_space(description));
  return s;
}

// classifier_text of a record's context and description.
inline std::string classifier_text(const MonaRecord& r) {
  return classifier_text(condition_context(r), r.description);
}

}  // namespace rlxf::data
