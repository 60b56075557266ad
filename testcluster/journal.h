// Persistence of zdm-testcluster (--data-dir): a snapshot file plus an append-only log of
// records, each framed as [int length][bytes]. A record is a schema statement as CQL text ('D'),
// a partition header image ('P': deletion, static row, range tombstones) or a row image ('R');
// images are the state after a request, so replaying them in order is idempotent.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "common/cql/frame.h"
#include "common/cql/notation.h"
#include "testcluster/table.h"

namespace zdm::testcluster {

// Record bodies: [byte kind] then the fields below (cql::Writer notations).
/// 'D' [string keyspace][long string statement].
Bytes ddl_record(const std::string& keyspace, const std::string& cql);
/// 'P' [string ks][string table][key pk][long deleted_at][row statics][int n][range]*.
Bytes partition_record(const Table& t, const PartitionData& p);
/// 'R' [string ks][string table][key pk][key ck][byte exists][row]; row null: erased.
Bytes row_record(const Table& t, const std::vector<Bytes>& pk, const Key& ck, const RowData* row);

void encode_key(cql::Writer& w, const std::vector<Bytes>& k);
std::vector<Bytes> decode_key(cql::Reader& r);
void encode_row(cql::Writer& w, const RowData& row);
/// Throws cql::ProtocolError when the image does not fit `t` (a schema changed since).
void decode_row(cql::Reader& r, const Table& t, RowData& row);

class Journal {
 public:
  /// Creates `dir` if needed. Throws std::runtime_error when it cannot.
  explicit Journal(std::string dir);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// Calls `apply` with each record of the snapshot, then of the log, in order. A torn last
  /// record (a crash mid-write) ends the replay.
  void replay(const std::function<void(cql::BytesView)>& apply) const;
  /// Appends one record to the log; made durable by flush().
  void append(cql::BytesView record);
  void flush();
  /// Replaces the snapshot with the records `write` emits, then empties the log.
  void snapshot(const std::function<void(const std::function<void(cql::BytesView)>&)>& write);

  const std::string& dir() const { return dir_; }

 private:
  void open_log();
  std::string dir_;
  std::FILE* log_ = nullptr;
};

}  // namespace zdm::testcluster
