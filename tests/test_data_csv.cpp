#include <doctest/doctest.h>

#include "error_of.hpp"

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/data/csv.hpp"

using rlxf::data::CsvHeader;
using rlxf::data::CsvOptions;
using rlxf::data::CsvReader;
using Records = std::vector<std::vector<std::string>>;

namespace {

// Every record of `text`, with the line where each started appended to `lines` if given.
Records read_all(std::string_view text, CsvOptions options = {},
                 std::vector<std::size_t>* lines = nullptr) {
  std::istringstream in{std::string(text)};
  CsvReader csv(in, "t.csv", options);
  Records out;
  std::vector<std::string> row;
  while (csv.next(row)) {
    out.push_back(row);
    if (lines) lines->push_back(csv.line());
  }
  CHECK(row.empty());
  CHECK(csv.records() == out.size());
  return out;
}

using rlxf::test::error_of;

// Reading all of `text` fails with a message that starts with the source name and contains
// every one of `parts`; the same holds with a tiny buffer (boundaries everywhere).
void check_rejects(std::string_view text, std::initializer_list<std::string_view> parts,
                   CsvOptions options = {}) {
  for (const std::size_t buffer : {std::size_t{64} << 10, std::size_t{4}, std::size_t{5}}) {
    options.buffer_bytes = buffer;
    const std::string msg = error_of([&] { (void)read_all(text, options); });
    INFO("input: ", std::string(text));
    INFO("buffer: ", buffer);
    INFO("message: ", msg);
    REQUIRE(msg.starts_with("t.csv: "));
    for (const std::string_view p : parts) CHECK(msg.find(p) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("csv: plain records, quoted commas, doubled quotes, empty fields") {
  const Records r = read_all("a,b,c\n1,\"x,y\",\"say \"\"hi\"\"\"\n,,\n\"\",x,\n");
  REQUIRE(r.size() == 4);
  CHECK(r[0] == std::vector<std::string>{"a", "b", "c"});
  CHECK(r[1] == std::vector<std::string>{"1", "x,y", "say \"hi\""});
  CHECK(r[2] == std::vector<std::string>{"", "", ""});
  CHECK(r[3] == std::vector<std::string>{"", "x", ""});
}

TEST_CASE("csv: line breaks inside quotes are data, line() is where the record started") {
  std::vector<std::size_t> lines;
  const Records r =
      read_all("id,text\r\n1,\"two\r\nlines\"\r\n2,\"lf\nonly\"\r\n3,\"lone\rcr\"\r\n4,end\r\n", {},
               &lines);
  REQUIRE(r.size() == 5);
  CHECK(r[1] == std::vector<std::string>{"1", "two\r\nlines"});
  CHECK(r[2] == std::vector<std::string>{"2", "lf\nonly"});
  CHECK(r[3] == std::vector<std::string>{"3", "lone\rcr"});
  CHECK(r[4] == std::vector<std::string>{"4", "end"});
  CHECK(lines == std::vector<std::size_t>{1, 2, 4, 6, 7});  // the lone CR is not a line break
}

TEST_CASE("csv: CRLF and LF files give equal records") {
  const std::string lf = "a,b\n\"q,1\",2\n3,\"\"\"\"\n";
  std::string crlf;
  for (const char c : lf) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const Records a = read_all(lf);
  const Records b = read_all(crlf);
  REQUIRE(a.size() == 3);
  CHECK(a == b);
  CHECK(a[2] == std::vector<std::string>{"3", "\""});
}

TEST_CASE("csv: BOM, missing final newline, trailing and blank lines") {
  CHECK(read_all("\xEF\xBB\xBFname,x\n1,2") ==
        Records{{"name", "x"}, {"1", "2"}});
  CHECK(read_all("\xEF\xBB\xBF") == Records{});
  CHECK(read_all("") == Records{});
  CHECK(read_all("a\n") == Records{{"a"}});
  CHECK(read_all("a\r\n\r\n\n") == Records{{"a"}});
  CHECK(read_all("a,\"b\"") == Records{{"a", "b"}});
  CHECK(read_all("a,") == Records{{"a", ""}});
  CHECK(read_all("\"\"") == Records{{""}});
  std::vector<std::size_t> lines;
  CHECK(read_all("a\n\nb\n", {}, &lines) == Records{{"a"}, {"b"}});
  CHECK(lines == std::vector<std::size_t>{1, 3});
  // Only a BOM at the very start is skipped.
  CHECK(read_all("x\n\xEF\xBB\xBFy\n") == Records{{"x"}, {"\xEF\xBB\xBFy"}});
  // White space is data.
  CHECK(read_all(" a , b \n") == Records{{" a ", " b "}});
}

TEST_CASE("csv: other delimiters") {
  CsvOptions o;
  o.delimiter = ';';
  CHECK(read_all("a;\"b;c\";d,e\n", o) == Records{{"a", "b;c", "d,e"}});
  o.delimiter = '\t';
  CHECK(read_all("a\t\"b\tc\"\n", o) == Records{{"a", "b\tc"}});
  o.delimiter = '"';
  const std::string msg = error_of([&] { (void)read_all("a", o); });
  CHECK(msg.find("delimiter") != std::string::npos);
}

TEST_CASE("csv: UTF-8 text passes through") {
  CHECK(read_all("caf\xC3\xA9,\"\xE2\x82\xAC 5\",\xF0\x9F\x98\x80\n") ==
        Records{{"caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80"}});
  CsvOptions o;
  o.validate_utf8 = false;
  CHECK(read_all("\xFF\xFE,x\n", o) == Records{{"\xFF\xFE", "x"}});
}

TEST_CASE("csv: every buffer size gives the same records") {
  const std::string text =
      "\xEF\xBB\xBF" "Country Name,Comments,n\r\n"
      "\"AFGHANISTAN,ISLAMIC REPUBLIC OF\",\"line one\r\n\"\"quoted\"\"\nline three\",1\r\n"
      "caf\xC3\xA9,\xE2\x82\xAC\xF0\x9F\x98\x80,\"\"\r\n"
      ",,\n"
      "last,\"x\"\"\",3";
  const Records expected = read_all(text);
  REQUIRE(expected.size() == 5);
  CHECK(expected[1] == std::vector<std::string>{"AFGHANISTAN,ISLAMIC REPUBLIC OF",
                                                "line one\r\n\"quoted\"\nline three", "1"});
  CHECK(expected[2] == std::vector<std::string>{"caf\xC3\xA9", "\xE2\x82\xAC\xF0\x9F\x98\x80", ""});
  CHECK(expected[3] == std::vector<std::string>{"", "", ""});
  CHECK(expected[4] == std::vector<std::string>{"last", "x\"", "3"});
  for (std::size_t b = 1; b <= 40; ++b) {
    CsvOptions o;
    o.buffer_bytes = b;
    std::vector<std::size_t> lines;
    INFO("buffer_bytes = ", b);
    CHECK(read_all(text, o, &lines) == expected);
    CHECK(lines == std::vector<std::size_t>{1, 2, 5, 6, 7});
  }
  // Error positions do not depend on the buffer either.
  for (std::size_t b = 1; b <= 12; ++b) {
    CsvOptions o;
    o.buffer_bytes = b;
    INFO("buffer_bytes = ", b);
    const std::string msg = error_of([&] { (void)read_all("ab,cd\nefg,h\"i\n", o); });
    CHECK(msg == "t.csv: line 2, column 6: quote character in an unquoted field (quote the "
                 "whole field and double the quotes inside it)");
  }
}

TEST_CASE("csv: fields straddling the default 64 KiB block, and 1 MB fields") {
  const std::size_t block = std::size_t{64} << 10;
  // A quoted field with a doubled quote and a CRLF right at the block boundary.
  std::string head(block - 7, 'h');
  std::string text = "a,\"" + head + "\"\"\r\nz\",b\n";
  Records r = read_all(text);
  REQUIRE(r.size() == 1);
  CHECK(r[0][1] == head + "\"\r\nz");
  CHECK(r[0][2] == "b");
  // A multi-byte character split by the boundary.
  text = std::string(block - 1, 'x') + "\xC3\xA9,y\n";
  r = read_all(text);
  REQUIRE(r.size() == 1);
  CHECK(r[0][0] == std::string(block - 1, 'x') + "\xC3\xA9");

  CHECK(CsvOptions{}.max_field_bytes == std::size_t{16} << 20);
  const std::string big((std::size_t{1} << 20) + 100, 'm');  // just over 1 MiB
  std::string mixed = big;
  mixed[12345] = ',';
  mixed[500000] = '"';
  mixed[900000] = '\n';
  r = read_all("id,plain,quoted\n1," + big + ",\"" +
               [&] {
                 std::string q;
                 for (const char c : mixed) q += c == '"' ? std::string("\"\"") : std::string(1, c);
                 return q;
               }() +
               "\"\n2,x,y\n");
  REQUIRE(r.size() == 3);
  CHECK(r[1][1] == big);
  CHECK(r[1][2] == mixed);
  CHECK(r[2] == std::vector<std::string>{"2", "x", "y"});
}

TEST_CASE("csv: field length cap") {
  CsvOptions o;
  o.max_field_bytes = 5;
  CHECK(read_all("12345,\"ab\"\"cd\"\n", o) == Records{{"12345", "ab\"cd"}});
  check_rejects("ok\n12345,123456\n",
                {"line 2, column 7:", "field is longer than 5 bytes", "max_field_bytes"}, o);
  check_rejects("x,\"12\n3\"\"45\"\n", {"line 1, column 3:", "longer than 5 bytes"}, o);
  o.max_field_bytes = 3;
  check_rejects("x,\xC3\xA9\xC3\xA9\n", {"line 1, column 3:", "longer than 3 bytes"}, o);
}

TEST_CASE("csv: malformed input is reported with source, line and column") {
  check_rejects("a,b\nc,\"unterminated,\nmore\n",
                {"line 2, column 3:", "not terminated", "end of input"});
  check_rejects("\"", {"line 1, column 1:", "not terminated"});
  check_rejects("a,b\nc,d\"e\n", {"line 2, column 4:", "quote character in an unquoted field"});
  check_rejects("a,\"b\"c,d\n",
                {"line 1, column 6:", "unexpected character 'c' after the closing quote",
                 "starting at line 1, column 3"});
  check_rejects("a,\"b\" ,d\n", {"line 1, column 6:", "character ' '"});
  check_rejects("x\n\"a\nb\"\"\"x\n", {"line 3, column 5:", "after the closing quote",
                                        "starting at line 2, column 1"});
  check_rejects(std::string_view("ab\nc\0d\n", 7), {"line 2, column 2:", "NUL byte"});
  check_rejects(std::string_view("\"a\0\"\n", 5), {"line 1, column 3:", "NUL byte"});
  check_rejects("a\rb\n", {"line 1, column 2:", "carriage return"});
  check_rejects("a\n\r\n\rb", {"line 3, column 1:", "carriage return"});
}

TEST_CASE("csv: invalid UTF-8 is reported at the byte column where the sequence starts") {
  // A stray continuation byte.
  check_rejects("ok\nab,c\x80\n", {"line 2, column 5:", "invalid UTF-8", "byte 0x80"});
  // A lead byte followed by ASCII.
  check_rejects("ab\xC3(\n", {"line 1, column 3:", "invalid UTF-8", "byte 0x28"});
  // A sequence cut by the delimiter, by a closing quote, by the end of input.
  check_rejects("\xE2\x82,x\n", {"line 1, column 1:", "byte 0x2C"});
  check_rejects("x,\"\xE2\x82\"\n", {"line 1, column 4:", "byte 0x22"});
  check_rejects("x,\xF0\x9F", {"line 1, column 3:", "end of input"});
  // Overlong, surrogate and beyond U+10FFFF.
  check_rejects("\xC0\xAF\n", {"line 1, column 1:", "0xC0"});
  check_rejects("\xE0\x80\xAF\n", {"line 1, column 1:", "invalid UTF-8"});
  check_rejects("a\xED\xA0\x80\n", {"line 1, column 2:", "invalid UTF-8"});
  check_rejects("\"\n\xF4\x90\x80\x80\"\n", {"line 2, column 1:", "invalid UTF-8"});
  // After a BOM, columns on line 1 are counted after it.
  check_rejects("\xEF\xBB\xBF" "ab\xFF\n", {"line 1, column 3:", "0xFF"});
}

TEST_CASE("csv: field counts") {
  CsvOptions o;
  o.require_consistent_fields = true;
  CHECK(read_all("a,b\n1,2\n\"x\",\"\"\n", o).size() == 3);
  check_rejects("a,b,c\n1,2,3\n4,5\n6,7,8\n",
                {"line 3, column 4:", "record starting at line 3 has 2 fields, expected 3",
                 "first record, at line 1"},
                o);
  check_rejects("a,b\n\"1\n\",2,3\n",
                {"line 3, column 5:", "record starting at line 2 has 3 fields, more than 2",
                 "first extra field starts here"},
                o);
  o = {};
  o.expected_fields = 2;
  CHECK(read_all("a,b\n,\n", o) == Records{{"a", "b"}, {"", ""}});
  check_rejects("a,b\nc\n", {"line 2, column 2:", "has 1 fields, expected 2", "expected_fields"},
                o);
  check_rejects("a\n", {"line 1, column 2:", "expected 2"}, o);
  // A wrong count leaves the reader usable: a caller can skip and count bad rows.
  {
    std::istringstream in("a,b\n1\n2,3\n4,5,\"6\n\"\n7,8");
    CsvReader csv(in, "r.csv", o);
    std::vector<std::string> row;
    Records good;
    std::vector<std::size_t> bad_lines;
    for (;;) {
      try {
        if (!csv.next(row)) break;
        good.push_back(row);
      } catch (const rlxf::Error& e) {
        bad_lines.push_back(csv.line());
        CHECK(std::string(e.what()).starts_with("r.csv: line "));
      }
    }
    CHECK(good == Records{{"a", "b"}, {"2", "3"}, {"7", "8"}});
    CHECK(bad_lines == std::vector<std::size_t>{2, 4});
  }
  // A syntax error is final.
  {
    std::istringstream in("a,b\"c\nd,e\n");
    CsvReader csv(in, "s.csv");
    std::vector<std::string> row;
    CHECK(error_of([&] { (void)csv.next(row); }).find("quote character") != std::string::npos);
    CHECK(error_of([&] { (void)csv.next(row); }).find("cannot read on") != std::string::npos);
  }
  // Without a requirement, ragged rows are fine.
  CHECK(read_all("a,b\nc\nd,e,f\n") == Records{{"a", "b"}, {"c"}, {"d", "e", "f"}});
}

TEST_CASE("csv: header lookup is case-insensitive and trimmed") {
  const CsvHeader h({"Arrangement Number", " Country Name ", "PC Status", "Comments"}, "m.csv");
  CHECK(h.size() == 4);
  CHECK(h.index("arrangement number") == 0);
  CHECK(h.index("COUNTRY NAME") == 1);
  CHECK(h.index("  pc status\t") == 2);
  CHECK(h.find("Comment") == std::nullopt);
  CHECK(h.contains("comments"));
  const std::string msg = error_of([&] { (void)h.index("Review Type"); });
  CHECK(msg.starts_with("m.csv: missing column 'Review Type'"));
  CHECK(msg.find("'PC Status'") != std::string::npos);
  const CsvHeader dup({"a", "A "});
  CHECK(error_of([&] { (void)dup.index("a"); }) ==
        "column 'a' is ambiguous: columns 1 ('a') and 2 ('A ') both match");

  std::istringstream empty("");
  CsvReader csv(empty, "e.csv");
  CHECK(error_of([&] { (void)csv.read_header(); }) == "e.csv: input is empty: expected a header row");
}

TEST_CASE("csv: a MONA-like export with a header row") {
  const std::string text =
      "\xEF\xBB\xBF"
      "Arrangement Number,Country Name,Country Code,Arrangement Type,Key Code,Economic Descriptor,"
      "Description,PC Status,Comments\r\n"
      "570,\"AFGHANISTAN,ISLAMIC REPUBLIC OF\",512,ECF,SB,"
      "\"1.1. Revenue measures, excluding trade policy\","
      "\"Submit to parliament legislation to eliminate \"\"nuisance\"\" taxes\",Met,"
      "\"Completed in March.\r\nSee the staff report, para. 12.\"\r\n"
      "601,KENYA,664,ECF-EFF,PA,\"5.2. Privatization, public enterprise reform\",Privatize X,"
      "Not Met,\r\n";
  std::istringstream in(text);
  CsvOptions o;
  o.require_consistent_fields = true;
  o.buffer_bytes = 16;
  CsvReader csv(in, "mona.csv", o);
  const CsvHeader header = csv.read_header();
  REQUIRE(header.size() == 9);
  CHECK(header.names()[0] == "Arrangement Number");  // BOM stripped
  const std::size_t country = header.index("country name");
  const std::size_t status = header.index("PC STATUS");
  const std::size_t comments = header.index("Comments");
  std::vector<std::string> row;
  REQUIRE(csv.next(row));
  CHECK(csv.line() == 2);
  REQUIRE(row.size() == 9);
  CHECK(row[country] == "AFGHANISTAN,ISLAMIC REPUBLIC OF");
  CHECK(row[5] == "1.1. Revenue measures, excluding trade policy");
  CHECK(row[6] == "Submit to parliament legislation to eliminate \"nuisance\" taxes");
  CHECK(row[status] == "Met");
  CHECK(row[comments] == "Completed in March.\r\nSee the staff report, para. 12.");
  REQUIRE(csv.next(row));
  CHECK(csv.line() == 4);
  CHECK(row[country] == "KENYA");
  CHECK(row[status] == "Not Met");
  CHECK(row[comments].empty());
  CHECK_FALSE(csv.next(row));
  CHECK(csv.records() == 3);
  CHECK(csv.expected_fields() == 9);
}

TEST_CASE("csv: open a file path") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "rlxf_test_data_csv";
  std::filesystem::create_directories(dir);
  const std::filesystem::path file = dir / "small.csv";
  {
    std::ofstream out(file, std::ios::binary);
    out << "a,b\r\n\"1\",2";
  }
  CsvReader csv = CsvReader::open(file);
  std::vector<std::string> row;
  REQUIRE(csv.next(row));
  CHECK(row == std::vector<std::string>{"a", "b"});
  REQUIRE(csv.next(row));
  CHECK(row == std::vector<std::string>{"1", "2"});
  CHECK_FALSE(csv.next(row));
  CHECK(csv.source() == file.string());

  const std::string msg = error_of([&] { (void)CsvReader::open(dir / "missing.csv"); });
  CHECK(msg.find("cannot open CSV file") != std::string::npos);
  CHECK(msg.find("missing.csv") != std::string::npos);
  std::filesystem::remove_all(dir);
}
