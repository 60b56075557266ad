// What a SELECT computes per row in zdm-testcluster: a row as the query sees it, WHERE
// relations with their values, the compiled selectors (columns, writetime/ttl, token, the time
// functions, count), and the paging state a page ends with. Pure: no catalog, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/cql/types.h"
#include "testcluster/parser.h"
#include "testcluster/table.h"
#include "testcluster/values.h"

namespace zdm::testcluster {

using cql::DataType;
using cql::TypeId;

// Paging state: where the last page stopped.
struct PagingState {
  int32_t returned = 0;      // rows returned so far (LIMIT)
  int32_t in_partition = 0;  // rows returned from the last partition (PER PARTITION LIMIT)
  PartitionPos partition;
  bool has_row = false;  // false: the partition's static row was the last
  Key ck;
};

// One row as a query sees it: key columns, statics, regular cells, and what shadows them.
struct RowView {
  const Table* t = nullptr;
  const PartitionData* p = nullptr;
  int64_t token = 0;
  const Key* ck = nullptr;  // null: the partition's static row alone
  const RowData* row = nullptr;
  int64_t deleted = kNoTimestamp;
  int32_t now = 0;

  Cell value(std::size_t col) const {
    if (col < t->pk_count) return p->pk[col];
    if (col < t->key_size()) return ck ? Cell{(*ck)[col - t->pk_count]} : std::nullopt;
    if (t->columns[col].kind == ColumnKind::kStatic)
      return read_slot(*t, col, p->statics, p->deleted_at, now);
    if (!row) return std::nullopt;
    return read_slot(*t, col, *row, deleted, now);
  }
  const CellData* cell(std::size_t col) const {
    if (t->columns[col].kind == ColumnKind::kStatic)
      return live_cell(*t, col, p->statics, p->deleted_at, now);
    if (!row) return nullptr;
    return live_cell(*t, col, *row, deleted, now);
  }
};

// A WHERE relation or an IF condition with its evaluated values.
struct Cond {
  int column = -1;
  Relation::Op op = Relation::Op::kEq;
  std::vector<Bytes> values;
};

// Projection: the compiled selectors of a SELECT.
struct Proj {
  enum class Kind : uint8_t { kColumn, kWritetime, kTtl, kToken, kCount, kAggregate, kFunction };
  Kind kind = Kind::kColumn;
  int column = -1;       // kColumn, kWritetime, kTtl, kCount (count(col)); -1 for count(*)
  std::string function;  // kFunction, kAggregate (min, max, sum, avg)
  std::vector<Proj> args;
  DataType type;
  std::string name;  // the result column's name
};

Bytes encode_paging(const PagingState& p);
/// Throws cql::ProtocolError "Invalid value for the paging state".
PagingState decode_paging(const Bytes& state);

/// The comparison `c` (<0, 0, >0) satisfies `op` (=, !=, <, <=, >, >=).
bool compare_op(int c, Relation::Op op);
/// True if the row satisfies the relation (null values never do).
bool matches(const Cond& c, const RowView& v);

/// Compiles one selector against `t`; throws InvalidRequest with Cassandra's messages.
Proj compile_selector(const Selector& s, const Table& t);
/// The selector's value for one row (count and aggregates: null, see Aggregate).
Cell eval_proj(const Proj& p, const RowView& v);

/// The running value of count(...), min, max, sum or avg over the rows of a query.
struct Aggregate {
  int64_t count = 0;
  Cell best;            // min, max
  long double sum = 0;  // sum, avg
  void add(const Proj& p, const RowView& v);
  Cell result(const Proj& p) const;
};

}  // namespace zdm::testcluster
