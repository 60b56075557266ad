// Target protection (docs/target-protection.md): what keeps a target that is down, slow or
// disabled from failing the application while origin is the primary.
// - The runtime switch (GET/POST /api/v1/target…): while target is disabled, writes go to origin
//   only and are journaled; requests that need the primary alone (PREPARE, USE…) go to origin;
//   mirrored reads pause.
// - target_failure_mode isolate: every replayable write is journaled before it goes out and
//   settled when target acknowledges it; a write origin acknowledged and target failed or left
//   unanswered past target_write_timeout_ms is answered with origin's success, and its journal
//   record stays for `zdm-data replay`. A circuit breaker holds target's writes back (journaled)
//   after target_circuit_failures failures within target_circuit_window_ms, and lets them through
//   again once a probe every target_circuit_probe_interval_ms finds target's control connection
//   up.
// - Lightweight transactions and counter updates are not replayable (a second application is not
//   a no-op): they are never journaled and keep fail mode's behaviour; while target is disabled
//   they go to origin alone and are counted (zdm_proxy_target_unjournaled_writes_total).
// Process-wide and thread-safe; the journal writer is one per worker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/journal/journal.h"
#include "proxy/asio.h"
#include "proxy/config.h"
#include "proxy/metrics.h"

namespace zdm::proxy {

class ControlConnection;

class TargetGuard {
 public:
  /// Prunes what earlier runs left settled in proxy_journal_dir (created if missing). Throws
  /// std::runtime_error naming the directory when it cannot be created or written.
  TargetGuard(const Config& config, ProxyMetrics& metrics, ControlConnection& target_cc);
  ~TargetGuard();
  TargetGuard(const TargetGuard&) = delete;
  TargetGuard& operator=(const TargetGuard&) = delete;

  /// isolate mode in effect (target_failure_mode isolate while origin is the primary).
  bool isolating() const { return isolate_; }
  /// A journal is configured.
  bool has_journal() const { return budget_ != nullptr; }
  /// The runtime switch.
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  /// Why target's writes are held back now (not sent, journaled instead): kTargetDisabled,
  /// kCircuitOpen; nullopt: they go to target. Lock-free unless the circuit is open.
  std::optional<journal::Reason> held_back();
  /// Journaling applies to a write now: target is held back, or isolate mode.
  bool journaling() { return budget_ && (isolate_ || held_back()); }

  /// POST /api/v1/target/disable|enable by `by`: the error when refused (no journal, or target
  /// is the primary), else nullopt. Logged at WARN.
  std::optional<std::string> set_enabled(bool on, const std::string& by);
  /// JSON of GET /api/v1/target: {"enabled", "primary_cluster", "target_failure_mode",
  /// "isolated", "journal": {"dir", "bytes", "unsettled"}}.
  std::string state_json();

  /// Appends `w` to this worker's journal (the write goes to the file before the frames queued
  /// on `ioc` after it: the flush is posted first). Its seq, or nullopt when the journal is full
  /// or broken: the write then gets fail mode (counted in zdm_proxy_journal_full_writes_total).
  std::optional<uint64_t> append(journal::WriteParts& w, asio::io_context& ioc);
  /// Target applied journaled write `seq`, or origin refused it: nothing to replay.
  void settle(uint64_t seq, journal::Settlement how);
  /// A journaled write target missed, by "ks.table" and why (the divergence metric).
  void missed(const std::string& table, journal::Reason why);
  /// A write not journaled (LWT, counter update, schema change) that target did not get.
  void unjournaled(const std::string& table, const char* kind);
  /// Target failed a write (circuit breaker accounting) / acknowledged one.
  void target_failed();
  void target_succeeded() {}

  /// Refreshes the gauges (before each scrape).
  void update_gauges();

 private:
  journal::Writer* writer();
  void flush_writer(journal::Writer& w);
  /// Queues this worker's flush on its io_context, once per batch of records.
  void post_flush();
  /// proxy_journal_fsync_interval_ms > 0: fdatasync(2)s every worker's segment that often, on
  /// its own thread (a worker never waits for the disk).
  void sync_loop(std::stop_token stop);
  /// A worker's writer `w` opened a new segment since `watched_segment`: the sync thread syncs a
  /// dup(2) of it from now on, `watched` (the previous dup) once more, then closes it.
  void watch_fd(const journal::Writer& w, int& watched_segment, int& watched);
  static std::string label_value(std::string_view s);

  const Config& config_;
  ProxyMetrics& metrics_;
  ControlConnection& target_cc_;
  const bool isolate_;
  std::atomic<bool> enabled_{true};
  std::shared_ptr<journal::Budget> budget_;
  int64_t run_ms_ = 0;
  std::atomic<int> next_worker_{0};
  std::atomic<uint64_t> journaled_{0};  // this run's writes appended, not settled
  std::atomic<bool> broken_{false};     // an I/O error: the journal takes no more writes

  // Circuit breaker (isolate).
  std::atomic<bool> open_{false};
  std::mutex circuit_mu_;
  std::chrono::steady_clock::time_point window_start_{}, opened_at_{}, last_probe_{};
  int failures_ = 0;

  std::mutex series_mu_;
  std::map<std::string, metrics::Counter*> series_;
  metrics::Gauge* enabled_gauge_;
  metrics::Gauge* isolated_gauge_;
  metrics::Gauge* journal_bytes_;
  metrics::Gauge* journal_full_;
  metrics::Counter* journal_full_writes_;
  std::chrono::steady_clock::time_point last_full_log_{};

  std::mutex sync_mu_;
  std::vector<int> sync_fds_;     // dups of the segments appended to
  std::vector<int> retired_fds_;  // dups of closed segments: synced once more, then closed
  std::jthread syncer_;
};

}  // namespace zdm::proxy
