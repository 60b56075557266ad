// What a running zdm-data job tells its operator: counters (also served as Prometheus metrics
// on --metrics while it runs), a progress bar on a terminal or plain progress lines otherwise,
// and the rate limit (rows/s, MB/s) shared by every worker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "common/metrics/registry.h"

namespace zdm::data {

/// A token bucket over rows and bytes, shared by threads: take() reserves a page's worth and
/// says how long to wait before using it, so the average stays under both limits (0: none).
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double rows_per_s, double bytes_per_s) : rows_(rows_per_s), bytes_(bytes_per_s) {}
  std::chrono::nanoseconds take(uint64_t rows, uint64_t bytes, Clock::time_point now);
  bool limited() const { return rows_ > 0 || bytes_ > 0; }

 private:
  double rows_, bytes_;
  std::mutex mu_;
  bool started_ = false;
  Clock::time_point next_{};
};

/// The job's counters; each is a Prometheus series of `registry`.
struct Stats {
  explicit Stats(metrics::Registry& r);
  metrics::Counter &origin_rows, &origin_bytes, &target_rows, &target_bytes;
  metrics::Counter &written_rows, &statements, &expired_cells, &counter_cells_skipped;
  metrics::Counter &ranges_done, &ranges_failed, &ranges_skipped;
  metrics::Gauge& ranges_total;
  metrics::Counter &only_origin, &only_target, &differing, &repaired;
  metrics::Registry& registry;
  /// zdm_data_retries_total{cluster, reason}
  metrics::Counter& retries(const std::string& cluster, const std::string& reason);
  uint64_t total_retries() const { return retries_.load(); }
  std::atomic<uint64_t> retries_{0};
  std::mutex retry_mu;
  std::map<std::string, uint64_t> retry_reasons;  // "target write_timeout" → n
};

/// What a progress line shows.
struct ProgressSnapshot {
  uint64_t rows = 0, bytes = 0, ranges_done = 0, ranges_total = 0;
  double seconds = 0;
  uint64_t retries = 0;
  uint64_t differences = 0;  // validate
  bool validate = false;
  /// replay: rows are writes applied, ranges are writes handled (applied or skipped) of those
  /// to replay.
  bool replay = false;
};

/// "[#########...........] 45% 123,456 rows 12.3 MB 100/256 ranges 25,000 rows/s 3.2 MB/s
/// ETA 0:42" (tty) or "progress: 45% rows=123456 MB=12.3 ranges=100/256 rows/s=25000 MB/s=3.2
/// eta=42s" (lines). ETA from the share of ranges done. Replay: "[####......] 45% 1,234/2,742
/// writes 0.1 MB 2,000 writes/s ETA 0:01" or "progress: 45% writes=1234/2742 MB=0.1
/// writes/s=2000 retries=0 eta=1s".
std::string progress_line(const ProgressSnapshot& s, bool tty, int width = 24);
/// 1234567 → "1,234,567".
std::string thousands(uint64_t n);

}  // namespace zdm::data
