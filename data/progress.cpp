#include "data/progress.h"

#include <fmt/format.h>

#include <algorithm>

namespace zdm::data {

std::chrono::nanoseconds RateLimiter::take(uint64_t rows, uint64_t bytes, Clock::time_point now) {
  if (!limited()) return std::chrono::nanoseconds(0);
  double cost = 0;
  if (rows_ > 0) cost = std::max(cost, static_cast<double>(rows) / rows_);
  if (bytes_ > 0) cost = std::max(cost, static_cast<double>(bytes) / bytes_);
  std::lock_guard lock(mu_);
  // Idle time earns no credit beyond a tenth of a second of burst.
  const auto burst = std::chrono::milliseconds(100);
  if (!started_ || next_ < now - burst) next_ = now - burst;
  started_ = true;
  const auto start = next_;
  next_ += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cost));
  return start > now ? std::chrono::duration_cast<std::chrono::nanoseconds>(start - now)
                     : std::chrono::nanoseconds(0);
}

namespace {
metrics::Counter& cluster_counter(metrics::Registry& r, const char* name, const char* help,
                                  const char* cluster) {
  return r.counter(name, help, std::string("cluster=\"") + cluster + "\"");
}
}  // namespace

Stats::Stats(metrics::Registry& r)
    : origin_rows(cluster_counter(r, "zdm_data_rows_read_total", "Rows read by token range scans",
                                  "origin")),
      origin_bytes(cluster_counter(r, "zdm_data_bytes_read_total",
                                   "Bytes of cell values read by token range scans", "origin")),
      target_rows(cluster_counter(r, "zdm_data_rows_read_total", "Rows read by token range scans",
                                  "target")),
      target_bytes(cluster_counter(r, "zdm_data_bytes_read_total",
                                   "Bytes of cell values read by token range scans", "target")),
      written_rows(r.counter("zdm_data_rows_written_total", "Rows written to target")),
      statements(r.counter("zdm_data_write_statements_total",
                           "Write statements executed on target (one per writetime/TTL group)")),
      expired_cells(r.counter("zdm_data_expired_writes_total",
                              "Writes dropped because their TTL ran out before they were sent")),
      counter_cells_skipped(
          r.counter("zdm_data_counter_cells_skipped_total",
                    "Counter cells not copied because target already has a value")),
      ranges_done(r.counter("zdm_data_ranges_done_total", "Token ranges completed")),
      ranges_failed(
          r.counter("zdm_data_ranges_failed_total", "Token ranges that failed after every retry")),
      ranges_skipped(r.counter("zdm_data_ranges_skipped_total",
                               "Token ranges skipped as done by an earlier run (checkpoint)")),
      ranges_total(r.gauge("zdm_data_ranges", "Token ranges this run covers")),
      only_origin(r.counter("zdm_data_differences_total", "Differences found by validate",
                            "kind=\"only_origin\"")),
      only_target(r.counter("zdm_data_differences_total", "Differences found by validate",
                            "kind=\"only_target\"")),
      differing(r.counter("zdm_data_differences_total", "Differences found by validate",
                          "kind=\"differing\"")),
      repaired(r.counter("zdm_data_repaired_total", "Rows repaired on target by validate")),
      registry(r) {}

metrics::Counter& Stats::retries(const std::string& cluster, const std::string& reason) {
  retries_.fetch_add(1);
  {
    std::lock_guard lock(retry_mu);
    ++retry_reasons[cluster + " " + reason];
  }
  return registry.counter("zdm_data_retries_total", "Requests retried, by cluster and reason",
                          "cluster=\"" + cluster + "\",reason=\"" + reason + "\"");
}

std::string thousands(uint64_t n) {
  std::string s = std::to_string(n), out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string progress_line(const ProgressSnapshot& s, bool tty, int width) {
  const double frac = s.ranges_total ? static_cast<double>(s.ranges_done) / s.ranges_total : 1.0;
  const double rate = s.seconds > 0 ? s.rows / s.seconds : 0;
  const double mbs = s.seconds > 0 ? s.bytes / 1e6 / s.seconds : 0;
  std::string eta = "?";
  long eta_s = -1;
  if (frac > 0 && frac < 1) eta_s = static_cast<long>(s.seconds * (1 - frac) / frac);
  if (frac >= 1) eta_s = 0;
  if (eta_s >= 0) eta = fmt::format("{}:{:02}", eta_s / 60, eta_s % 60);
  if (s.replay) {
    const double wps = s.seconds > 0 ? s.ranges_done / s.seconds : 0;
    if (tty) {
      int filled = static_cast<int>(frac * width);
      std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                        std::string(static_cast<std::size_t>(width - filled), '.');
      return fmt::format("[{}] {:3.0f}% {}/{} writes {:.1f} MB {} writes/s ETA {}{}", bar,
                         frac * 100, thousands(s.ranges_done), thousands(s.ranges_total),
                         s.bytes / 1e6, thousands(static_cast<uint64_t>(wps)), eta,
                         s.retries ? fmt::format(" {} retries", thousands(s.retries)) : "");
    }
    return fmt::format("progress: {:.0f}% writes={}/{} MB={:.1f} writes/s={:.0f} retries={} eta={}",
                       frac * 100, s.ranges_done, s.ranges_total, s.bytes / 1e6, wps, s.retries,
                       eta_s >= 0 ? std::to_string(eta_s) + "s" : "?");
  }
  if (tty) {
    int filled = static_cast<int>(frac * width);
    std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                      std::string(static_cast<std::size_t>(width - filled), '.');
    std::string extra;
    if (s.validate) extra += fmt::format(" {} differences", thousands(s.differences));
    if (s.retries) extra += fmt::format(" {} retries", thousands(s.retries));
    return fmt::format(
        "[{}] {:3.0f}% {} rows {:.1f} MB {}/{} ranges {} rows/s {:.1f} MB/s ETA {}{}", bar,
        frac * 100, thousands(s.rows), s.bytes / 1e6, s.ranges_done, s.ranges_total,
        thousands(static_cast<uint64_t>(rate)), mbs, eta, extra);
  }
  std::string extra;
  if (s.validate) extra += fmt::format(" differences={}", s.differences);
  return fmt::format(
      "progress: {:.0f}% rows={} MB={:.1f} ranges={}/{} rows/s={:.0f} MB/s={:.2f} retries={} "
      "eta={}{}",
      frac * 100, s.rows, s.bytes / 1e6, s.ranges_done, s.ranges_total, rate, mbs, s.retries,
      eta_s >= 0 ? std::to_string(eta_s) + "s" : "?", extra);
}

}  // namespace zdm::data
