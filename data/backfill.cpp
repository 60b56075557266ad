// zdm-data backfill: every token range of every table scanned on origin (writetime() and ttl()
// of each cell), each row written to target with USING TIMESTAMP and USING TTL per group of
// cells written together (rows.h plan_writes), ranges recorded in the checkpoint as they
// complete.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include "data/async.h"
#include "data/checkpoint.h"
#include "data/commands.h"
#include "data/job.h"
#include "data/range_job.h"
#include "data/rows.h"

namespace zdm::data {

namespace {

// Ranges per thread whose writes may still drain while others are scanned.
constexpr std::size_t kDrainingRanges = 64;

struct Prepared {
  std::shared_ptr<Statement> scan, insert_row, update_row, update_statics, add_counters,
      add_static_counters, read_row, read_partition;
};

// What one range's writes share: they finish before the range is recorded.
struct RangeState {
  explicit RangeState(asio::io_context& ioc) : group(ioc) {}
  WaitGroup group;
  bool failed = false;
  std::string error;
  void fail(const std::string& why) {
    if (!failed) error = why;
    failed = true;
  }
};

class Backfill : public RangeJob {
 public:
  Backfill(Setup& s, Checkpoint& cp, WorkQueue& work, Stats& stats, RateLimiter& rate)
      : RangeJob(s, work, stats, rate), cp_(cp) {}

  std::string first_range_error() {
    std::lock_guard lock(mu_);
    return first_range_error_;
  }

 private:
  struct Worker {
    asio::io_context& ioc;
    Session& origin;
    Session& target;
    Semaphore& writes;
    Semaphore& draining;  // ranges scanned whose writes are still in flight
    WaitGroup& finishing;
    std::vector<Prepared> prepared;
  };

  awaitable<void> thread_main(asio::io_context& ioc, int) override {
    Session origin(ioc, s_.origin_config, s_.origin, retry_hook(stats_, "origin"));
    Session target(ioc, s_.target_config, s_.target, retry_hook(stats_, "target"));
    Semaphore writes(ioc, static_cast<std::size_t>(s_.options.concurrency));
    Semaphore draining(ioc, kDrainingRanges);
    WaitGroup finishing(ioc);
    Worker w{ioc, origin, target, writes, draining, finishing, {}};
    if (!co_await prepared(prepare_tables(w))) co_return;
    co_await run_range_workers(ioc, [this, &w](const WorkItem& item) { return copy(w, item); });
    co_await finishing.wait();
    origin.close();
    target.close();
  }

  awaitable<void> prepare_tables(Worker& w) {
    for (const auto& t : s_.tables) {
      Prepared p;
      const auto& st = t.statements;
      p.scan = co_await w.origin.prepare(st.scan);
      if (t.schema.counter_table()) {
        if (!st.add_counters.empty()) p.add_counters = co_await w.target.prepare(st.add_counters);
        if (!st.add_static_counters.empty())
          p.add_static_counters = co_await w.target.prepare(st.add_static_counters);
        p.read_row = co_await w.target.prepare(st.read_row);
        p.read_partition = co_await w.target.prepare(st.read_partition);
      } else {
        p.insert_row = co_await w.target.prepare(st.insert_row);
        if (!st.update_row.empty()) p.update_row = co_await w.target.prepare(st.update_row);
        if (!st.update_statics.empty())
          p.update_statics = co_await w.target.prepare(st.update_statics);
      }
      w.prepared.push_back(std::move(p));
    }
  }

  // Scans one range; its writes drain in the background (its finisher records it), so a write
  // waiting out a retry backoff does not hold up the next scan.
  awaitable<void> copy(Worker& w, const WorkItem& item) {
    co_await w.draining.acquire();
    auto rs = std::make_shared<RangeState>(w.ioc);
    auto done = std::make_shared<std::pair<uint64_t, uint64_t>>(0, 0);  // rows, bytes
    if (auto error = co_await attempt(copy_range(w, s_.tables[item.table], w.prepared[item.table],
                                                 item.range, *rs, done->first, done->second)))
      rs->fail(*error);
    w.finishing.add();
    asio::co_spawn(w.ioc, finish(item, rs, done), [&w](std::exception_ptr e) {
      log_exception(e, "range finisher");
      w.draining.release();
      w.finishing.done();
    });
  }

  // Waits for a range's writes, then records it in the checkpoint (or counts it failed).
  awaitable<void> finish(WorkItem item, std::shared_ptr<RangeState> rs,
                         std::shared_ptr<std::pair<uint64_t, uint64_t>> done) {
    co_await rs->group.wait();
    const TableJob& t = s_.tables[item.table];
    if (rs->failed) {
      stats_.ranges_failed.inc();
      spdlog::warn("{} {}: {}", t.schema.name(), to_string(item.range), rs->error);
      std::lock_guard lock(mu_);
      if (first_range_error_.empty()) first_range_error_ = rs->error;
      co_return;
    }
    cp_.record(t.schema.name(), item.range, done->first, done->second);
    stats_.ranges_done.inc();
  }

  awaitable<void> copy_range(Worker& w, const TableJob& t, const Prepared& p, TokenRange range,
                             RangeState& rs, uint64_t& rows, uint64_t& bytes) {
    const Layout& l = t.layout;
    std::optional<Bytes> paging;
    Bytes last_partition;
    bool first_partition = true;
    do {
      Page page = co_await scan_page(w.origin, *p.scan, l, range, paging, true);
      const int32_t read_at = now_s();
      rows += page.rows();
      bytes += page.value_bytes();
      co_await throttle(w.ioc, page);
      for (std::size_t i = 0; i < page.rows() && !rs.failed; ++i) {
        RowView row = page.row(i);
        if (!row[l.token]) continue;
        const int64_t token = read_bigint(*row[l.token]);
        const bool only_statics = statics_only(t.schema, l, row);
        bool new_partition = false;
        if (t.schema.has_statics()) {
          RowKey k = row_key(t.schema, l, row, true);
          new_partition = first_partition || k.partition != last_partition;
          if (new_partition) last_partition = std::move(k.partition);
          first_partition = false;
        }
        if (t.schema.counter_table()) {
          co_await w.writes.acquire();
          rs.group.add();
          asio::co_spawn(w.ioc, copy_counters(w, t, p, own(row), !only_statics, new_partition, rs),
                         [&w, &rs](std::exception_ptr e) {
                           log_exception(e, "counter copy");
                           w.writes.release();
                           rs.group.done();
                         });
          stats_.written_rows.inc();
          continue;
        }
        if (new_partition)
          for (const auto& g : plan_writes(t.schema, l, row, true, s_.started_us))
            co_await write(w, *p.update_statics, t, row, g, token, read_at, rs);
        if (!only_statics)
          for (const auto& g : plan_writes(t.schema, l, row, false, s_.started_us))
            co_await write(w,
                           g.kind == WriteGroup::Kind::kInsertRow ? *p.insert_row : *p.update_row,
                           t, row, g, token, read_at, rs);
        stats_.written_rows.inc();
      }
      paging = page.paging_state();
    } while (paging && !rs.failed);
  }

  // Spawns one write (after a permit of the per-thread concurrency limit).
  awaitable<void> write(Worker& w, Statement& stmt, const TableJob& t, RowView row,
                        const WriteGroup& g, int64_t token, int32_t read_at, RangeState& rs) {
    std::size_t ttl_slot = 0;
    Call c;
    c.values = bind_group(t.schema, t.layout, row, g, ttl_slot);
    c.routing_token = token;
    // The TTL counts down from the read: each attempt sends what is left, none once it is up.
    if (g.ttl > 0) count_down_ttl(c, ttl_slot, static_cast<int64_t>(read_at) + g.ttl);
    co_await w.writes.acquire();
    rs.group.add();
    asio::co_spawn(
        w.ioc,
        [this, &w, &stmt, c = std::move(c), &rs]() mutable -> awaitable<void> {
          try {
            auto r = co_await w.target.execute(stmt, std::move(c));
            if (r) {
              stats_.statements.inc();
            } else {
              stats_.expired_cells.inc();
            }
          } catch (const RequestError& e) {
            rs.fail(e.what());
            if (e.code && !retryable(*e.code)) fatal(e.what());
          }
        },
        [&w, &rs](std::exception_ptr e) {
          if (e) {
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& ex) {
              rs.fail(ex.what());
            }
          }
          w.writes.release();
          rs.group.done();
        });
  }

  // Counter cells (no writetime, not idempotent): added only where target has no value yet.
  // A failed increment is not repeated blindly: target is read again first.
  awaitable<void> copy_counters(Worker& w, const TableJob& t, const Prepared& p, OwnedRow owned,
                                bool regular, bool statics, RangeState& rs) {
    const Layout& l = t.layout;
    auto cells = view(owned);
    RowView row(cells);
    const int64_t token = read_bigint(*row[l.token]);
    for (bool scope_statics : {true, false}) {
      if (scope_statics ? !statics : !regular) continue;
      Statement* add = scope_statics ? p.add_static_counters.get() : p.add_counters.get();
      if (!add) continue;
      const std::size_t from = scope_statics ? 0 : t.schema.static_count;
      const std::size_t to = scope_statics ? t.schema.static_count : t.schema.values.size();
      for (int attempt = 0;; ++attempt) {
        Call read;
        read.values = key_values(t.schema, l, row, !scope_statics);
        read.routing_token = token;
        Page current = co_await w.target.select(scope_statics ? *p.read_partition : *p.read_row,
                                                std::move(read));
        Call c;
        c.routing_token = token;
        c.idempotent = false;
        bool any = false;
        for (std::size_t v = from; v < to; ++v) {
          const Cell& o = row[l.values + v];
          Cell there = current.rows() ? current.row(0)[l.values + v] : Cell{};
          if (o && !there) {
            c.values.push_back(cql::Value::of(Bytes(o->begin(), o->end())));
            any = true;
          } else {
            if (o && attempt == 0) stats_.counter_cells_skipped.inc();
            c.values.push_back(cql::Value::unset());
          }
        }
        if (!any) break;
        for (auto& k : key_values(t.schema, l, row, !scope_statics))
          c.values.push_back(std::move(k));
        try {
          co_await w.target.execute(*add, std::move(c));
          stats_.statements.inc();
          break;
        } catch (const RequestError& e) {
          if ((e.code && !retryable(*e.code)) || attempt + 1 >= s_.target_config.max_attempts) {
            rs.fail(e.what());
            co_return;
          }
          stats_.retries("target", "counter").inc();
        }
        co_await pause(w.ioc, s_.target_config.backoff_min * (1 << std::min(attempt, 5)));
      }
    }
  }

  Checkpoint& cp_;
  std::string first_range_error_;  // guarded by mu_
};

std::string job_id(const Setup& s) {
  return "keyspace=" + s.options.keyspace + " origin=" + s.origin.cluster_name +
         " target=" + s.target.cluster_name;
}

// The checkpoint of this keyspace and pair of clusters (emptied first with --restart). Throws
// JobError (code 2) if it cannot be read or belongs to another job.
std::unique_ptr<Checkpoint> open_checkpoint(const Options& o, const Setup& s) {
  if (!o.resume) std::filesystem::remove(o.checkpoint);
  try {
    return std::make_unique<Checkpoint>(o.checkpoint, job_id(s));
  } catch (const CheckpointError& e) {
    throw JobError(2, e.what());
  }
}

// The ranges still to copy: every range of every table but the parts the checkpoint has done.
struct Plan {
  std::vector<WorkItem> items;
  std::size_t skipped = 0;   // ranges done by earlier runs
  uint64_t rows_before = 0;  // rows copied by earlier runs
};

Plan plan(const Setup& s, const Checkpoint& cp) {
  Plan p;
  for (std::size_t ti = 0; ti < s.tables.size(); ++ti) {
    const std::string name = s.tables[ti].schema.name();
    auto done = cp.previous().done.find(name);
    if (auto r = cp.previous().rows.find(name); r != cp.previous().rows.end())
      p.rows_before += r->second;
    for (const auto& r : s.ranges) {
      if (done == cp.previous().done.end()) {
        p.items.push_back({ti, r});
        continue;
      }
      auto missing = done->second.missing(r);
      if (missing.empty()) ++p.skipped;
      for (const auto& m : missing) p.items.push_back({ti, m});
    }
  }
  return p;
}

void print_start(const Setup& s, const Plan& p) {
  const Options& o = s.options;
  std::printf(
      "zdm-data backfill: keyspace %s, tables %s; origin '%s' (%zu nodes, protocol v%d) -> "
      "target '%s' (%zu nodes, protocol v%d)\n",
      o.keyspace.c_str(), table_names(s).c_str(), s.origin.cluster_name.c_str(),
      s.origin.nodes.size(), s.origin.version, s.target.cluster_name.c_str(), s.target.nodes.size(),
      s.target.version);
  std::printf(
      "%zu token ranges per table, %zu to copy, %zu already done (checkpoint %s%s)\n",
      s.ranges.size(), p.items.size(), p.skipped, o.checkpoint.c_str(),
      p.skipped ? (", " + thousands(p.rows_before) + " rows copied by earlier runs").c_str() : "");
  std::fflush(stdout);
}

void print_summary(Stats& stats, double secs, std::size_t skipped) {
  const uint64_t rows = stats.origin_rows.value(), bytes = stats.origin_bytes.value();
  std::string retries;
  {
    std::lock_guard lock(stats.retry_mu);
    for (const auto& [k, n] : stats.retry_reasons)
      retries += (retries.empty() ? "" : ", ") + k + " " + std::to_string(n);
  }
  std::printf(
      "backfill: %s rows (%.1f MB) in %.1f s: %s rows/s, %.2f MB/s; %s write statements; "
      "ranges: %llu done, %llu failed, %zu skipped (done earlier); %llu writes dropped as "
      "expired; %llu counter cells skipped (target had a value); retries: %llu%s\n",
      thousands(rows).c_str(), bytes / 1e6, secs,
      thousands(static_cast<uint64_t>(secs > 0 ? rows / secs : 0)).c_str(),
      secs > 0 ? bytes / 1e6 / secs : 0.0, thousands(stats.statements.value()).c_str(),
      static_cast<unsigned long long>(stats.ranges_done.value()),
      static_cast<unsigned long long>(stats.ranges_failed.value()), skipped,
      static_cast<unsigned long long>(stats.expired_cells.value()),
      static_cast<unsigned long long>(stats.counter_cells_skipped.value()),
      static_cast<unsigned long long>(stats.total_retries()),
      retries.empty() ? "" : (" (" + retries + ")").c_str());
  std::fflush(stdout);
}

// 0 when every range is copied; 1, with the reason on stderr, otherwise.
int exit_code(Backfill& job, const Stats& stats, const WorkQueue& work) {
  if (auto f = job.fatal_error(); !f.empty()) {
    std::fprintf(stderr, "zdm-data: backfill stopped: %s\n", f.c_str());
    return 1;
  }
  const uint64_t left = work.size() - stats.ranges_done.value();
  if (stats.ranges_failed.value() > 0 || left > 0) {
    std::fprintf(stderr,
                 "zdm-data: %llu token ranges not copied (%llu failed%s); run the same command "
                 "again to copy them (done ranges are skipped)\n",
                 static_cast<unsigned long long>(left),
                 static_cast<unsigned long long>(stats.ranges_failed.value()),
                 job.first_range_error().empty() ? "" : (": " + job.first_range_error()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int run_backfill(const Options& o) {
  Setup s = prepare(o);
  std::unique_ptr<Checkpoint> cp = open_checkpoint(o, s);
  Plan p = plan(s, *cp);
  print_start(s, p);
  metrics::Registry registry;
  Stats stats(registry);
  stats.ranges_total.set(static_cast<int64_t>(p.items.size()));
  stats.ranges_skipped.inc(p.skipped);
  RateLimiter rate(o.rate_rows, o.rate_mb * 1e6);
  WorkQueue work(std::move(p.items));
  Backfill job(s, *cp, work, stats, rate);
  const auto started = std::chrono::steady_clock::now();
  job.run(registry, [&]() { return progress_of(stats, work); });
  cp->flush();
  print_summary(stats, seconds_since(started), p.skipped);
  return exit_code(job, stats, work);
}

}  // namespace zdm::data
