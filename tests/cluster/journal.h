// Persistence of zdm-testcluster (--data-dir): a snapshot file plus an append-only log of
// records, each framed as [int length][bytes]. What a record holds is the store's business
// (schema statements, partition and row images); this file only frames, flushes and replays.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "proxy/cql/frame.h"

namespace zdm::testcluster {

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
