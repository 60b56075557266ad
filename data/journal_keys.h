// The partitions a journaled write touched, read from its request body (common/journal/journal.h's
// kWrite records: a QUERY or BATCH body, native_protocol_v4.spec §4.1.4 and §4.1.7, every
// statement a query string with positional bound values): `zdm-data replay --validate` and
// `zdm-data validate --keys-from-journal` read exactly these partitions from origin and target.
//
// The statements read (CQL as cassandra's docs give it, "Data Manipulation"):
//   INSERT INTO [ks.]t (c, …) VALUES (term, …) [IF NOT EXISTS] [USING …]
//   UPDATE [ks.]t [USING …] SET … WHERE relation [AND relation …] [IF …]
//   DELETE [selection] FROM [ks.]t [USING TIMESTAMP n] WHERE relation [AND …] [IF …]
//   BEGIN [UNLOGGED | COUNTER] BATCH [USING …] statement [;] … APPLY BATCH
// A partition-key column is given by `pk = term` or `pk IN (term, …)` / `pk IN ?` (a bound list);
// a term is a literal (kept as written: 42, 'abc', 0x0a, a uuid, a collection or tuple literal)
// or a bind marker (? or :name, counted left to right over the whole text, SET and USING parts
// included, to find its bound value). Comments (--, //, /* */), '' escapes in strings, $$
// strings and quoted identifiers ("Mixed", case-sensitive; unquoted names lower-cased) are
// handled. What cannot be read (a key from a function call such as uuid(), a prepared child of a
// BATCH, named values, a table not in the schema, text that does not parse) is "unverifiable",
// with a reason; never an exception. Pure, so unit-tested.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/cql/notation.h"
#include "data/schema.h"

namespace zdm::data::keys {

using cql::Bytes;

/// One partition-key column's value as the write gave it: a literal's text (as written, comments
/// and line breaks between its tokens dropped) or a bound value's bytes.
struct KeyValue {
  bool bound = false;
  std::string literal;  // when !bound
  Bytes bytes;          // when bound: the [value]'s bytes (never null or unset)
  auto operator<=>(const KeyValue&) const = default;
};

/// A partition a write touched: its table and one KeyValue per partition-key column, in the
/// table's partition-key order.
struct Partition {
  std::string keyspace, table;
  std::vector<KeyValue> key;
  auto operator<=>(const Partition&) const = default;
};

/// What one request body (or one statement) writes.
struct Extracted {
  std::vector<Partition> partitions;
  /// One reason per statement whose partitions cannot be told ("ks.t: partition key 'id' from
  /// a function call (uuid())"); reasons never hold a value of the write.
  std::vector<std::string> unverifiable;
};

/// The schema of `keyspace`.`table` (names as CQL resolves them), or null when unknown.
using SchemaLookup =
    std::function<const TableSchema*(const std::string& keyspace, const std::string& table)>;

/// Partitions of one IN list product at most; more make the statement unverifiable.
inline constexpr std::size_t kMaxPartitionsPerStatement = 1000;

/// The partitions written by the statement (or BEGIN BATCH … APPLY BATCH text) `cql`, whose bind
/// markers take `values` in order. `keyspace`: the connection's, for unqualified table names.
Extracted extract_statement(std::string_view cql, std::span<const cql::Value> values,
                            const std::string& keyspace, const SchemaLookup& schema);

/// The partitions written by a journaled request: `body` a QUERY (opcode 0x07) or BATCH (0x0D)
/// body of protocol `version` (3 to 5). A v5 keyspace flag (0x80) overrides `keyspace`. A body
/// that does not decode, named values (flag 0x40) and prepared BATCH children are unverifiable.
Extracted extract_body(uint8_t version, uint8_t opcode, std::string_view body,
                       const std::string& keyspace, const SchemaLookup& schema);

/// The partition's key for reports: "id=5, name='x'" (bound values as CQL literals of their
/// column's type, rows.h's literal(); literals as written).
std::string key_text(const TableSchema& t, const Partition& p);

/// The bound values of a SELECT whose WHERE is where_clause(p): one per bound key column.
std::vector<cql::Value> where_values(const Partition& p);
/// "pk1 = ? AND pk2 = 'lit'": the partition's key (names quoted as needed; ? for bound values).
std::string where_clause(const TableSchema& t, const Partition& p);

}  // namespace zdm::data::keys
