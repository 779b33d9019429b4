#pragma once
// One row of a MONA export (see docs/data.md): the 30 columns of the IMF's public Monitoring of
// Fund Arrangements export, in their order, each kept as the text the file holds. Typed views
// (labels, prompts) live in data/mona.hpp; the synthetic generator (data/synthetic.hpp) writes
// rows of this type.
#include <array>
#include <cstddef>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

#include "rlxf/data/csv.hpp"

namespace rlxf::data {

struct MonaRecord {
  std::string arrangement_number;
  std::string country_name;
  std::string country_code;
  std::string arrangement_type;
  std::string approval_date;
  std::string approval_year;
  std::string initial_end_date;
  std::string initial_end_year;
  std::string revised_end_date;
  std::string duration_from;
  std::string duration_to;
  std::string board_action_date;
  std::string program_type;
  std::string review_type;
  std::string review_status;
  std::string key_code;
  std::string economic_code;
  std::string economic_descriptor;
  std::string description;
  std::string description_code;
  std::string test_date;
  std::string pc_status;
  std::string comments;
  std::string sort;
  std::string es_order;
  std::string new_test_date;
  std::string added_at;
  std::string assessed_at;
  std::string unique_id;
  std::string parent_id;
};

// A column of the export: its header name and the MonaRecord member that holds it.
struct MonaColumn {
  std::string_view name;
  std::string MonaRecord::*field;
};

// The export's 30 columns, in file order, spelt as the real export's header.
inline constexpr std::array<MonaColumn, 30> mona_columns{{
    {"Arrangement Number", &MonaRecord::arrangement_number},
    {"Country Name", &MonaRecord::country_name},
    {"Country Code", &MonaRecord::country_code},
    {"Arrangement Type", &MonaRecord::arrangement_type},
    {"Approval date", &MonaRecord::approval_date},
    {"Approval Year", &MonaRecord::approval_year},
    {"Initial End Date", &MonaRecord::initial_end_date},
    {"Initial End Year", &MonaRecord::initial_end_year},
    {"Revised End Date", &MonaRecord::revised_end_date},
    {"Duration Of Annual Arrangement From", &MonaRecord::duration_from},
    {"Duration Of Annual Arrangement To", &MonaRecord::duration_to},
    {"Board Action Date", &MonaRecord::board_action_date},
    {"Program Type", &MonaRecord::program_type},
    {"Review Type", &MonaRecord::review_type},
    {"Review Status", &MonaRecord::review_status},
    {"Key Code", &MonaRecord::key_code},
    {"Economic Code", &MonaRecord::economic_code},
    {"Economic Descriptor", &MonaRecord::economic_descriptor},
    {"Description", &MonaRecord::description},
    {"Description Code", &MonaRecord::description_code},
    {"Test Date", &MonaRecord::test_date},
    {"PC Status", &MonaRecord::pc_status},
    {"Comments", &MonaRecord::comments},
    {"Sort", &MonaRecord::sort},
    {"EsOrder", &MonaRecord::es_order},
    {"NewTestDate", &MonaRecord::new_test_date},
    {"Added At", &MonaRecord::added_at},
    {"Assessed At", &MonaRecord::assessed_at},
    {"Unique ID", &MonaRecord::unique_id},
    {"Parent ID", &MonaRecord::parent_id},
}};

// Writes a header row and the records in the export's format (RFC 4180, CRLF line ends), which
// load_mona (data/mona.hpp) and CsvReader read back field for field.
inline void write_mona_csv(std::ostream& out, std::span<const MonaRecord> records) {
  std::array<std::string_view, mona_columns.size()> fields;
  for (std::size_t c = 0; c < mona_columns.size(); ++c)
    fields[c] = mona_columns[c].name;
  write_csv_record(out, fields);
  for (const MonaRecord& record : records) {
    for (std::size_t c = 0; c < mona_columns.size(); ++c)
      fields[c] = record.*(mona_columns[c].field);
    write_csv_record(out, fields);
  }
}

}  // namespace rlxf::data
