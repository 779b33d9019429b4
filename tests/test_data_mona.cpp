#include <doctest/doctest.h>

#include "error_of.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/data/csv.hpp"
#include "rlxf/data/mona.hpp"
#include "rlxf/data/mona_record.hpp"
#include "rlxf/data/split.hpp"

using namespace rlxf::data;
using rlxf::test::error_of;

namespace {

// The real export's header row, as written by the IMF (30 columns).
constexpr std::string_view kHeader =
    "Arrangement Number,Country Name,Country Code,Arrangement Type,Approval date,Approval Year,"
    "Initial End Date,Initial End Year,Revised End Date,Duration Of Annual Arrangement From,"
    "Duration Of Annual Arrangement To,Board Action Date,Program Type,Review Type,Review Status,"
    "Key Code,Economic Code,Economic Descriptor,Description,Description Code,Test Date,PC Status,"
    "Comments,Sort,EsOrder,NewTestDate,Added At,Assessed At,Unique ID,Parent ID\r\n";

// A small export with the real quoting: a country with a comma, a descriptor with commas, a
// multi-line quoted comment, doubled quotes, CRLF line ends.
const std::string kExport =
    std::string(kHeader) +
    "570,\"AFGHANISTAN,ISLAMIC REPUBLIC OF\",512,ECF,2011-11-14,2011,2014-11-13,2014,N/A,N/A,N/A,"
    "2011-11-14,P1,R0,E,SB,20.1,\"1.1. Revenue measures, excluding trade policy\","
    "\"Submit to parliament legislation to eliminate nuisance taxes\",1,End-March 2012,Met,"
    "\"Completed on time.\r\nSecond line, with a comma.\",1,1,2012-03-31,R0,R1,AFG-570-1,\r\n"
    "601,ZAMBIA,754,ECF,2008-06-04,2008,2011-06-03,2011,2011-12-31,N/A,N/A,2008-06-04,P1,R1,L,PA,"
    "24.2,\"1.6. Expenditure auditing, accounting, and financial controls\","
    "\"Adopt the \"\"cash budget\"\" rule for all ministries\",7,End-June 2008,Not Met,"
    "\"The \"\"rule\"\" slipped\",2,3,2008-06-30,R0,R1,ZMB-601-7,ZMB-601-1\r\n"
    "612,GHANA,652,PRGF,2009-07-15,2009,2012-07-14,2012,N/A,N/A,N/A,2009-07-15,P1,R2,E,PC,21.0,"
    "5.2. Privatization,Privatize the state bank,3,End-Dec 2009,,pending,0,2,2009-12-31,R1,R2,"
    "GHA-612-3,\r\n";

// A row with every column of `kHeader` filled in, status `status`.
MonaRecord sample_record(std::string status, std::string arrangement = "700") {
  MonaRecord r;
  for (const auto& c : mona_columns) r.*(c.field) = std::string(c.name) + " value";
  r.arrangement_number = std::move(arrangement);
  r.country_name = "KENYA";
  r.arrangement_type = "ECF-EFF";
  r.economic_descriptor = "1.1. Revenue measures, excluding trade policy";
  r.description = "Submit a budget consistent with the program";
  r.pc_status = std::move(status);
  return r;
}

std::vector<std::string> fields_of(const MonaRecord& r) {
  std::vector<std::string> f;
  for (const auto& c : mona_columns) f.push_back(r.*(c.field));
  return f;
}

// The CSV text of the header and `rows`, written with write_csv_record.
std::string export_of(const std::vector<MonaRecord>& rows) {
  std::ostringstream out;
  std::vector<std::string> names;
  for (const auto& c : mona_columns) names.emplace_back(c.name);
  write_csv_record(out, names);
  for (const auto& r : rows) write_csv_record(out, fields_of(r));
  return out.str();
}

MonaTable load_text(const std::string& text, const MonaLoadOptions& options = {}) {
  std::istringstream in(text);
  return load_mona(in, "m.csv", options);
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

TEST_CASE("mona: the real export's header and quoting load field by field") {
  const MonaTable t = load_text(kExport);
  REQUIRE(t.size() == 3);
  CHECK(t.lines == std::vector<std::size_t>{2, 4, 5});  // row 1's comment spans two lines
  const MonaRecord& a = t.records[0];
  CHECK(a.arrangement_number == "570");
  CHECK(a.country_name == "AFGHANISTAN,ISLAMIC REPUBLIC OF");
  CHECK(a.country_code == "512");
  CHECK(a.arrangement_type == "ECF");
  CHECK(a.revised_end_date == "N/A");
  CHECK(a.key_code == "SB");
  CHECK(a.economic_code == "20.1");
  CHECK(a.economic_descriptor == "1.1. Revenue measures, excluding trade policy");
  CHECK(a.description == "Submit to parliament legislation to eliminate nuisance taxes");
  CHECK(a.test_date == "End-March 2012");
  CHECK(a.pc_status == "Met");
  CHECK(a.comments == "Completed on time.\r\nSecond line, with a comma.");
  CHECK(a.unique_id == "AFG-570-1");
  CHECK(a.parent_id.empty());
  const MonaRecord& b = t.records[1];
  CHECK(b.country_name == "ZAMBIA");
  CHECK(b.economic_descriptor == "1.6. Expenditure auditing, accounting, and financial controls");
  CHECK(b.description == "Adopt the \"cash budget\" rule for all ministries");
  CHECK(b.comments == "The \"rule\" slipped");
  CHECK(b.parent_id == "ZMB-601-1");
  CHECK(t.records[2].pc_status.empty());
  CHECK(t.labels == std::vector<Label>{Label::met, Label::non_met, Label::none});
  CHECK(t.labelled() == std::vector<std::size_t>{0, 1});
  CHECK(t.column(&MonaRecord::arrangement_number) == std::vector<std::string>{"570", "601", "612"});

  const MonaLoadReport& r = t.report;
  CHECK(r.source == "m.csv");
  CHECK(r.rows_read == 3);
  CHECK(r.rows_kept == 3);
  CHECK(r.rows_skipped == 0);
  CHECK(r.met == 1);
  CHECK(r.non_met == 1);
  CHECK(r.unlabelled == 1);
  CHECK(r.statuses == std::map<std::string, std::size_t>{{"", 1}, {"met", 1}, {"not met", 1}});
  CHECK(r.absent_columns.empty());
  CHECK(r.messages.empty());
  CHECK(r.summary() == "m.csv: 3 rows read, 3 kept (1 MET, 1 Non-MET, 1 unlabelled), 0 skipped "
                       "(0 field count, 0 empty required field, 0 status)");
}

TEST_CASE("mona: LF line ends and a final row without a line end give the same table") {
  std::string lf;
  for (std::size_t i = 0; i < kExport.size(); ++i)
    if (!(kExport[i] == '\r' && i + 1 < kExport.size() && kExport[i + 1] == '\n')) lf += kExport[i];
  lf.pop_back();  // no final line end
  const MonaTable a = load_text(kExport), b = load_text(lf);
  REQUIRE(b.size() == a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    for (const auto& c : mona_columns)
      if (c.field != &MonaRecord::comments) CHECK(a.records[i].*(c.field) == b.records[i].*(c.field));
  CHECK(b.records[0].comments == "Completed on time.\nSecond line, with a comma.");
  CHECK(a.labels == b.labels);
}

TEST_CASE("mona: statuses map to labels as the paper defines them") {
  const LabelMapping paper;
  CHECK(paper.label_of("Met") == Label::met);
  CHECK(paper.label_of(" met ") == Label::met);
  CHECK(paper.label_of("PARTIALLY MET") == Label::met);
  CHECK(paper.label_of("Partially \t  Met") == Label::met);
  CHECK(paper.label_of("pm") == Label::met);
  CHECK(paper.label_of("Not Met") == Label::non_met);
  CHECK(paper.label_of("NM") == Label::non_met);
  CHECK(paper.label_of("Waived") == Label::non_met);
  CHECK(paper.label_of("Delayed") == Label::non_met);
  CHECK(paper.label_of("DL") == Label::non_met);
  CHECK(paper.label_of("Met with delay") == Label::non_met);
  CHECK(paper.label_of("Reprogrammed") == Label::non_met);
  CHECK(paper.label_of("") == Label::none);
  CHECK(paper.label_of("   ") == Label::none);
  CHECK(static_cast<int>(Label::met) == 1);  // MET is the positive class
  CHECK(static_cast<int>(Label::non_met) == 0);

  // Through the loader.
  const std::vector<std::string> statuses = {" met ",   "PARTIALLY MET", "Not Met",
                                             "Waived",  "Delayed",       "Met with delay",
                                             ""};
  std::vector<MonaRecord> rows;
  for (const auto& s : statuses) rows.push_back(sample_record(s));
  const MonaTable t = load_text(export_of(rows));
  CHECK(t.labels == std::vector<Label>{Label::met, Label::met, Label::non_met, Label::non_met,
                                       Label::non_met, Label::non_met, Label::none});
  CHECK(t.records[0].pc_status == " met ");  // kept as written
  CHECK(t.report.met == 2);
  CHECK(t.report.non_met == 4);
  CHECK(t.report.unlabelled == 1);
  CHECK(t.report.statuses.at("met with delay") == 1);
  CHECK(t.report.statuses.at("met") == 1);

  SUBCASE("a custom mapping moves Met with delay to MET") {
    MonaLoadOptions o;
    o.labels.met.push_back("met  WITH delay");
    const MonaTable u = load_text(export_of(rows), o);
    CHECK(u.labels[5] == Label::met);
    CHECK(u.report.met == 3);
    CHECK(u.report.non_met == 3);
  }
  SUBCASE("an explicit non_met list rejects statuses in no list") {
    MonaLoadOptions o;
    o.labels.non_met = {"Not Met", "Waived", "Delayed", "Met with delay"};
    CHECK(load_text(export_of(rows), o).labels == t.labels);
    rows.push_back(sample_record("Met wth delay"));
    const std::string msg = error_of([&] { (void)load_text(export_of(rows), o); });
    CHECK(msg.starts_with("m.csv: line 9, column 'PC Status': status 'Met wth delay'"));
    CHECK(contains(msg, "'met with delay'"));
    CHECK(o.labels.label_of("Met wth delay") == std::nullopt);
    o.bad_rows = BadRows::skip;
    const MonaTable u = load_text(export_of(rows), o);
    CHECK(u.size() == 7);
    CHECK(u.report.skipped_status == 1);
    REQUIRE(u.report.messages.size() == 1);
    CHECK(u.report.messages[0].starts_with("m.csv: line 9, column 'PC Status'"));
  }
  SUBCASE("an empty status is a bad row when \"\" is not unlabelled") {
    MonaLoadOptions o;
    o.labels.unlabelled.clear();
    CHECK(contains(error_of([&] { (void)load_text(export_of(rows), o); }),
                   "line 8, column 'PC Status': status ''"));
  }
  SUBCASE("a status in two lists is an error") {
    MonaLoadOptions o;
    o.labels.non_met = {"Waived", " MET "};
    const std::string msg = error_of([&] { (void)load_text(export_of(rows), o); });
    CHECK(contains(msg, "label mapping: status ' MET ' is in both met and non_met"));
    CHECK(contains(error_of([&] { (void)o.labels.label_of("Waived"); }), "in both"));
  }
}

TEST_CASE("mona: columns in another order and capitalisation, extra and absent columns") {
  const std::string text =
      "pc status ,EXTRA,description,economic DESCRIPTOR,ARRANGEMENT TYPE,Country name,"
      "arrangement number,comments\n"
      "Partially Met,x,Raise the VAT rate,1.1. Revenue,SBA,\"KOREA, REPUBLIC OF\",501,fine\n"
      "Waived,y,Cut arrears,1.2. Expenditure,EFF,EGYPT,502,\n";
  const MonaTable t = load_text(text);
  REQUIRE(t.size() == 2);
  CHECK(t.records[0].pc_status == "Partially Met");
  CHECK(t.records[0].description == "Raise the VAT rate");
  CHECK(t.records[0].economic_descriptor == "1.1. Revenue");
  CHECK(t.records[0].arrangement_type == "SBA");
  CHECK(t.records[0].country_name == "KOREA, REPUBLIC OF");
  CHECK(t.records[0].arrangement_number == "501");
  CHECK(t.records[0].comments == "fine");
  CHECK(t.records[0].country_code.empty());  // absent column
  CHECK(t.records[1].country_name == "EGYPT");
  CHECK(t.labels == std::vector<Label>{Label::met, Label::non_met});
  CHECK(t.report.absent_columns.size() == 30 - 7);
  CHECK(std::count(t.report.absent_columns.begin(), t.report.absent_columns.end(), "Unique ID") == 1);
}

TEST_CASE("mona: a missing required column names the file and the column, lists the columns") {
  const std::string text = "Arrangement Number,Country Name,Arrangement Type,Description,Comments\n"
                           "1,A,ECF,d,c\n";
  const std::string msg = error_of([&] { (void)load_text(text); });
  CHECK(msg.starts_with("m.csv: not a MONA export: missing required columns 'Economic "
                        "Descriptor', 'PC Status'"));
  CHECK(contains(msg, "the header on line 1 has 5 columns: 'Arrangement Number', 'Country Name', "
                      "'Arrangement Type', 'Description', 'Comments'"));
  // A file path names the file.
  const auto dir = std::filesystem::temp_directory_path() / "rlxf_test_data_mona";
  std::filesystem::create_directories(dir);
  const auto file = dir / "broken.csv";
  {
    std::ofstream out(file, std::ios::binary);
    out << "Country Name,Arrangement Type,Economic Descriptor,Description,PC Status\n";
  }
  const std::string fmsg = error_of([&] { (void)load_mona(file); });
  CHECK(fmsg.starts_with(file.string() + ": not a MONA export: missing required column 'Arrangement Number'"));
  // And a good file loads from its path.
  {
    std::ofstream out(file, std::ios::binary);
    out << kExport;
  }
  const MonaTable t = load_mona(file);
  CHECK(t.size() == 3);
  CHECK(t.report.source == file.string());
  std::filesystem::remove_all(dir);
  CHECK(contains(error_of([&] { (void)load_mona(dir / "absent.csv"); }), "cannot open CSV file"));
  // Empty input; duplicate column.
  CHECK(contains(error_of([&] { (void)load_text(""); }), "m.csv: input is empty"));
  CHECK(contains(error_of([&] {
                   (void)load_text("Arrangement Number,Country Name,Arrangement Type,Economic "
                                   "Descriptor,Description,PC Status,pc status\n");
                 }),
                 "column 'PC Status' is ambiguous"));
}

TEST_CASE("mona: bad rows fail naming the line, or are skipped and counted") {
  std::string text = export_of({sample_record("Met", "1")});
  text += "2,KENYA,1,ECF\r\n";  // line 3: ragged
  {
    std::ostringstream out;
    write_csv_record(out, fields_of(sample_record("Waived", "3")));  // line 4: good
    MonaRecord r = sample_record("Met", "4");
    r.description = " \t ";
    write_csv_record(out, fields_of(r));  // line 5: blank description
    r = sample_record("Met", "5");
    r.country_name.clear();
    write_csv_record(out, fields_of(r));  // line 6: empty country
    std::vector<std::string> f = fields_of(sample_record("Met", "6"));
    f.emplace_back("extra");
    write_csv_record(out, f);  // line 7: one field too many
    r = sample_record("Not Met", "7");
    r.comments = "two\nlines";
    write_csv_record(out, fields_of(r));  // lines 8-9: good
    text += out.str();
  }
  const std::string msg = error_of([&] { (void)load_text(text); });
  CHECK(msg == "m.csv: line 3: record has 4 fields but the header has 30 columns; columns 5 "
               "('Approval date') onwards are missing");

  MonaLoadOptions o;
  o.bad_rows = BadRows::skip;
  const MonaTable t = load_text(text, o);
  CHECK(t.column(&MonaRecord::arrangement_number) == std::vector<std::string>{"1", "3", "7"});
  CHECK(t.lines == std::vector<std::size_t>{2, 4, 8});
  CHECK(t.labels == std::vector<Label>{Label::met, Label::non_met, Label::non_met});
  const MonaLoadReport& r = t.report;
  CHECK(r.rows_read == 7);
  CHECK(r.rows_kept == 3);
  CHECK(r.rows_skipped == 4);
  CHECK(r.skipped_field_count == 2);
  CHECK(r.skipped_empty_required == 2);
  CHECK(r.skipped_status == 0);
  REQUIRE(r.messages.size() == 4);
  CHECK(r.messages[0] == msg);
  CHECK(r.messages[1] == "m.csv: line 5, column 'Description': empty Description (a required field)");
  CHECK(r.messages[2] ==
        "m.csv: line 6, column 'Country Name': empty Country Name (a required field)");
  CHECK(r.messages[3] ==
        "m.csv: line 7: record has 31 fields but the header has 30 columns; 1 field beyond the "
        "last column");

  o.max_reported = 2;
  const MonaTable u = load_text(text, o);
  CHECK(u.report.rows_skipped == 4);
  CHECK(u.report.messages.size() == 2);

  // The fail mode's error for an empty required field names the line and the column.
  const std::string bad = export_of({sample_record("Met"), sample_record("Met")});
  std::string no_type = bad;
  no_type.replace(no_type.rfind("ECF-EFF"), 7, "");
  CHECK(error_of([&] { (void)load_text(no_type); }) ==
        "m.csv: line 3, column 'Arrangement Type': empty Arrangement Type (a required field)");
}

TEST_CASE("mona: CSV syntax errors throw even when bad rows are skipped") {
  MonaLoadOptions o;
  o.bad_rows = BadRows::skip;
  const std::string good = export_of({sample_record("Met")});
  CHECK(contains(error_of([&] { (void)load_text(good + "1,\"unterminated\n", o); }),
                 "m.csv: line 3, column 3: quoted field starting here is not terminated"));
  CHECK(contains(error_of([&] { (void)load_text(good + "1,ab\xFF\n", o); }), "invalid UTF-8"));
  CHECK(contains(error_of([&] { (void)load_text(good + std::string("1,a\0b\n", 6), o); }),
                 "NUL byte"));
  CHECK(contains(error_of([&] { (void)load_text(good + "1,a\"b\n", o); }), "quote character"));
}

TEST_CASE("mona: the paper's prompt, exactly, and its inverse") {
  const ConditionContext c{"ZAMBIA", "ECF", "1.1. Revenue measures, excluding trade policy"};
  CHECK(policy_prompt(c) ==
        "Given the economic indicators and historical performance of ZAMBIA, what would be an "
        "appropriate policy proposal under the ECF for achieving 1.1. Revenue measures, excluding "
        "trade policy? Describe the proposed condition.");
  CHECK(parse_policy_prompt(policy_prompt(c)) == c);

  for (const ConditionContext& d : {
           ConditionContext{"AFGHANISTAN,ISLAMIC REPUBLIC OF", "ECF-EFF",
                            "1.6. Expenditure auditing, accounting, and financial controls"},
           ConditionContext{"CONGO, DEMOCRATIC REPUBLIC OF THE", "SBA-ESF", "Fiscal? Monetary?"},
           ConditionContext{"KOREA, REPUBLIC OF", "SBA", "for achieving growth"},
           ConditionContext{"", "", ""},
       }) {
    INFO(policy_prompt(d));
    CHECK(parse_policy_prompt(policy_prompt(d)) == d);
  }
  // White space around the prompt is ignored; anything else off the template is rejected.
  CHECK(parse_policy_prompt("\n  " + policy_prompt(c) + " \n") == c);
  CHECK(parse_policy_prompt("") == std::nullopt);
  CHECK(parse_policy_prompt("Describe the proposed condition.") == std::nullopt);
  std::string p = policy_prompt(c);
  CHECK(parse_policy_prompt(p.substr(0, p.size() - 1)) == std::nullopt);
  CHECK(parse_policy_prompt("Hello. " + p) == std::nullopt);
  std::string q = p;
  q.replace(q.find(" for achieving "), 15, " to achieve ");
  CHECK(parse_policy_prompt(q) == std::nullopt);

  // From a record, white space collapsed.
  MonaRecord r = sample_record("Met");
  r.country_name = "  AFGHANISTAN,ISLAMIC  REPUBLIC OF ";
  CHECK(condition_context(r) == ConditionContext{"AFGHANISTAN,ISLAMIC REPUBLIC OF", "ECF-EFF",
                                                 "1.1. Revenue measures, excluding trade policy"});
}

TEST_CASE("mona: the classifier's text joins the four fields with ' | '") {
  const ConditionContext c{"ZAMBIA", "ECF", "1.1. Revenue measures, excluding trade policy"};
  CHECK(classifier_text(c, "  Submit to parliament\r\n legislation\t\tto eliminate  nuisance taxes\n") ==
        "ZAMBIA | ECF | 1.1. Revenue measures, excluding trade policy | Submit to parliament "
        "legislation to eliminate nuisance taxes");
  CHECK(classifier_text(c, "") == "ZAMBIA | ECF | 1.1. Revenue measures, excluding trade policy | ");
  MonaRecord r = sample_record("Met");
  CHECK(classifier_text(r) == "KENYA | ECF-EFF | 1.1. Revenue measures, excluding trade policy | "
                              "Submit a budget consistent with the program");
  // The reward model rebuilds the same input from (prompt, response).
  const auto parsed = parse_policy_prompt(policy_prompt(condition_context(r)));
  REQUIRE(parsed);
  CHECK(classifier_text(*parsed, r.description) == classifier_text(r));
  CHECK(collapse_space("  a \t b\n\nc  ") == "a b c");
  CHECK(normalize_status("  Partially\tMET ") == "partially met");
}

TEST_CASE("write_csv_record: records read back identically through CsvReader") {
  const std::vector<std::vector<std::string>> records = {
      {"plain", "with,comma", "say \"hi\"", "cr\rlf\nboth\r\n", ""},
      {""},
      {"", ""},
      {"\"", ",", "\r\n"},
      {"tail space ", " lead", "UTF-8: \xC3\xA9\xE2\x82\xAC"},
  };
  std::ostringstream out;
  for (const auto& r : records) write_csv_record(out, r);
  CHECK(out.str().substr(out.str().find("\r\n\"\"\r\n"), 6) == "\r\n\"\"\r\n");  // lone empty field
  for (const std::size_t buffer : {std::size_t{4}, std::size_t{7}, std::size_t{1} << 16}) {
    std::istringstream in(out.str());
    CsvReader csv(in, "w.csv", {.buffer_bytes = buffer});
    std::vector<std::vector<std::string>> back;
    std::vector<std::string> row;
    while (csv.next(row)) back.push_back(row);
    CHECK(back == records);
  }
  // A first field that starts with a byte order mark is quoted: the reader skips a BOM at the
  // very start of its input, so unquoted it would not read back (found by fuzz_csv).
  const std::vector<std::vector<std::string>> bom = {{"\xEF\xBB\xBFx", "y"}, {"\xEF\xBB\xBF"}};
  std::ostringstream w;
  for (const auto& r : bom) write_csv_record(w, r);
  CHECK(w.str() == "\"\xEF\xBB\xBFx\",y\r\n\"\xEF\xBB\xBF\"\r\n");
  std::istringstream in(w.str());
  CsvReader csv(in, "bom.csv");
  std::vector<std::vector<std::string>> back;
  std::vector<std::string> row;
  while (csv.next(row)) back.push_back(row);
  CHECK(back == bom);
}

TEST_CASE("split: random_split sizes, disjointness, coverage, determinism") {
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{10}, std::size_t{101},
                              std::size_t{1000}}) {
    for (const double f : {0.2, 0.5, 0.01}) {
      const Split s = random_split(n, f, 42);
      CAPTURE(n);
      CAPTURE(f);
      CHECK(s.test.size() == static_cast<std::size_t>(std::llround(static_cast<double>(n) * f)));
      CHECK(s.train.size() + s.test.size() == n);
      CHECK(std::is_sorted(s.train.begin(), s.train.end()));
      CHECK(std::is_sorted(s.test.begin(), s.test.end()));
      std::vector<std::size_t> all(s.train);
      all.insert(all.end(), s.test.begin(), s.test.end());
      std::sort(all.begin(), all.end());
      for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i] == i);  // disjoint, covering
    }
  }
  const Split a = random_split(1000, 0.2, 7), b = random_split(1000, 0.2, 7),
              c = random_split(1000, 0.2, 8);
  CHECK(a.test == b.test);
  CHECK(a.train == b.train);
  CHECK(a.test != c.test);
  // Not just a prefix or a stride: test rows are spread over the range.
  CHECK(a.test.front() < 100);
  CHECK(a.test.back() > 900);

  // Splitting the train side again gives indices from it.
  const Split v = random_split(a.train, 0.125, 9);
  CHECK(v.test.size() == 100);
  CHECK(v.train.size() == 700);
  for (const std::size_t i : v.test) CHECK(std::binary_search(a.train.begin(), a.train.end(), i));
  for (const std::size_t i : v.train) CHECK(std::binary_search(a.train.begin(), a.train.end(), i));

  for (const double bad : {0.0, 1.0, -0.5, 1.5, std::nan("")}) {
    const std::string msg = error_of([&] { (void)random_split(10, bad, 1); });
    CHECK(msg.starts_with("random_split: test_fraction must be in (0, 1)"));
  }
}

TEST_CASE("split: group_split keeps groups whole with a row share close to the fraction") {
  // 200 groups of 1..60 rows, interleaved.
  std::vector<std::string> groups;
  for (std::size_t k = 0; k < 60; ++k)
    for (std::size_t g = 0; g < 200; ++g)
      if (k < 1 + (g * 7) % 60) groups.push_back("arr-" + std::to_string(g));
  const std::size_t n = groups.size();
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    for (const double f : {0.2, 0.5, 0.1}) {
      const Split s = group_split(groups, f, seed);
      CAPTURE(seed);
      CAPTURE(f);
      CHECK(s.train.size() + s.test.size() == n);
      CHECK(std::is_sorted(s.test.begin(), s.test.end()));
      CHECK(std::is_sorted(s.train.begin(), s.train.end()));
      std::set<std::string> test_groups, train_groups;
      for (const std::size_t i : s.test) test_groups.insert(groups[i]);
      for (const std::size_t i : s.train) train_groups.insert(groups[i]);
      for (const auto& g : test_groups) CHECK(train_groups.count(g) == 0);
      CHECK(test_groups.size() + train_groups.size() == 200);
      std::vector<std::size_t> all(s.train);
      all.insert(all.end(), s.test.begin(), s.test.end());
      std::sort(all.begin(), all.end());
      for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i] == i);
      const double share = static_cast<double>(s.test.size()) / static_cast<double>(n);
      CHECK(std::abs(share - f) < 0.005);  // within half of the smallest groups' row counts
    }
  }
  const Split a = group_split(groups, 0.2, 5), b = group_split(groups, 0.2, 5),
              c = group_split(groups, 0.2, 6);
  CHECK(a.test == b.test);
  CHECK(a.test != c.test);

  // A second split of the train side, e.g. for validation.
  const Split v = group_split(groups, a.train, 0.1, 11);
  CHECK(v.train.size() + v.test.size() == a.train.size());
  std::set<std::string> vg;
  for (const std::size_t i : v.test) vg.insert(groups[i]);
  for (const std::size_t i : v.train) CHECK(vg.count(groups[i]) == 0);
  for (const std::size_t i : v.test) CHECK(std::binary_search(a.train.begin(), a.train.end(), i));
  const double vshare = static_cast<double>(v.test.size()) / static_cast<double>(a.train.size());
  CHECK(std::abs(vshare - 0.1) < 0.005);

  // One group cannot be split: it lands on the side nearer the fraction.
  const std::vector<std::string> one(10, "x");
  CHECK(group_split(one, 0.2, 1).test.empty());
  CHECK(group_split(one, 0.8, 1).test.size() == 10);
  CHECK(group_split(std::vector<std::string>{}, 0.2, 1).train.empty());

  CHECK(error_of([&] { (void)group_split(groups, 1.0, 1); })
            .starts_with("group_split: test_fraction must be in (0, 1)"));
  const std::vector<std::size_t> out_of_range{0, n};
  CHECK(contains(error_of([&] { (void)group_split(groups, out_of_range, 0.5, 1); }),
                 "out of range"));
}

TEST_CASE("split: a MONA table split by arrangement") {
  std::vector<MonaRecord> rows;
  for (std::size_t i = 0; i < 300; ++i)
    rows.push_back(sample_record(i % 3 == 0 ? "" : (i % 2 ? "Met" : "Not Met"),
                                 std::to_string(500 + i % 37)));
  const MonaTable t = load_text(export_of(rows));
  const std::vector<std::string> arr = t.column(&MonaRecord::arrangement_number);
  const std::vector<std::size_t> labelled = t.labelled();
  CHECK(labelled.size() == 200);
  const Split s = group_split(arr, labelled, 0.2, 3);
  CHECK(s.train.size() + s.test.size() == 200);
  for (const std::size_t i : s.test) CHECK(t.labels[i] != Label::none);
  std::set<std::string> tg;
  for (const std::size_t i : s.test) tg.insert(arr[i]);
  for (const std::size_t i : s.train) CHECK(tg.count(arr[i]) == 0);
}
