// A table as zdm-data copies and compares it: its columns from system_schema.columns, the
// statements it runs on it (the token-range scan with writetime()/ttl(), INSERT/UPDATE with
// USING TIMESTAMP and TTL, counter increments, point reads, deletes), and the check that origin
// and target define it alike. Pure: text in, text out.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace zdm::data {

/// One row of system_schema.columns.
struct ColumnRow {
  std::string keyspace, table, name, kind, type, clustering_order;
  int position = -1;
};

enum class Kind { kPartitionKey, kClustering, kStatic, kRegular };

struct ColumnDef {
  std::string name;
  Kind kind = Kind::kRegular;
  int position = -1;
  std::string type;   // as system_schema prints it: "int", "frozen<list<int>>", "map<text, int>"
  std::string order;  // clustering: "asc" / "desc"
  /// A non-frozen collection (or UDT): one cell per element, and no writetime()/ttl() in
  /// Cassandra 4.x CQL.
  bool multi_cell = false;
  bool counter = false;
  /// Has writetime() and ttl(): a simple (single-cell) column that is not a counter.
  bool timed() const { return !multi_cell && !counter; }
};

struct TableSchema {
  std::string keyspace, table;
  std::vector<ColumnDef> partition_key, clustering;  // by position
  /// Non-key columns, statics first, then regular ones, each group by name. A scanned row
  /// carries one value per column of this list (see Layout).
  std::vector<ColumnDef> values;
  std::size_t static_count = 0;

  bool counter_table() const;
  bool has_statics() const { return static_count > 0; }
  bool is_static(std::size_t value_index) const { return value_index < static_count; }
  /// "ks"."t", quoted as needed.
  std::string qualified() const;
  std::string name() const { return keyspace + "." + table; }
};

/// Builds `ks`.`table` from system_schema.columns rows (other tables' rows are skipped);
/// nullopt when the table has no columns there (it does not exist).
std::optional<TableSchema> table_schema(const std::vector<ColumnRow>& rows,
                                        const std::string& keyspace, const std::string& table);
/// The tables of `keyspace`, sorted.
std::vector<std::string> keyspace_tables(const std::vector<ColumnRow>& rows,
                                         const std::string& keyspace);
/// The first difference between two definitions of a table, as one phrase ("column 'v' is int on
/// origin, text on target"); nullopt when they match.
std::optional<std::string> schema_difference(const TableSchema& origin, const TableSchema& target);

/// A CQL identifier, double-quoted unless it is a lower-case unquoted one.
std::string quote(const std::string& identifier);

/// Where things are in a scanned row: token, key columns, values, then writetime and ttl of
/// each timed value column.
struct Layout {
  std::size_t token = 0;
  std::size_t partition_key = 1;
  std::size_t clustering = 0;
  std::size_t values = 0;
  std::size_t times = 0;        // first writetime column
  std::vector<int> timed_slot;  // per value column: its index among timed ones, or -1
  std::size_t width = 0;        // columns in a scanned row
  std::size_t writetime(std::size_t value) const {
    return times + 2 * static_cast<std::size_t>(timed_slot[value]);
  }
  std::size_t ttl(std::size_t value) const { return writetime(value) + 1; }
};

Layout layout_of(const TableSchema& t);

/// The statements of one table.
struct Statements {
  /// SELECT token(pk), pk…, ck…, values…, writetime(v), ttl(v)… WHERE token(pk) > ? AND
  /// token(pk) <= ?  (binds: start, end)
  std::string scan;
  /// Same projection for one row (binds: pk…, ck…) and one partition's first row (binds: pk…).
  std::string read_row, read_partition;
  /// INSERT INTO t (pk…, ck…, regular…) VALUES (…) USING TIMESTAMP ? AND TTL ?
  /// (binds: pk…, ck…, regular…, timestamp, ttl). Columns left out of a write are unset.
  std::string insert_row;
  /// UPDATE t USING TIMESTAMP ? AND TTL ? SET r = ?… WHERE pk… AND ck…
  /// (binds: timestamp, ttl, regular…, pk…, ck…). Empty if the table has no regular column.
  std::string update_row;
  /// UPDATE t USING TIMESTAMP ? AND TTL ? SET s = ?… WHERE pk… (binds: timestamp, ttl, static…,
  /// pk…). Empty without static columns.
  std::string update_statics;
  /// Counter tables: UPDATE t SET c = c + ?… WHERE pk… AND ck… (binds: regular counters…, pk…,
  /// ck…) and the same for static counters (binds: static counters…, pk…).
  std::string add_counters, add_static_counters;
  /// DELETE FROM t USING TIMESTAMP ? WHERE pk… AND ck… (binds: timestamp, pk…, ck…), and the
  /// static columns of a partition (binds: timestamp, pk…).
  std::string delete_row, delete_statics;
};

Statements statements_of(const TableSchema& t);

}  // namespace zdm::data
