// What backfill and validate share: discovering both clusters and the tables (refusing an unknown
// keyspace or table, or a table defined differently on the two clusters), cutting the ring into
// token ranges, the worker threads (one io_context each, owning its connections) and, on the main
// thread, progress output, the metrics endpoint and SIGINT/SIGTERM (finish the ranges in progress,
// then stop).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/client/session.h"
#include "data/options.h"
#include "data/progress.h"
#include "data/ring.h"
#include "data/schema.h"

namespace zdm::data {

/// Ends the program with `code` and one line (bad keyspace or schema: 2, unreachable: 3).
class JobError : public std::runtime_error {
 public:
  JobError(int code, const std::string& what) : std::runtime_error(what), code(code) {}
  int code;
};

struct TableJob {
  TableSchema schema;
  Layout layout;
  Statements statements;
};

struct Setup {
  Options options;
  ClusterConfig origin_config, target_config;
  ClusterInfo origin, target;
  std::vector<TableJob> tables;
  std::vector<TokenRange> ranges;  // the ring cut for scanning (origin's tokens)
  int64_t started_us = 0;          // wall clock at start, µs
};

/// Discovers both clusters and the tables. Throws JobError.
Setup prepare(const Options& o);

/// One unit of work: a token range of a table.
struct WorkItem {
  std::size_t table = 0;
  TokenRange range;
};

/// Hands work items to worker coroutines of every thread, in order.
class WorkQueue {
 public:
  explicit WorkQueue(std::vector<WorkItem> items) : items_(std::move(items)) {}
  /// The next item, or null when there is none left or stop() was called.
  const WorkItem* next() {
    if (stopped_.load()) return nullptr;
    auto i = next_.fetch_add(1);
    return i < items_.size() ? &items_[i] : nullptr;
  }
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_.load(); }
  std::size_t size() const { return items_.size(); }

 private:
  std::vector<WorkItem> items_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stopped_{false};
};

/// Runs `body(ioc, thread index)` on `threads` threads, each with its own io_context, and on
/// the calling thread: progress every `interval` (a bar redrawn each second on a terminal),
/// the metrics endpoint, and SIGINT/SIGTERM, which call `on_signal` (a second signal exits at
/// once). Returns when every thread's body has returned. Throws JobError if the metrics address
/// cannot be bound.
void run_workers(const Options& o, metrics::Registry& registry,
                 const std::function<asio::awaitable<void>(asio::io_context&, int)>& body,
                 const std::function<ProgressSnapshot()>& snapshot,
                 const std::function<void()>& on_signal);

/// The tables' names (without keyspace), comma-separated: "events, users".
std::string table_names(const Setup& s);

/// Wall clock in µs and s since the epoch.
int64_t now_us();
int32_t now_s();

/// A RetryHook counting into `stats`.
RetryHook retry_hook(Stats& stats, const std::string& cluster);

/// Logs an exception that escaped a coroutine (every co_spawn gets a handler that logs,
/// never a silent `detached`).
void log_exception(std::exception_ptr e, const char* what);

}  // namespace zdm::data
