// The storage model of zdm-testcluster, as Cassandra's: partitions ordered by Murmur3 token,
// rows by clustering key (ASC/DESC), and cells carrying their write time and TTL, reconciled
// last-write-wins; row markers (INSERT), tombstones (cell, row, range, partition, collection),
// multi-cell collections and counters. Pure data: no statements, no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/cql/types.h"
#include "testcluster/values.h"

namespace zdm::testcluster {

/// A missing timestamp (no cell, no deletion).
inline constexpr int64_t kNoTimestamp = INT64_MIN;

/// Murmur3Partitioner's token of a serialized partition key, as Cassandra computes it
/// (MurmurHash3 x64 128 with Cassandra's sign-extended tail bytes; the minimum maps to the
/// maximum).
int64_t murmur3_token(cql::BytesView key);

/// A partition key as the partitioner hashes it: one column's value as is; several as
/// <u16 length><value><0x00> each (CompositeType).
Bytes partition_key_bytes(const std::vector<Bytes>& components);

/// When a write happens and how long it lives: the write time (µs), the TTL (s, 0 = forever)
/// and the server's clock (s) that expiry is counted from.
struct WriteTime {
  int64_t ts = 0;
  int32_t ttl = 0;
  int32_t now = 0;
  int32_t expires() const { return ttl > 0 ? now + ttl : 0; }
};

/// One cell: a value, or a tombstone, with its write time and expiry.
struct CellData {
  Bytes value;
  int64_t ts = kNoTimestamp;  // kNoTimestamp: no cell
  int32_t ttl = 0;
  int32_t expires = 0;  // local expiry (s since epoch) when ttl > 0
  bool tombstone = false;

  bool present() const { return ts != kNoTimestamp; }
  bool live(int32_t now) const { return present() && !tombstone && (ttl == 0 || now < expires); }
};

/// Orders element keys of a multi-cell collection by their type (set elements, map keys) or as
/// bytes (list positions).
struct ElementLess {
  const cql::DataType* type = nullptr;  // null: unsigned bytes
  bool operator()(const Bytes& a, const Bytes& b) const;
};

/// A non-frozen collection: one cell per element, and a tombstone for the whole collection.
struct ComplexData {
  int64_t deleted_at = kNoTimestamp;
  std::map<Bytes, CellData, ElementLess> elems;
  explicit ComplexData(ElementLess less) : elems(less) {}
};

/// The value stored for one non-key column of a row.
struct Slot {
  CellData cell;                         // simple columns (frozen collections, counters too)
  std::unique_ptr<ComplexData> complex;  // non-frozen collections
};

/// One CQL row (or the static row of a partition).
struct RowData {
  CellData marker;  // the primary key liveness an INSERT writes (value unused)
  int64_t deleted_at = kNoTimestamp;
  std::vector<Slot> slots;  // one per non-key column, in table column order
};

/// Orders clustering keys by the clustering columns' types and CLUSTERING ORDER; a shorter key
/// (a prefix) sorts before the keys it prefixes.
struct ClusteringLess {
  const std::vector<std::pair<cql::DataType, bool>>* columns = nullptr;  // type, descending
  int compare(const Key& a, const Key& b) const;
  bool operator()(const Key& a, const Key& b) const { return compare(a, b) < 0; }
};

/// DELETE over a clustering slice: keys between the bounds (empty bound: unbounded).
struct RangeTombstone {
  Key from, to;  // clustering prefixes
  bool from_inclusive = true, to_inclusive = true;
  int64_t ts = kNoTimestamp;
};

struct PartitionData {
  std::vector<Bytes> pk;
  int64_t deleted_at = kNoTimestamp;
  RowData statics;
  std::map<Key, RowData, ClusteringLess> rows;
  std::vector<RangeTombstone> ranges;
  explicit PartitionData(ClusteringLess less) : rows(less) {}
};

/// Where a partition sits on the ring: its token, then its key bytes (as Cassandra's
/// DecoratedKey orders them).
struct PartitionPos {
  int64_t token = 0;
  Bytes key;
  bool operator<(const PartitionPos& o) const;
  bool operator==(const PartitionPos& o) const = default;
};

enum class ColumnKind : uint8_t { kPartitionKey, kClustering, kRegular, kStatic };

struct Column {
  std::string name;
  cql::DataType type;
  std::string type_text;  // as declared, normalized ("frozen<list<int>>", "text")
  ColumnKind kind = ColumnKind::kRegular;
  int position = -1;
  std::string order = "none";  // clustering: "asc"/"desc"
  bool multi_cell = false;     // a non-frozen collection
};

struct Table {
  std::string keyspace, name;
  Bytes id;
  std::vector<Column> columns;  // partition key, clustering, then the others by name
  std::size_t pk_count = 0, ck_count = 0;
  std::vector<std::pair<cql::DataType, bool>> clustering;  // types and DESC flags
  bool counter = false;                                    // a counter table
  int32_t default_ttl = 0;
  std::map<std::string, std::string> options;  // WITH options as CQL text (comment, ...)
  using Partitions = std::map<PartitionPos, PartitionData>;
  Partitions partitions;  // ring order; add through partition(), empty through clear()
  /// Point lookups by token (one hash probe instead of a tree walk on the key-value path).
  std::unordered_multimap<int64_t, Partitions::iterator> by_token;

  int index(const std::string& col) const;
  std::size_t key_size() const { return pk_count + ck_count; }
  std::size_t slot_count() const { return columns.size() - key_size(); }
  ClusteringLess clustering_less() const { return ClusteringLess{&clustering}; }
  /// The ring position of a full partition key.
  static PartitionPos position_of(const std::vector<Bytes>& pk);
  /// The partition at `pos`, or null.
  Partitions::iterator find(const PartitionPos& pos);
  Partitions::const_iterator find(const PartitionPos& pos) const;
  /// Removes every partition (TRUNCATE).
  void clear();
  /// Finds or creates a partition / a row in it / the slot of column `col`.
  PartitionData& partition(const std::vector<Bytes>& pk);
  RowData& row(PartitionData& p, const Key& ck);
  Slot& slot(RowData& r, std::size_t col);
};

// ---- writes (last write wins, as Cassandra's Cells.reconcile) ----

/// Writes `value` (nullopt: a cell tombstone) into `cell` unless the cell holds a newer write.
void write_cell(CellData& cell, const std::optional<Bytes>& value, const WriteTime& wt);
/// The row marker of an INSERT.
void write_marker(RowData& row, const WriteTime& wt);
/// Adds `delta` to a counter cell.
void add_counter(CellData& cell, int64_t delta, const WriteTime& wt);
/// Replaces a whole collection: a collection tombstone at ts-1, then the elements at ts.
/// `elems` are (key, value) pairs as stored (list keys from list_key()).
void write_collection(Slot& slot, const Column& col,
                      const std::vector<std::pair<Bytes, Bytes>>& elems, const WriteTime& wt,
                      bool overwrite);
/// Deletes the element `key` of a collection.
void delete_element(Slot& slot, const Column& col, const Bytes& key, const WriteTime& wt);
/// Deletes the whole collection.
void delete_collection(Slot& slot, const Column& col, int64_t ts);
/// Ensures `slot` has its ComplexData for a multi-cell column.
ComplexData& complex_of(Slot& slot, const Column& col);
/// A fresh list element key ordered after (append) or before (prepend) every earlier one.
Bytes list_key(bool prepend);

/// Row and partition deletions; shadowed data is dropped at once (it can never be live again).
void delete_row(RowData& row, int64_t ts);
void delete_partition(Table& t, PartitionData& p, int64_t ts);
void delete_range(Table& t, PartitionData& p, RangeTombstone range);

// ---- reads ----

/// The deletion time that shadows row `ck` of `p` (partition, range and row tombstones).
int64_t shadowing(const Table& t, const PartitionData& p, const Key& ck, const RowData& row);
/// True if the row has a live marker or a live cell newer than `deleted`.
bool row_live(const Table& t, const RowData& row, int64_t deleted, int32_t now);
/// True if the static row has a live cell.
bool statics_live(const Table& t, const PartitionData& p, int32_t now);
/// The CQL value of column `col` (a non-key column) of `row`: the cell's value, or the live
/// elements of a collection serialized; null when dead or empty.
Cell read_slot(const Table& t, std::size_t col, const RowData& row, int64_t deleted, int32_t now);
/// The cell behind writetime()/ttl() of a simple column (nullptr when dead).
const CellData* live_cell(const Table& t, std::size_t col, const RowData& row, int64_t deleted,
                          int32_t now);
/// The live elements of a collection (key, value), in order.
std::vector<std::pair<Bytes, Bytes>> live_elements(const Table& t, std::size_t col,
                                                   const RowData& row, int64_t deleted,
                                                   int32_t now);

}  // namespace zdm::testcluster
