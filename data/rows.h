// What zdm-data does with a scanned row, as pure functions of its cells: the writes that put it
// on target with origin's write times and remaining TTLs (one statement per distinct
// (writetime, ttl) of its cells), the comparison of origin's and target's versions, and the key
// as text for reports.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "data/client/page.h"
#include "data/schema.h"

namespace zdm::data {

/// One row as scanned: `layout.width` cells (token, keys, values, writetime/ttl pairs).
using RowView = std::span<const Cell>;
/// A scanned row copied out of its page (validate keeps rows across pages).
using OwnedRow = std::vector<std::optional<Bytes>>;

OwnedRow own(RowView row);
/// Views of an owned row (valid while `row` lives).
std::vector<Cell> view(const OwnedRow& row);

/// True when the row is a partition's static part only (a partition with static values and no
/// clustering row: its clustering columns come back null).
bool statics_only(const TableSchema& t, const Layout& l, RowView row);

/// One statement putting cells of a row on target.
struct WriteGroup {
  enum class Kind { kInsertRow, kUpdateRow, kUpdateStatics };
  Kind kind = Kind::kInsertRow;
  int64_t timestamp = 0;             // µs, USING TIMESTAMP
  int32_t ttl = 0;                   // s remaining when read, USING TTL (0: none)
  std::vector<std::size_t> columns;  // indices into TableSchema::values
};

/// The writes for the regular cells of a row (statics = false) or the static cells of its
/// partition (statics = true):
/// - cells with a writetime are grouped by (writetime, ttl): one statement each; for regular
///   cells the group with the oldest writetime is an INSERT (it carries the row marker, as the
///   row's first INSERT did), the others UPDATEs;
/// - non-frozen collections (whose writetime CQL cannot read) join the group with the newest
///   writetime of the same row, or, without one, a group at `fallback_timestamp` with no TTL;
///   any timestamp up to the moment the row was read is safe: writes after the read are newer;
/// - a row with no value at all (only its primary key) is an INSERT at `fallback_timestamp`;
/// - null cells are not written (they are unset, so nothing on target is deleted).
/// Counter columns are not planned here (see counter_columns).
std::vector<WriteGroup> plan_writes(const TableSchema& t, const Layout& l, RowView row,
                                    bool statics, int64_t fallback_timestamp);

/// The bound values of a group's statement (Statements::insert_row / update_row /
/// update_statics), columns outside the group unset. `ttl_slot` receives the index of the TTL
/// value (to count it down before a retry).
std::vector<cql::Value> bind_group(const TableSchema& t, const Layout& l, RowView row,
                                   const WriteGroup& g, std::size_t& ttl_slot);

/// Key values of a row in statement order: partition key, then (with_clustering) clustering.
std::vector<cql::Value> key_values(const TableSchema& t, const Layout& l, RowView row,
                                   bool with_clustering);

/// Where a row (or a partition's statics) sits in a token range scan: token, partition key
/// bytes, statics before rows, clustering key bytes. Equal on both clusters for the same row.
struct RowKey {
  int64_t token = 0;
  Bytes partition;
  bool statics = false;
  Bytes clustering;
  bool operator==(const RowKey&) const = default;
  bool operator<(const RowKey& o) const {
    if (token != o.token) return token < o.token;
    if (partition != o.partition) return partition < o.partition;
    if (statics != o.statics) return statics;
    return clustering < o.clustering;
  }
  bool operator<=(const RowKey& o) const { return !(o < *this); }
};
RowKey row_key(const TableSchema& t, const Layout& l, RowView row, bool statics);

/// A column that differs, for reports.
struct ColumnDiff {
  std::string column;
  bool writetime_only = false;  // equal values, different writetimes (--writetime)
  std::optional<int64_t> origin_writetime, target_writetime;
};

/// The columns of scope `statics` that differ between origin's and target's version of a row:
/// values by bytes, and with `writetimes` the writetime of timed columns whose values match.
std::vector<ColumnDiff> compare_rows(const TableSchema& t, const Layout& l, RowView origin,
                                     RowView target, bool statics, bool writetimes);

/// True if the row has any non-null value in scope `statics` (a partition without static
/// values has no static part to compare).
bool has_values(const TableSchema& t, const Layout& l, RowView row, bool statics);

/// The newest writetime among the row's cells of scope `statics`, if any.
std::optional<int64_t> newest_writetime(const TableSchema& t, const Layout& l, RowView row,
                                        bool statics);

/// "id=5, ck='a'" (values of common types as CQL literals, others as 0x hex).
std::string key_text(const TableSchema& t, const Layout& l, RowView row, bool statics);

/// A CQL literal of `v` for a column of type `type` (int, text, uuid, ...; else 0x hex).
std::string literal(const std::string& type, BytesView v);

}  // namespace zdm::data
