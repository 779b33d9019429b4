#pragma once
// RFC 4180 CSV, read record by record from a std::istream (or a file), in fixed-size blocks, so
// a multi-GB export never sits in memory whole.
//
//   std::ifstream in("mona.csv", std::ios::binary);
//   rlxf::data::CsvReader csv(in, "mona.csv", {.require_consistent_fields = true});
//   const rlxf::data::CsvHeader header = csv.read_header();
//   const std::size_t status = header.index("pc status");   // case-insensitive, trimmed
//   std::vector<std::string> row;
//   while (csv.next(row)) use(row[status], csv.line());
//
// The grammar (RFC 4180, with the usual relaxations):
// - Fields are separated by CsvOptions::delimiter (',' by default), records by CRLF or LF.
//   A CR outside quotes that is not followed by LF is an error.
// - A field that starts with '"' is quoted: it may contain the delimiter, CR, LF and doubled
//   quotes (""), which stand for one quote. Everything between the quotes is kept verbatim
//   (an embedded CRLF stays "\r\n"; a lone CR is data). After the closing quote only the
//   delimiter, a line end or the end of input may follow.
// - A quote inside an unquoted field is an error. White space is never trimmed from fields.
// - A UTF-8 byte order mark at the very start of the input is skipped (columns on line 1 are
//   counted after it).
// - The last record may lack a line end. A physically empty line is not a record, anywhere in
//   the input (so a trailing empty line is ignored); write "" for a record made of one empty
//   field.
//
// Every error is an rlxf::Error whose message is
//   "<source>: line L, column C: <what is wrong>"
// with L the 1-based physical line and C the 1-based byte column on that line. Errors: an
// unterminated quoted field (reported where the quote opened), a quote inside an unquoted field,
// a character after a closing quote, a NUL byte, invalid UTF-8 (reported at the first byte of the
// bad sequence; checked unless CsvOptions::validate_utf8 is false), a field longer than
// CsvOptions::max_field_bytes, a bare CR, and a record with the wrong number of fields when a
// fixed count is required (CsvOptions::expected_fields, or require_consistent_fields).
// A wrong field count is thrown after the record is consumed (fields holds it, line() names it),
// so a caller may catch it, count the bad row and call next() again; after any other error the
// reader refuses to go on (there is no reliable way to find the next record).
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"

namespace rlxf::data {

struct CsvOptions {
  // Field separator. Must be ASCII and not '"', CR, LF or NUL.
  char delimiter = ',';
  // Longest field accepted, in bytes (after quotes are removed).
  std::size_t max_field_bytes = std::size_t{16} << 20;
  // Most fields a record may have: a line of a million commas is refused, not a million strings.
  std::size_t max_fields = 4096;
  // Longest record accepted, in bytes of field content (the bound on one record's memory).
  std::size_t max_record_bytes = std::size_t{64} << 20;
  // When > 0, every record must have exactly this many fields.
  std::size_t expected_fields = 0;
  // When true and expected_fields == 0, every record must have as many fields as the first
  // (the header row, if one is read with read_header).
  bool require_consistent_fields = false;
  // Reject fields that are not valid UTF-8 (overlong forms, surrogates and code points above
  // U+10FFFF included).
  bool validate_utf8 = true;
  // Size of the block read from the stream at a time (at least 4 bytes are used).
  std::size_t buffer_bytes = std::size_t{64} << 10;
};

// Column names from a header row, looked up case-insensitively with ASCII white space trimmed
// (MONA exports vary in capitalisation: "PC Status" == " pc status ").
class CsvHeader {
 public:
  CsvHeader() = default;
  explicit CsvHeader(std::vector<std::string> names, std::string source = {})
      : names_(std::move(names)), source_(std::move(source)) {
    keys_.reserve(names_.size());
    for (const auto& n : names_) keys_.push_back(normalize(n));
  }

  // The names as written in the file.
  const std::vector<std::string>& names() const noexcept { return names_; }
  std::size_t size() const noexcept { return names_.size(); }

  // The 0-based index of the first column matching `name`, if any.
  std::optional<std::size_t> find(std::string_view name) const {
    const std::string key = normalize(name);
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] == key) return i;
    return std::nullopt;
  }

  bool contains(std::string_view name) const { return find(name).has_value(); }

  // The 0-based index of the column matching `name`; throws rlxf::Error naming the column and
  // listing the columns present when it is missing, or when two columns match.
  std::size_t index(std::string_view name) const {
    const std::string key = normalize(name);
    std::optional<std::size_t> found;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
      if (keys_[i] != key) continue;
      if (found)
        raise(rlxf::detail::concat("column '", name, "' is ambiguous: columns ", *found + 1, " ('",
                             names_[*found], "') and ", i + 1, " ('", names_[i], "') both match"));
      found = i;
    }
    if (!found) {
      std::string list;
      for (const auto& n : names_) list += (list.empty() ? "'" : ", '") + n + "'";
      raise(rlxf::detail::concat("missing column '", name, "' (the header has ", names_.size(),
                           " columns: ", list, ")"));
    }
    return *found;
  }

  // Lower-cased (ASCII) with leading and trailing ASCII white space removed.
  static std::string normalize(std::string_view s) {
    const auto space = [](char c) {
      return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
    };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    std::string out(s);
    for (char& c : out)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
  }

 private:
  [[noreturn]] void raise(std::string msg) const {
    Error e(std::move(msg));
    if (!source_.empty()) e.add_context(source_);
    throw e;
  }

  std::vector<std::string> names_;
  std::vector<std::string> keys_;
  std::string source_;
};

class CsvReader {
 public:
  // Reads from `in` (which must outlive the reader; open it in binary mode). `source_name`
  // (e.g. the file name) starts every error message.
  CsvReader(std::istream& in, std::string source_name, CsvOptions options = {})
      : in_(&in), source_(std::move(source_name)), opt_(options) {
    init();
  }

  // Opens the file at `path` (the reader owns the stream); the path names the source.
  static CsvReader open(const std::filesystem::path& path, CsvOptions options = {}) {
    auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!file->is_open())
      fail("cannot open CSV file ", path.string(), ": ", std::strerror(errno));
    return CsvReader(std::move(file), path.string(), options);
  }

  CsvReader(CsvReader&&) noexcept = default;
  CsvReader& operator=(CsvReader&&) noexcept = default;
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;
  ~CsvReader() = default;

  // Reads the next record into `fields` (whose strings are reused). Returns false, with `fields`
  // empty, at the end of input. Throws rlxf::Error on malformed input.
  bool next(std::vector<std::string>& fields) {
    if (failed_)
      fail_at(line_, column(), "cannot read on after a syntax or I/O error reported earlier");
    if (!started_) start();
    // Skip empty lines.
    for (;;) {
      if (!fill()) {
        fields.clear();
        return false;
      }
      const char c = buf_[pos_];
      if (c == '\n') {
        newline();
      } else if (c == '\r') {
        consume_crlf();
      } else {
        break;
      }
    }
    record_line_ = line_;
    record_bytes_ = 0;
    std::size_t n = 0;
    std::size_t extra_line = 0;  // where the first field beyond expected_ starts
    std::size_t extra_col = 0;
    for (;;) {
      const std::size_t fl = line_;
      const std::size_t fc = column();
      if (expected_ != 0 && n == expected_) {
        extra_line = fl;
        extra_col = fc;
      }
      if (n == opt_.max_fields)
        fail_at(fl, fc, "record has more than ", opt_.max_fields, " fields (CsvOptions::max_fields)");
      std::string& f = slot(fields, n++);
      const Term t = (fill() && buf_[pos_] == '"') ? read_quoted(f, fl, fc) : read_plain(f, fl, fc);
      if (t == Term::Delimiter) {
        ++pos_;
        continue;
      }
      break;
    }
    fields.resize(n);
    const std::size_t end_line = line_;
    const std::size_t end_col = column();
    if (fill()) {  // pos_ is at CR or LF
      if (buf_[pos_] == '\n')
        newline();
      else
        consume_crlf();
    }
    ++records_;
    // A wrong field count is reported after the whole record is consumed, so a caller that
    // catches the error may go on with the next record.
    if (expected_ == 0 && opt_.require_consistent_fields) {
      expected_ = n;
      expected_line_ = record_line_;
    } else if (expected_ != 0 && n > expected_) {
      count_error(extra_line, extra_col, "record starting at line ", record_line_, " has ", n,
                  " fields, more than ", expected_, expected_origin(),
                  "; the first extra field starts here");
    } else if (expected_ != 0 && n < expected_) {
      count_error(end_line, end_col, "record starting at line ", record_line_, " has ", n,
                  " fields, expected ", expected_, expected_origin());
    }
    return true;
  }

  // Reads the first record as column names (see CsvHeader). Throws when the input is empty.
  CsvHeader read_header() {
    std::vector<std::string> names;
    if (!next(names)) {
      Error e("input is empty: expected a header row");
      e.add_context(source_);
      throw e;
    }
    return CsvHeader(std::move(names), source_);
  }

  // The 1-based physical line where the record last returned by next() started.
  std::size_t line() const noexcept { return record_line_; }
  // How many records next() has read: a header read with read_header and records rejected for
  // their field count included.
  std::size_t records() const noexcept { return records_; }
  // The required field count: CsvOptions::expected_fields, or the first record's count when
  // require_consistent_fields is set (0 before the first record, or when nothing is required).
  std::size_t expected_fields() const noexcept { return expected_; }
  const std::string& source() const noexcept { return source_; }
  const CsvOptions& options() const noexcept { return opt_; }

 private:
  enum class Term { Delimiter, Newline, End };

  CsvReader(std::unique_ptr<std::istream> owned, std::string source_name, CsvOptions options)
      : in_(owned.get()), owned_(std::move(owned)), source_(std::move(source_name)),
        opt_(options) {
    init();
  }

  void init() {
    const auto d = static_cast<unsigned char>(opt_.delimiter);
    RLXF_REQUIRE(d != 0 && d < 0x80 && d != '"' && d != '\r' && d != '\n',
                 "CSV delimiter must be an ASCII character other than '\"', CR, LF and NUL");
    RLXF_REQUIRE(opt_.max_field_bytes > 0, "max_field_bytes must be positive");
    RLXF_REQUIRE(opt_.max_fields > 0, "max_fields must be positive");
    buf_.resize(opt_.buffer_bytes < 4 ? 4 : opt_.buffer_bytes);
    expected_ = opt_.expected_fields;
    plain_.fill(0);
    quoted_.fill(0);
    for (const unsigned char c : {static_cast<unsigned char>('"'), static_cast<unsigned char>('\n'),
                                  static_cast<unsigned char>(0)}) {
      plain_[c] = 1;
      quoted_[c] = 1;
    }
    plain_[static_cast<unsigned char>('\r')] = 1;
    plain_[d] = 1;
    if (opt_.validate_utf8)
      for (std::size_t c = 0x80; c < 0x100; ++c) plain_[c] = quoted_[c] = 1;
  }

  // Makes pos_ < end_ by reading the next block when needed; false at the end of input.
  bool fill() {
    if (pos_ < end_) return true;
    if (eof_) return false;
    base_ += end_;
    pos_ = end_ = 0;
    in_->read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    end_ = static_cast<std::size_t>(in_->gcount());
    if (end_ < buf_.size()) {
      if (in_->bad()) fail_at(line_, column(), "read error");
      eof_ = true;
    }
    return end_ > 0;
  }

  void start() {
    started_ = true;
    // The first block holds at least 3 bytes unless the input is shorter (buf_ has >= 4).
    if (fill() && end_ >= 3 && static_cast<unsigned char>(buf_[0]) == 0xEF &&
        static_cast<unsigned char>(buf_[1]) == 0xBB && static_cast<unsigned char>(buf_[2]) == 0xBF) {
      pos_ = 3;
      line_start_ = 3;
    }
  }

  std::size_t column() const noexcept { return base_ + pos_ - line_start_ + 1; }

  // Consumes the LF at pos_.
  void newline() {
    ++pos_;
    ++line_;
    line_start_ = base_ + pos_;
  }

  // Consumes the CR at pos_ and the LF that must follow it.
  void consume_crlf() {
    const std::size_t col = column();
    ++pos_;
    if (fill() && buf_[pos_] == '\n') {
      newline();
      return;
    }
    fail_at(line_, col, "carriage return (CR) not followed by line feed (LF) outside a quoted field");
  }

  static std::string& slot(std::vector<std::string>& fields, std::size_t n) {
    if (n < fields.size()) {
      fields[n].clear();
      return fields[n];
    }
    return fields.emplace_back();
  }

  void append(std::string& f, const char* p, std::size_t n, std::size_t fl, std::size_t fc) {
    if (n > opt_.max_record_bytes - record_bytes_)
      fail_at(fl, fc, "record is longer than ", opt_.max_record_bytes, " bytes (CsvOptions::max_record_bytes)");
    record_bytes_ += n;
    if (n > opt_.max_field_bytes - f.size())
      fail_at(fl, fc, "field is longer than ", opt_.max_field_bytes,
              " bytes (CsvOptions::max_field_bytes)");
    f.append(p, n);
  }

  // Appends the run of ordinary bytes at pos_ (as classified by `table`); true when the run
  // reached the end of the block.
  bool append_run(std::string& f, const std::array<unsigned char, 256>& table, std::size_t fl,
                  std::size_t fc) {
    const char* b = buf_.data();
    std::size_t p = pos_;
    while (p < end_ && table[static_cast<unsigned char>(b[p])] == 0) ++p;
    if (p > pos_) append(f, b + pos_, p - pos_, fl, fc);
    pos_ = p;
    return p == end_;
  }

  // Appends the byte at pos_ after checking it continues valid UTF-8.
  void append_utf8_byte(std::string& f, std::size_t fl, std::size_t fc) {
    const auto c = static_cast<unsigned char>(buf_[pos_]);
    if (u_rem_ == 0) {
      u_line_ = line_;
      u_col_ = column();
      if (c >= 0xC2 && c <= 0xDF) {
        set_utf8(1, 0x80, 0xBF);
      } else if (c == 0xE0) {
        set_utf8(2, 0xA0, 0xBF);
      } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        set_utf8(2, 0x80, 0xBF);
      } else if (c == 0xED) {
        set_utf8(2, 0x80, 0x9F);
      } else if (c == 0xF0) {
        set_utf8(3, 0x90, 0xBF);
      } else if (c >= 0xF1 && c <= 0xF3) {
        set_utf8(3, 0x80, 0xBF);
      } else if (c == 0xF4) {
        set_utf8(3, 0x80, 0x8F);
      } else {
        fail_at(u_line_, u_col_, "invalid UTF-8: byte ", hex(c), " cannot start a character");
      }
    } else {
      if (c < u_lo_ || c > u_hi_)
        fail_at(u_line_, u_col_, "invalid UTF-8: the sequence starting here is broken by byte ",
                hex(c), " at line ", line_, ", column ", column());
      --u_rem_;
      u_lo_ = 0x80;
      u_hi_ = 0xBF;
    }
    append(f, buf_.data() + pos_, 1, fl, fc);
    ++pos_;
  }

  void set_utf8(int rem, unsigned char lo, unsigned char hi) {
    u_rem_ = rem;
    u_lo_ = lo;
    u_hi_ = hi;
  }

  // Reads an unquoted field; leaves pos_ at its terminator.
  Term read_plain(std::string& f, std::size_t fl, std::size_t fc) {
    for (;;) {
      if (!fill()) {
        if (u_rem_ != 0)
          fail_at(u_line_, u_col_, "invalid UTF-8: sequence cut short by the end of input");
        return Term::End;
      }
      if (u_rem_ == 0 && append_run(f, plain_, fl, fc)) continue;
      const char c = buf_[pos_];
      if (u_rem_ != 0 || static_cast<unsigned char>(c) >= 0x80) {
        append_utf8_byte(f, fl, fc);
      } else if (c == opt_.delimiter) {
        return Term::Delimiter;
      } else if (c == '\n' || c == '\r') {
        return Term::Newline;
      } else if (c == '"') {
        fail_at(line_, column(),
                "quote character in an unquoted field (quote the whole field and double "
                "the quotes inside it)");
      } else {
        fail_at(line_, column(), "NUL byte");
      }
    }
  }

  // Reads a quoted field starting at the opening quote at pos_; leaves pos_ at its terminator.
  Term read_quoted(std::string& f, std::size_t fl, std::size_t fc) {
    ++pos_;
    for (;;) {
      if (!fill())
        fail_at(fl, fc, "quoted field starting here is not terminated (no closing quote before "
                        "the end of input)");
      if (u_rem_ == 0 && append_run(f, quoted_, fl, fc)) continue;
      const char c = buf_[pos_];
      if (u_rem_ != 0 || static_cast<unsigned char>(c) >= 0x80) {
        append_utf8_byte(f, fl, fc);
      } else if (c == '\n') {
        append(f, &c, 1, fl, fc);
        newline();
      } else if (c == '"') {
        ++pos_;
        if (!fill()) return Term::End;
        const char d = buf_[pos_];
        if (d == '"') {
          append(f, &d, 1, fl, fc);
          ++pos_;
        } else if (d == opt_.delimiter) {
          return Term::Delimiter;
        } else if (d == '\n' || d == '\r') {
          return Term::Newline;
        } else {
          fail_at(line_, column(), "unexpected ", describe(d),
                  " after the closing quote of the field starting at line ", fl, ", column ", fc,
                  " (expected the delimiter or a line end)");
        }
      } else {
        fail_at(line_, column(), "NUL byte");
      }
    }
  }

  std::string expected_origin() const {
    if (opt_.expected_fields != 0) return " (CsvOptions::expected_fields)";
    return rlxf::detail::concat(" (as many as the first record, at line ", expected_line_, ")");
  }

  static std::string hex(unsigned char c) {
    constexpr const char* digits = "0123456789ABCDEF";
    return std::string("0x") + digits[c >> 4] + digits[c & 0xF];
  }

  static std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) return std::string("character '") + c + "'";
    return "byte " + hex(u);
  }

  // Syntax and I/O errors: the reader cannot find the next record reliably, so it refuses to go on.
  template <class... Args>
  [[noreturn]] void fail_at(std::size_t line, std::size_t col, const Args&... args) {
    failed_ = true;
    Error e(rlxf::detail::concat("line ", line, ", column ", col, ": ", args...));
    e.add_context(source_);
    throw e;
  }

  // A wrong field count: the record was consumed, so reading may go on.
  template <class... Args>
  [[noreturn]] void count_error(std::size_t line, std::size_t col, const Args&... args) const {
    Error e(rlxf::detail::concat("line ", line, ", column ", col, ": ", args...));
    e.add_context(source_);
    throw e;
  }

  std::istream* in_;
  std::unique_ptr<std::istream> owned_;
  std::string source_;
  CsvOptions opt_;
  std::vector<char> buf_;
  std::size_t pos_ = 0;         // next byte in buf_
  std::size_t end_ = 0;         // bytes valid in buf_
  std::size_t base_ = 0;        // input offset of buf_[0]
  bool eof_ = false;
  bool started_ = false;
  bool failed_ = false;
  std::size_t line_ = 1;        // physical line at pos_
  std::size_t line_start_ = 0;  // input offset where line_ starts
  std::size_t record_line_ = 0;
  std::size_t record_bytes_ = 0;  // field bytes of the record being read
  std::size_t records_ = 0;
  std::size_t expected_ = 0;
  std::size_t expected_line_ = 0;
  std::array<unsigned char, 256> plain_{};   // non-zero: bytes that end a run in an unquoted field
  std::array<unsigned char, 256> quoted_{};  // non-zero: bytes that end a run in a quoted field
  int u_rem_ = 0;  // continuation bytes still due in the current UTF-8 sequence
  unsigned char u_lo_ = 0x80;
  unsigned char u_hi_ = 0xBF;
  std::size_t u_line_ = 0;  // where the current UTF-8 sequence started
  std::size_t u_col_ = 0;
};


// Writes one record as RFC 4180 text ending in CRLF, the form CsvReader reads back exactly:
// a field is quoted (quotes doubled) when it holds the delimiter, a quote, CR or LF, or starts
// with a UTF-8 byte order mark (which the reader would skip at the start of a file), and a
// record of one empty field is written as "" so that it is not a blank line.
template <class Range>
void write_csv_record(std::ostream& out, const Range& fields, char delimiter = ',') {
  const char specials[] = {delimiter, '"', '\r', '\n'};
  const std::string_view special(specials, sizeof specials);
  std::size_t count = 0;
  bool last_empty = false;
  for (const auto& item : fields) {
    const std::string_view field(item);
    if (count++ > 0)
      out.put(delimiter);
    last_empty = field.empty();
    if (field.find_first_of(special) == field.npos && !field.starts_with("\xEF\xBB\xBF")) {
      out << field;
      continue;
    }
    out.put('"');
    for (char c : field) {
      if (c == '"')
        out.put('"');
      out.put(c);
    }
    out.put('"');
  }
  if (count == 1 && last_empty)
    out << "\"\"";
  out << "\r\n";
}

}  // namespace rlxf::data
