#include "proxy/target_guard.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "proxy/control_connection.h"

namespace zdm::proxy {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
/// In proxy_journal_dir while target is disabled at runtime: {"by", "at_ms"}.
constexpr const char* kDisabledFile = "target-disabled";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

TargetGuard::TargetGuard(const Config& config, ProxyMetrics& metrics, ControlConnection& target_cc)
    : config_(config),
      metrics_(metrics),
      target_cc_(target_cc),
      isolate_(config.target_failure_mode == TargetFailureMode::kIsolate &&
               config.primary_cluster == Cluster::kOrigin) {
  auto& r = metrics.registry();
  const std::string p = config.metrics_prefix + "_";
  enabled_gauge_ = &r.gauge(p + "target_enabled",
                            "1 while the proxy sends to target, 0 while target is disabled at "
                            "runtime (POST /api/v1/target/disable)");
  isolated_gauge_ = &r.gauge(p + "proxy_target_isolated",
                             "1 while the circuit breaker holds writes to target back "
                             "(target_failure_mode isolate), else 0");
  journal_bytes_ = &r.gauge(p + "proxy_journal_bytes",
                            "Bytes of the write journal this proxy process holds on disk");
  journal_full_ =
      &r.gauge(p + "proxy_journal_full",
               "1 while the write journal takes no more writes (proxy_journal_max_bytes "
               "reached, or an I/O error): writes get target_failure_mode fail");
  journal_full_writes_ =
      &r.counter(p + "proxy_journal_full_writes_total",
                 "Writes that should have been journaled but the journal was full or broken: "
                 "sent to target as in target_failure_mode fail");
  enabled_gauge_->set(1);
  if (config.target_failure_mode == TargetFailureMode::kIsolate && !isolate_)
    spdlog::warn(
        "target_failure_mode isolate has no effect while primary_cluster is TARGET: target is "
        "the source of truth, its failures fail the client's request");
  if (config.proxy_journal_dir.empty()) return;
  const fs::path dir(config.proxy_journal_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw std::runtime_error("proxy_journal_dir " + dir.string() +
                             ": cannot create it: " + ec.message());
  const auto left = journal::prune(dir);
  if (left.unsettled || left.torn)
    spdlog::warn(
        "The write journal in {} holds {} writes of earlier runs that target may not have ({} "
        "bytes, {} torn segments): run `zdm-data replay --journal {}`",
        dir.string(), left.unsettled, left.bytes, left.torn, dir.string());
  budget_ =
      std::make_shared<journal::Budget>(static_cast<uint64_t>(config.proxy_journal_max_bytes));
  budget_->earlier = left.bytes;
  run_ms_ = now_ms();
  // The switch outlives a restart (a rolling update while target is disabled must not send it
  // writes again).
  if (std::ifstream in(dir / kDisabledFile); in) {
    std::string why((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    enabled_ = false;
    enabled_gauge_->set(0);
    spdlog::warn(
        "Target stays disabled, as it was before this start ({}: {}): writes go to origin only "
        "and are journaled until POST /api/v1/target/enable",
        (dir / kDisabledFile).string(), why);
  }
  if (config.proxy_journal_fsync_interval_ms > 0)
    syncer_ = std::jthread([this](std::stop_token stop) { sync_loop(stop); });
}

TargetGuard::~TargetGuard() {
  if (syncer_.joinable()) {
    syncer_.request_stop();
    syncer_.join();
  }
  for (int fd : sync_fds_) ::close(fd);
  for (int fd : retired_fds_) ::close(fd);
}

void TargetGuard::sync_loop(std::stop_token stop) {
  const auto every = std::chrono::milliseconds(config_.proxy_journal_fsync_interval_ms);
  std::mutex m;
  std::condition_variable_any cv;
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(m);
      cv.wait_for(lock, stop, every, [] { return false; });
    }
    std::vector<int> fds, retired;
    {
      std::lock_guard lock(sync_mu_);
      fds = sync_fds_;
      retired.swap(retired_fds_);
    }
    for (int fd : fds)
      if (::fdatasync(fd) != 0 && !broken_.exchange(true))
        spdlog::error(
            "The write journal cannot be synced to disk (fdatasync: {}): it takes no more "
            "writes; writes get target_failure_mode fail",
            std::strerror(errno));
    for (int fd : retired) {
      ::fdatasync(fd);
      ::close(fd);
    }
  }
}

void TargetGuard::watch_fd(const journal::Writer& w, int& watched_segment, int& watched) {
  // A new segment (the descriptor's number may be the old one's: compare the segment).
  if (w.segment_index() == watched_segment || w.fd() < 0 || !syncer_.joinable()) return;
  watched_segment = w.segment_index();
  const int dup = ::fcntl(w.fd(), F_DUPFD_CLOEXEC, 0);
  std::lock_guard lock(sync_mu_);
  if (watched >= 0) {
    auto it = std::find(sync_fds_.begin(), sync_fds_.end(), watched);
    if (it != sync_fds_.end()) {
      retired_fds_.push_back(*it);
      sync_fds_.erase(it);
    }
  }
  watched = dup;
  if (dup >= 0) sync_fds_.push_back(dup);
}

std::optional<journal::Reason> TargetGuard::held_back() {
  if (!enabled_.load(std::memory_order_relaxed)) return journal::Reason::kTargetDisabled;
  if (!open_.load(std::memory_order_relaxed)) return std::nullopt;
  std::lock_guard lock(circuit_mu_);
  const auto now = Clock::now();
  if (now - last_probe_ >= std::chrono::milliseconds(config_.target_circuit_probe_interval_ms)) {
    last_probe_ = now;
    if (target_cc_.connected()) {
      // The probe: target's control connection is up again. Writes go to target; one more
      // failure within the window opens the circuit again.
      open_ = false;
      failures_ = config_.target_circuit_failures - 1;
      window_start_ = now;
      spdlog::warn("Target answers again: writes go to target again (circuit closed after {} s)",
                   std::chrono::duration_cast<std::chrono::seconds>(now - opened_at_).count());
      return std::nullopt;
    }
  }
  return journal::Reason::kCircuitOpen;
}

void TargetGuard::target_failed() {
  if (!isolate_) return;
  std::lock_guard lock(circuit_mu_);
  const auto now = Clock::now();
  if (open_) return;
  if (now - window_start_ > std::chrono::milliseconds(config_.target_circuit_window_ms)) {
    window_start_ = now;
    failures_ = 0;
  }
  if (++failures_ < config_.target_circuit_failures) return;
  open_ = true;
  opened_at_ = last_probe_ = now;
  spdlog::warn(
      "{} target write failures within {} ms: writes are journaled without going to target "
      "until it answers again (probed every {} ms)",
      failures_, config_.target_circuit_window_ms, config_.target_circuit_probe_interval_ms);
}

std::optional<std::string> TargetGuard::set_enabled(bool on, const std::string& by) {
  const std::string who = by.empty() ? "an unnamed caller" : by;
  if (!on) {
    if (config_.primary_cluster == Cluster::kTarget)
      return std::string(
          "target is the primary cluster (primary_cluster: TARGET): it is the source of truth "
          "and cannot be disabled");
    if (!budget_)
      return std::string(
          "no write journal is configured (proxy_journal_dir): the writes target would miss "
          "could not be put back");
  }
  if (budget_) {
    // Kept across restarts in the journal's directory (written whole, then renamed).
    const fs::path file = fs::path(config_.proxy_journal_dir) / kDisabledFile;
    std::error_code ec;
    if (on) {
      fs::remove(file, ec);
    } else {
      const fs::path tmp = file.string() + ".tmp";
      nlohmann::json j;
      j["by"] = who;
      j["at_ms"] = now_ms();
      { std::ofstream(tmp) << j.dump() << "\n"; }
      fs::rename(tmp, file, ec);
    }
    if (ec)
      return "cannot record the switch in " + file.string() + ": " + ec.message() +
             " (it would not survive a restart)";
  }
  const bool was = enabled_.exchange(on);
  enabled_gauge_->set(on ? 1 : 0);
  if (was != on)
    spdlog::warn("Target {} at runtime by {}{}", on ? "enabled" : "disabled", who,
                 on ? ": writes go to target again; replay the journal with `zdm-data replay`"
                    : ": writes go to origin only and are journaled; mirrored reads pause");
  else
    spdlog::warn("Target {} requested by {}: it already was", on ? "enable" : "disable", who);
  return std::nullopt;
}

std::string TargetGuard::state_json() {
  nlohmann::json j;
  j["enabled"] = enabled();
  j["primary_cluster"] = config_.primary_cluster == Cluster::kOrigin ? "ORIGIN" : "TARGET";
  j["target_failure_mode"] =
      config_.target_failure_mode == TargetFailureMode::kIsolate ? "isolate" : "fail";
  j["isolated"] = open_.load();
  nlohmann::json jr;
  jr["dir"] = config_.proxy_journal_dir;
  uint64_t bytes = 0, unsettled = 0;
  if (budget_) {
    // What is on disk now (a replay deletes segments, and checkpoints the ones it keeps): every
    // run's segments, read from their replay marks; `unsettled` is what is still to replay.
    const auto s = journal::summarize(config_.proxy_journal_dir);
    bytes = s.bytes;
    unsettled = s.unsettled;
    jr["torn_segments"] = s.torn;
    jr["full"] = journal_full_->value() != 0;
  }
  jr["bytes"] = bytes;
  jr["unsettled"] = unsettled;
  j["journal"] = jr;
  return j.dump();
}

namespace {
/// This worker thread's journal: its writer, the io_context its flushes are queued on, whether
/// one is queued, the segment the sync thread watches.
struct WorkerJournal {
  const void* owner = nullptr;
  std::unique_ptr<journal::Writer> writer;
  asio::io_context* ioc = nullptr;
  bool flush_posted = false;
  int watched_segment = 0;  // the writer's segment the sync thread has a descriptor of
  int watched = -1;         // that descriptor (a dup)
};
thread_local WorkerJournal worker_journal;
}  // namespace

journal::Writer* TargetGuard::writer() {
  WorkerJournal& wj = worker_journal;
  if (!wj.writer || wj.owner != this) {
    const uint64_t segment = std::clamp<uint64_t>(budget_->max_bytes / 16, 1 << 16, 64 << 20);
    wj = WorkerJournal{};
    wj.writer = std::make_unique<journal::Writer>(config_.proxy_journal_dir, run_ms_,
                                                  next_worker_++, budget_, segment);
    wj.owner = this;
  }
  return wj.writer.get();
}

void TargetGuard::post_flush() {
  // One flush per batch of records, queued before the frames this worker sends next.
  WorkerJournal& wj = worker_journal;
  if (wj.flush_posted || !wj.ioc) return;
  wj.flush_posted = true;
  journal::Writer* w = wj.writer.get();
  asio::post(*wj.ioc, [this, w] {
    worker_journal.flush_posted = false;
    flush_writer(*w);
  });
}

void TargetGuard::flush_writer(journal::Writer& w) {
  try {
    // Interval 0: synced before the frames queued after these appends go out (group commit).
    if (config_.proxy_journal_fsync_interval_ms == 0)
      w.sync();
    else
      w.flush();
  } catch (const std::exception& e) {
    if (!broken_.exchange(true))
      spdlog::error(
          "The write journal failed ({}): it takes no more writes; writes get "
          "target_failure_mode fail until the proxy restarts",
          e.what());
  }
}

std::optional<uint64_t> TargetGuard::append(journal::WriteParts& w, asio::io_context& ioc) {
  if (!budget_ || broken_.load(std::memory_order_relaxed)) {
    journal_full_writes_->inc();
    return std::nullopt;
  }
  journal::Writer* jw = writer();
  w.journaled_at_ms = now_ms();
  std::optional<uint64_t> seq;
  try {
    seq = jw->append(w);
    if (!seq) {
      // Full: a replay may have deleted segments since.
      jw->reclaim_deleted();
      seq = jw->append(w);
    }
  } catch (const std::exception& e) {
    if (!broken_.exchange(true))
      spdlog::error("The write journal failed ({}): it takes no more writes", e.what());
  }
  if (!seq) {
    journal_full_writes_->inc();
    journal_full_->set(1);
    const auto now = Clock::now();
    std::lock_guard lock(series_mu_);
    if (now - last_full_log_ >= std::chrono::seconds(10)) {
      last_full_log_ = now;
      spdlog::error(
          "The write journal in {} is full ({} of proxy_journal_max_bytes {}): writes get "
          "target_failure_mode fail until a replay frees it (`zdm-data replay`)",
          config_.proxy_journal_dir, budget_->used(), budget_->max_bytes);
    }
    return std::nullopt;
  }
  journaled_++;
  worker_journal.ioc = &ioc;
  watch_fd(*jw, worker_journal.watched_segment, worker_journal.watched);
  post_flush();
  return seq;
}

void TargetGuard::settle(uint64_t seq, journal::Settlement how) {
  if (!budget_) return;
  try {
    writer()->settle(seq, how);
    journaled_--;
    post_flush();  // a settlement left in the buffer would read as a write to replay
  } catch (const std::exception& e) {
    spdlog::error("The write journal failed to settle write {}: {}", seq, e.what());
  }
}

std::string TargetGuard::label_value(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void TargetGuard::missed(const std::string& table, journal::Reason why) {
  const auto dot = table.find('.');
  const std::string ks = dot == std::string::npos ? "" : table.substr(0, dot);
  const std::string tb = dot == std::string::npos ? table : table.substr(dot + 1);
  const std::string labels = "keyspace=\"" + label_value(ks) + "\",table=\"" + label_value(tb) +
                             "\",reason=\"" + std::string(journal::reason_name(why)) + "\"";
  std::lock_guard lock(series_mu_);
  auto& c = series_["d" + labels];
  if (!c)
    c = &metrics_.registry().counter(
        config_.metrics_prefix + "_proxy_target_divergence_writes_total",
        "Writes target missed that the journal holds for replay, by table and reason", labels);
  c->inc();
}

void TargetGuard::unjournaled(const std::string& table, const char* kind) {
  const auto dot = table.find('.');
  const std::string ks = dot == std::string::npos ? "" : table.substr(0, dot);
  const std::string tb = dot == std::string::npos ? table : table.substr(dot + 1);
  const std::string labels = "keyspace=\"" + label_value(ks) + "\",table=\"" + label_value(tb) +
                             "\",kind=\"" + kind + "\"";
  std::lock_guard lock(series_mu_);
  auto& c = series_["u" + labels];
  if (!c)
    c = &metrics_.registry().counter(
        config_.metrics_prefix + "_proxy_target_unjournaled_writes_total",
        "Writes target did not get that cannot be journaled (lightweight transactions, counter "
        "updates, schema changes): backfill and validate these tables",
        labels);
  c->inc();
}

void TargetGuard::update_gauges() {
  isolated_gauge_->set(open_.load() ? 1 : 0);
  enabled_gauge_->set(enabled() ? 1 : 0);
  if (!budget_) return;
  // Earlier runs' segments: what a replay left of them.
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "%013lld-", static_cast<long long>(run_ms_));
  uint64_t earlier = 0;
  for (const auto& seg : journal::list_segments(config_.proxy_journal_dir)) {
    if (seg.filename().string().rfind(prefix, 0) == 0) continue;
    std::error_code ec;
    const auto n = fs::file_size(seg, ec);
    if (!ec) earlier += n;
  }
  budget_->earlier = earlier;
  journal_bytes_->set(static_cast<int64_t>(budget_->used()));
  if (!broken_ && budget_->used() + (1 << 16) < budget_->max_bytes) journal_full_->set(0);
  if (broken_) journal_full_->set(1);
}

}  // namespace zdm::proxy
