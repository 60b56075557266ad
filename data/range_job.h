// The range-worker skeleton backfill and validate share. Each worker thread connects a Session
// to each cluster, prepares its statements, then runs --parallel range workers that take work
// items (a token range of a table) from the shared WorkQueue until it is empty or stopped. A
// range that fails is reported by the command and retried by a later run; an error no retry can
// fix (a RequestError whose code is not retryable) stops the whole job. Scans read token ranges
// page by page, counted into Stats, and origin's pages wait out the shared RateLimiter.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "data/job.h"

namespace zdm::data {

/// Waits `d` on `ioc` (a steady timer). Never throws.
awaitable<void> pause(asio::io_context& ioc, std::chrono::steady_clock::duration d);

/// Makes `c` send, at each attempt, what is left of a TTL ending at `expires_s` (s since the
/// epoch) as the int value at `ttl_slot` of its values, and drop the call once it is up (then
/// Session::execute returns nullopt).
void count_down_ttl(Call& c, std::size_t ttl_slot, int64_t expires_s);

/// Seconds from `start` to now (steady clock).
double seconds_since(std::chrono::steady_clock::time_point start);

/// What a progress line shows of `stats` (origin's rows and bytes, ranges done or failed,
/// retries) and `work` (ranges in all).
ProgressSnapshot progress_of(const Stats& stats, const WorkQueue& work);

/// The part of a command that its worker threads share: the setup, the work queue, the
/// counters, the rate limit and the error that stopped the job. A command derives from it and
/// implements thread_main().
class RangeJob {
 public:
  RangeJob(const RangeJob&) = delete;
  RangeJob& operator=(const RangeJob&) = delete;

  /// Runs the job: --threads threads, each with its own io_context, await thread_main(); the
  /// calling thread shows `snapshot` as progress, serves --metrics from `registry`, and stops
  /// the work queue on SIGINT/SIGTERM. Returns when every thread has. Throws JobError (the
  /// metrics address cannot be bound).
  void run(metrics::Registry& registry, const std::function<ProgressSnapshot()>& snapshot);

  /// The error that stopped the job, "" if none.
  std::string fatal_error();

 protected:
  RangeJob(Setup& s, WorkQueue& work, Stats& stats, RateLimiter& rate);
  virtual ~RangeJob() = default;

  /// One worker thread's work on `ioc` (`index` counts the threads from 0).
  virtual awaitable<void> thread_main(asio::io_context& ioc, int index) = 0;

  /// Keeps `why` as the error that stops the job (the first one wins) and stops the work queue.
  void fatal(const std::string& why);

  /// Awaits `prepare` (a thread's statements). Returns false, after fatal(), if it threw
  /// RequestError; other exceptions propagate.
  awaitable<bool> prepared(awaitable<void> prepare);

  /// Runs --parallel range workers on `ioc`, each awaiting `range(item)` for the work items it
  /// takes until the queue is empty or stopped; returns when all of them have returned (an
  /// exception escaping `range` ends its worker and is logged).
  awaitable<void> run_range_workers(asio::io_context& ioc,
                                    std::function<awaitable<void>(const WorkItem&)> range);

  /// Awaits `body`. Returns nullopt if it returned, otherwise what() of the std::exception it
  /// threw; a RequestError whose code is not retryable also stops the job (fatal()).
  awaitable<std::optional<std::string>> attempt(awaitable<void> body);

  /// Reads one page of `scan` (a SELECT of `layout`'s columns bound to the start and end token
  /// of `range`) on `session`, from `paging` on (nullopt: the first page), --page-size rows at
  /// most. Counts its rows and bytes of values into stats (origin's or target's, by `origin`).
  /// Throws RequestError, and std::runtime_error if a row is not `layout.width` columns wide.
  awaitable<Page> scan_page(Session& session, Statement& scan, const Layout& layout,
                            TokenRange range, std::optional<Bytes> paging, bool origin);

  /// Waits on `ioc` as long as the rate limit says before `page`'s rows and bytes are used.
  awaitable<void> throttle(asio::io_context& ioc, const Page& page);

  Setup& s_;
  WorkQueue& work_;
  Stats& stats_;
  RateLimiter& rate_;
  std::mutex mu_;  // guards fatal_ and what a command gathers from all threads

 private:
  awaitable<void> range_worker(const std::function<awaitable<void>(const WorkItem&)>& range);

  std::string fatal_;
};

}  // namespace zdm::data
