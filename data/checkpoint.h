// Backfill progress that survives a crash: one line per token range copied, appended and
// flushed to disk as each range completes, so a re-run (even after kill -9) skips them. A line
// cut short by a crash is ignored. The first line names the job (keyspace and clusters), so a
// file written for another job is refused rather than trusted.
//
//   zdm-data checkpoint 1 <job>
//   done <keyspace.table> <start> <end> <rows> <bytes>
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "data/ring.h"

namespace zdm::data {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CheckpointState {
  std::string job;
  std::map<std::string, RangeSet> done;  // by "keyspace.table"
  std::map<std::string, uint64_t> rows, bytes;
  std::size_t ranges = 0;  // lines read
};

/// Parses a checkpoint file's text; `path` names it in errors. Throws CheckpointError on a
/// header that is not a checkpoint's or a bad line other than a truncated last one.
CheckpointState parse_checkpoint(const std::string& text, const std::string& path);
/// The header line (without newline) and one "done" line.
std::string checkpoint_header(const std::string& job);
std::string checkpoint_line(const std::string& table, const TokenRange& r, uint64_t rows,
                            uint64_t bytes);

class Checkpoint {
 public:
  /// Opens `path` for `job`: reads what an earlier run recorded (nothing if the file does not
  /// exist), then appends. Throws CheckpointError if the file belongs to another job or cannot
  /// be written.
  Checkpoint(const std::string& path, const std::string& job);
  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  const CheckpointState& previous() const { return previous_; }
  /// Records a copied range. Thread-safe and does not block: a writer thread appends the
  /// lines queued meanwhile and syncs them to disk together (a range lost by a crash before
  /// its sync is copied again by the next run, which is harmless: writes are idempotent).
  void record(const std::string& table, const TokenRange& r, uint64_t rows, uint64_t bytes);
  /// Writes and syncs everything recorded so far (also done by the destructor).
  void flush();
  const std::string& path() const { return path_; }

 private:
  void writer();

  std::string path_;
  CheckpointState previous_;
  std::FILE* file_ = nullptr;
  std::mutex mu_;
  std::condition_variable wake_, synced_;
  std::string pending_;
  uint64_t queued_ = 0, written_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zdm::data
