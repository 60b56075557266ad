// zdm-data validate: both clusters scanned by the same token ranges (all, or --sample), rows
// matched by primary key as they stream in (a row is compared once both scans have passed its
// token), each difference read again from both clusters before it counts (a write in flight
// between the two scans is not a difference), then reported and, with --repair, fixed on target
// with origin's write times and checked once more.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "data/async.h"
#include "data/commands.h"
#include "data/job.h"
#include "data/journal_check.h"
#include "data/range_job.h"
#include "data/rows.h"

namespace zdm::data {

namespace {

enum class DiffKind { kOnlyOrigin, kOnlyTarget, kDiffering };

const char* kind_name(DiffKind k) {
  switch (k) {
    case DiffKind::kOnlyOrigin:
      return "only_origin";
    case DiffKind::kOnlyTarget:
      return "only_target";
    case DiffKind::kDiffering:
      return "differing";
  }
  return "?";
}

struct Example {
  DiffKind kind;
  std::string key;
  std::vector<ColumnDiff> columns;
  std::string outcome;  // "", "repaired", "not repaired: ..."
};

struct TableReport {
  uint64_t origin_rows = 0, target_rows = 0;
  uint64_t only_origin = 0, only_target = 0, differing = 0;
  uint64_t repaired = 0, remaining = 0, transient = 0;
  uint64_t ranges = 0, ranges_failed = 0;
  std::vector<Example> examples;
};

struct Prepared {
  std::shared_ptr<Statement> scan, read_row, read_partition;
};
struct TargetPrepared {
  std::shared_ptr<Statement> scan, read_row, read_partition, insert_row, update_row, update_statics,
      add_counters, add_static_counters, delete_row, delete_statics;
};

// A row (or a partition's statics) as one cluster has it.
struct Found {
  OwnedRow row;
};

// What the comparison of one key found.
struct Outcome {
  std::optional<DiffKind> kind;
  std::vector<ColumnDiff> columns;
};

Outcome judge(const TableJob& t, const std::optional<OwnedRow>& o, const std::optional<OwnedRow>& g,
              bool statics, bool writetimes) {
  const Layout& l = t.layout;
  auto present = [&](const std::optional<OwnedRow>& r) {
    if (!r) return false;
    auto v = view(*r);
    if (statics) return has_values(t.schema, l, v, true);
    return !statics_only(t.schema, l, v);
  };
  const bool po = present(o), pg = present(g);
  if (!po && !pg) return {};
  if (po && !pg) return {DiffKind::kOnlyOrigin, {}};
  if (!po && pg) return {DiffKind::kOnlyTarget, {}};
  auto ov = view(*o), gv = view(*g);
  auto cols = compare_rows(t.schema, l, ov, gv, statics, writetimes);
  if (cols.empty()) return {};
  return {DiffKind::kDiffering, std::move(cols)};
}

// Adds `from`'s counts (not its examples) to `into`.
void add_counts(TableReport& into, const TableReport& from) {
  into.origin_rows += from.origin_rows;
  into.target_rows += from.target_rows;
  into.only_origin += from.only_origin;
  into.only_target += from.only_target;
  into.differing += from.differing;
  into.repaired += from.repaired;
  into.remaining += from.remaining;
  into.transient += from.transient;
  into.ranges += from.ranges;
  into.ranges_failed += from.ranges_failed;
}

bool same_outcome(const Outcome& a, const Outcome& b) {
  if (a.kind != b.kind || a.columns.size() != b.columns.size()) return false;
  for (std::size_t i = 0; i < a.columns.size(); ++i)
    if (a.columns[i].column != b.columns[i].column ||
        a.columns[i].writetime_only != b.columns[i].writetime_only)
      return false;
  return true;
}

class Validate : public RangeJob {
 public:
  Validate(Setup& s, WorkQueue& work, Stats& stats, RateLimiter& rate)
      : RangeJob(s, work, stats, rate), reports_(s.tables.size()) {}

  const std::vector<TableReport>& reports() const { return reports_; }
  uint64_t differences() {
    return stats_.only_origin.value() + stats_.only_target.value() + stats_.differing.value();
  }

 private:
  struct Worker {
    asio::io_context& ioc;
    Session& origin;
    Session& target;
    Semaphore& checks;
    std::vector<Prepared> origin_prepared;
    std::vector<TargetPrepared> target_prepared;
  };

  awaitable<void> thread_main(asio::io_context& ioc, int) override {
    Session origin(ioc, s_.origin_config, s_.origin, retry_hook(stats_, "origin"));
    Session target(ioc, s_.target_config, s_.target, retry_hook(stats_, "target"));
    Semaphore checks(ioc, static_cast<std::size_t>(s_.options.concurrency));
    Worker w{ioc, origin, target, checks, {}, {}};
    if (!co_await prepared(prepare_tables(w))) co_return;
    co_await run_range_workers(ioc, [this, &w](const WorkItem& item) { return validate(w, item); });
    origin.close();
    target.close();
  }

  awaitable<void> prepare_tables(Worker& w) {
    auto prep = [&w](const std::string& text) -> awaitable<std::shared_ptr<Statement>> {
      if (text.empty()) co_return nullptr;
      co_return co_await w.target.prepare(text);
    };
    for (const auto& t : s_.tables) {
      const auto& st = t.statements;
      // One co_await per statement: GCC 12 miscompiles co_await inside braced initializers.
      Prepared p;
      p.scan = co_await w.origin.prepare(st.scan);
      p.read_row = co_await w.origin.prepare(st.read_row);
      p.read_partition = co_await w.origin.prepare(st.read_partition);
      TargetPrepared q;
      q.scan = co_await w.target.prepare(st.scan);
      q.read_row = co_await w.target.prepare(st.read_row);
      q.read_partition = co_await w.target.prepare(st.read_partition);
      if (s_.options.repair) {
        q.insert_row = co_await prep(st.insert_row);
        q.update_row = co_await prep(st.update_row);
        q.update_statics = co_await prep(st.update_statics);
        q.add_counters = co_await prep(st.add_counters);
        q.add_static_counters = co_await prep(st.add_static_counters);
        q.delete_row = co_await prep(st.delete_row);
        q.delete_statics = co_await prep(st.delete_statics);
      }
      w.origin_prepared.push_back(std::move(p));
      w.target_prepared.push_back(std::move(q));
    }
  }

  // Compares one range and adds what it found to its table's report.
  awaitable<void> validate(Worker& w, const WorkItem& item) {
    TableReport local;
    const auto error = co_await attempt(compare_range(w, item, local));
    if (error)
      spdlog::warn("{} {}: {}", s_.tables[item.table].schema.name(), to_string(item.range), *error);
    (error ? stats_.ranges_failed : stats_.ranges_done).inc();
    local.ranges = 1;
    local.ranges_failed = error ? 1 : 0;
    std::lock_guard lock(mu_);
    TableReport& r = reports_[item.table];
    add_counts(r, local);
    for (auto& e : local.examples)
      if (r.examples.size() < static_cast<std::size_t>(s_.options.max_examples))
        r.examples.push_back(std::move(e));
  }

  // One side of a range's scan.
  struct Side {
    Session* session = nullptr;
    Statement* scan = nullptr;
    std::optional<Bytes> paging;
    bool done = false;
    int64_t watermark = 0;  // rows up to (not including) this token are all in
    std::map<RowKey, OwnedRow> rows;
    uint64_t count = 0;
  };

  struct Candidate {
    RowKey key;
    OwnedRow any;  // origin's or target's version: its key columns are read again
    Outcome seen;  // what the scans found
  };

  awaitable<void> fetch(Worker& w, const TableJob& t, Side& side, TokenRange range, bool origin) {
    const Layout& l = t.layout;
    Page page = co_await scan_page(*side.session, *side.scan, l, range, side.paging, origin);
    if (origin) co_await throttle(w.ioc, page);
    for (std::size_t i = 0; i < page.rows(); ++i) {
      RowView row = page.row(i);
      if (!row[l.token]) continue;
      const int64_t token = read_bigint(*row[l.token]);
      side.watermark = std::max(side.watermark, token);
      if (!statics_only(t.schema, l, row)) {
        side.rows.emplace(row_key(t.schema, l, row, false), own(row));
        ++side.count;
      }
      if (t.schema.has_statics()) side.rows.emplace(row_key(t.schema, l, row, true), own(row));
    }
    side.paging = page.paging_state();
    if (!side.paging) side.done = true;
  }

  awaitable<void> compare_range(Worker& w, const WorkItem& item, TableReport& report) {
    const TableJob& t = s_.tables[item.table];
    Side o, g;
    o.session = &w.origin;
    o.scan = w.origin_prepared[item.table].scan.get();
    g.session = &w.target;
    g.scan = w.target_prepared[item.table].scan.get();
    o.watermark = g.watermark = item.range.start;
    std::vector<Candidate> candidates;
    for (;;) {
      // Read on from the side that is behind, so both buffers stay about a page long.
      Side* next = nullptr;
      if (!o.done && (g.done || o.watermark <= g.watermark)) next = &o;
      if (!next && !g.done) next = &g;
      if (next) co_await fetch(w, t, *next, item.range, next == &o);
      // Keys before both watermarks are complete on both sides (a partition may go on in the
      // next page, so the watermark token itself waits).
      const bool all = o.done && g.done;
      auto complete = [&](const RowKey& k) {
        return all || ((o.done || k.token < o.watermark) && (g.done || k.token < g.watermark));
      };
      for (;;) {
        auto oi = o.rows.begin();
        auto gi = g.rows.begin();
        bool have_o = oi != o.rows.end() && complete(oi->first);
        bool have_g = gi != g.rows.end() && complete(gi->first);
        if (!have_o && !have_g) break;
        std::optional<OwnedRow> orow, grow;
        RowKey key;
        if (have_o && (!have_g || oi->first <= gi->first)) {
          key = oi->first;
          orow = std::move(oi->second);
          o.rows.erase(oi);
          if (have_g && gi->first == key) {
            grow = std::move(gi->second);
            g.rows.erase(gi);
          }
        } else {
          key = gi->first;
          grow = std::move(gi->second);
          g.rows.erase(gi);
        }
        Outcome out = judge(t, orow, grow, key.statics, s_.options.writetime);
        if (out.kind)
          candidates.push_back(
              {std::move(key), orow ? std::move(*orow) : std::move(*grow), std::move(out)});
      }
      if (candidates.size() >= 256 || (all && !candidates.empty())) {
        co_await check(w, item.table, candidates, report);
        candidates.clear();
      }
      if (all) break;
    }
    report.origin_rows += o.count;
    report.target_rows += g.count;
  }

  // Reads each candidate again from both clusters; what still differs is counted, reported and,
  // with --repair, fixed.
  awaitable<void> check(Worker& w, std::size_t table, std::vector<Candidate>& candidates,
                        TableReport& report) {
    WaitGroup group(w.ioc);
    std::exception_ptr error;
    for (auto& c : candidates) {
      co_await w.checks.acquire();
      group.add();
      asio::co_spawn(w.ioc, check_one(w, table, c, report),
                     [&w, &group, &error](std::exception_ptr e) {
                       if (e && !error) error = e;
                       w.checks.release();
                       group.done();
                     });
    }
    co_await group.wait();
    if (error) std::rethrow_exception(error);
  }

  awaitable<std::optional<OwnedRow>> read(Worker& w, std::size_t table, bool origin,
                                          RowView key_row, bool statics) {
    const TableJob& t = s_.tables[table];
    Call c;
    c.values = key_values(t.schema, t.layout, key_row, !statics);
    c.routing_token = read_bigint(*key_row[t.layout.token]);
    Statement& st = origin ? *(statics ? w.origin_prepared[table].read_partition
                                       : w.origin_prepared[table].read_row)
                           : *(statics ? w.target_prepared[table].read_partition
                                       : w.target_prepared[table].read_row);
    Page p = co_await (origin ? w.origin : w.target).select(st, std::move(c));
    if (p.rows() == 0) co_return std::nullopt;
    co_return own(p.row(0));
  }

  awaitable<void> check_one(Worker& w, std::size_t table, const Candidate& c, TableReport& report) {
    const TableJob& t = s_.tables[table];
    const Layout& l = t.layout;
    const bool statics = c.key.statics;
    auto key_cells = view(c.any);
    RowView key_row(key_cells);
    // A write in flight between the scans agrees when read again. A row still changing (the
    // difference is not the one the scans saw) is read once more, a moment later.
    std::optional<OwnedRow> o, g;
    Outcome out;
    for (int pass = 0; pass < 2; ++pass) {
      if (pass > 0) co_await pause(w.ioc, std::chrono::milliseconds(200));
      o = co_await read(w, table, true, key_row, statics);
      g = co_await read(w, table, false, key_row, statics);
      out = judge(t, o, g, statics, s_.options.writetime);
      if (!out.kind) {
        ++report.transient;
        co_return;
      }
      if (same_outcome(out, c.seen)) break;
    }
    switch (*out.kind) {
      case DiffKind::kOnlyOrigin:
        ++report.only_origin;
        stats_.only_origin.inc();
        break;
      case DiffKind::kOnlyTarget:
        ++report.only_target;
        stats_.only_target.inc();
        break;
      case DiffKind::kDiffering:
        ++report.differing;
        stats_.differing.inc();
        break;
    }
    Example ex{*out.kind, key_text(t.schema, l, key_row, statics), out.columns, ""};
    bool fixed = false;
    if (s_.options.repair) {
      std::string why = co_await repair(w, table, *out.kind, o, g, statics);
      if (why.empty()) {
        auto o2 = co_await read(w, table, true, key_row, statics);
        auto g2 = co_await read(w, table, false, key_row, statics);
        Outcome after = judge(t, o2, g2, statics, s_.options.writetime);
        fixed = !after.kind;
        if (!fixed) {
          why = "target keeps a newer write";
          if (after.kind == DiffKind::kDiffering) {
            std::string cols;
            for (const auto& d : after.columns) cols += (cols.empty() ? "" : ", ") + d.column;
            why += " (" + cols + ")";
          }
        }
      }
      ex.outcome = fixed ? "repaired" : "not repaired: " + why;
      if (fixed) {
        ++report.repaired;
        stats_.repaired.inc();
      }
    }
    if (!fixed) ++report.remaining;
    if (report.examples.size() < static_cast<std::size_t>(s_.options.max_examples))
      report.examples.push_back(std::move(ex));
  }

  // Writes origin's version (or deletes target's extra row with --delete-extra). Returns why
  // it could not, or "".
  awaitable<std::string> repair(Worker& w, std::size_t table, DiffKind kind,
                                const std::optional<OwnedRow>& o, const std::optional<OwnedRow>& g,
                                bool statics) {
    const TableJob& t = s_.tables[table];
    const Layout& l = t.layout;
    const TargetPrepared& q = w.target_prepared[table];
    if (kind == DiffKind::kOnlyTarget) {
      if (!s_.options.delete_extra) co_return "only on target (--delete-extra deletes such rows)";
      auto cells = view(*g);
      RowView row(cells);
      // A tombstone at the row's newest write: a write after this check is newer and stays.
      const int64_t ts = newest_writetime(t.schema, l, row, statics).value_or(now_us());
      Call c;
      c.values.push_back(cql::Value::of(bigint_bytes(ts)));
      for (auto& k : key_values(t.schema, l, row, !statics)) c.values.push_back(std::move(k));
      c.routing_token = read_bigint(*row[l.token]);
      co_await w.target.execute(statics ? *q.delete_statics : *q.delete_row, std::move(c));
      co_return "";
    }
    auto cells = view(*o);
    RowView row(cells);
    const int64_t token = read_bigint(*row[l.token]);
    if (t.schema.counter_table()) {
      Statement* add = statics ? q.add_static_counters.get() : q.add_counters.get();
      if (!add) co_return "no counter column";
      const std::size_t from = statics ? 0 : t.schema.static_count;
      const std::size_t to = statics ? t.schema.static_count : t.schema.values.size();
      Call c;
      c.idempotent = false;
      c.routing_token = token;
      bool any = false, conflict = false;
      std::optional<std::vector<Cell>> there;
      if (g) there = view(*g);
      for (std::size_t v = from; v < to; ++v) {
        const Cell& ov = row[l.values + v];
        Cell gv = there ? (*there)[l.values + v] : Cell{};
        if (ov && !gv) {
          c.values.push_back(cql::Value::of(Bytes(ov->begin(), ov->end())));
          any = true;
        } else {
          if (gv)
            conflict =
                conflict || !ov || !std::equal(ov->begin(), ov->end(), gv->begin(), gv->end());
          c.values.push_back(cql::Value::unset());
        }
      }
      if (any) {
        for (auto& k : key_values(t.schema, l, row, !statics)) c.values.push_back(std::move(k));
        co_await w.target.execute(*add, std::move(c));
      }
      co_return conflict ? "counter values differ (an increment cannot be undone safely)" : "";
    }
    for (const auto& grp : plan_writes(t.schema, l, row, statics, s_.started_us)) {
      Statement& st = grp.kind == WriteGroup::Kind::kInsertRow   ? *q.insert_row
                      : grp.kind == WriteGroup::Kind::kUpdateRow ? *q.update_row
                                                                 : *q.update_statics;
      std::size_t ttl_slot = 0;
      Call c;
      c.values = bind_group(t.schema, l, row, grp, ttl_slot);
      c.routing_token = token;
      if (grp.ttl > 0) count_down_ttl(c, ttl_slot, static_cast<int64_t>(now_s()) + grp.ttl);
      co_await w.target.execute(st, std::move(c));
    }
    co_return "";
  }

  std::vector<TableReport> reports_;  // by table; guarded by mu_ while the job runs
};

std::string columns_text(const std::vector<ColumnDiff>& cols) {
  std::string out;
  for (const auto& d : cols) {
    out += (out.empty() ? "" : ", ") + d.column;
    if (d.writetime_only)
      out += " (writetime origin " +
             (d.origin_writetime ? std::to_string(*d.origin_writetime) : "-") + ", target " +
             (d.target_writetime ? std::to_string(*d.target_writetime) : "-") + ")";
  }
  return out;
}

// The token ranges to compare, as indexes into s.ranges in ascending order: all of them, or
// --sample percent of them (at least one) chosen at random with --seed.
std::vector<std::size_t> sample_ranges(const Setup& s) {
  const Options& o = s.options;
  std::vector<std::size_t> chosen(s.ranges.size());
  for (std::size_t i = 0; i < chosen.size(); ++i) chosen[i] = i;
  if (o.sample_percent < 100) {
    std::mt19937_64 rng(o.seed);
    std::shuffle(chosen.begin(), chosen.end(), rng);
    auto keep = static_cast<std::size_t>(
        std::ceil(static_cast<double>(chosen.size()) * o.sample_percent / 100.0));
    chosen.resize(std::max<std::size_t>(1, keep));
    std::sort(chosen.begin(), chosen.end());
  }
  return chosen;
}

void print_start(const Setup& s, std::size_t chosen) {
  const Options& o = s.options;
  std::printf(
      "zdm-data validate: keyspace %s, tables %s; origin '%s' (%zu nodes) vs target '%s' (%zu "
      "nodes); %zu of %zu token ranges (%g%%)%s%s\n",
      o.keyspace.c_str(), table_names(s).c_str(), s.origin.cluster_name.c_str(),
      s.origin.nodes.size(), s.target.cluster_name.c_str(), s.target.nodes.size(), chosen,
      s.ranges.size(), o.sample_percent, o.writetime ? "; writetimes compared" : "",
      o.repair ? (o.delete_extra ? "; repairing (extra rows deleted)" : "; repairing") : "");
  std::fflush(stdout);
}

// A report's counts under the names of the JSON report.
nlohmann::json counts_json(const TableReport& r) {
  return {{"origin_rows", r.origin_rows}, {"target_rows", r.target_rows},
          {"only_origin", r.only_origin}, {"only_target", r.only_target},
          {"differing", r.differing},     {"repaired", r.repaired},
          {"remaining", r.remaining},     {"in_flight", r.transient},
          {"ranges", r.ranges},           {"ranges_failed", r.ranges_failed}};
}

nlohmann::json examples_json(const std::vector<Example>& examples) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : examples) {
    nlohmann::json cols = nlohmann::json::array();
    for (const auto& d : e.columns) {
      nlohmann::json c = {{"column", d.column}, {"writetime_only", d.writetime_only}};
      if (d.origin_writetime) c["origin_writetime"] = *d.origin_writetime;
      if (d.target_writetime) c["target_writetime"] = *d.target_writetime;
      cols.push_back(c);
    }
    nlohmann::json ej = {{"kind", kind_name(e.kind)}, {"key", e.key}, {"columns", cols}};
    if (!e.outcome.empty()) ej["repair"] = e.outcome;
    out.push_back(ej);
  }
  return out;
}

// The report as JSON on stdout; `fatal` ("" if none) is its "error".
void print_json(const Setup& s, const std::vector<TableReport>& reports, const TableReport& total,
                double secs, uint64_t origin_bytes, const std::string& fatal) {
  const Options& o = s.options;
  nlohmann::json tables = nlohmann::json::object();
  for (std::size_t i = 0; i < s.tables.size(); ++i) {
    nlohmann::json t = counts_json(reports[i]);
    t["differences"] = examples_json(reports[i].examples);
    tables[s.tables[i].schema.name()] = t;
  }
  nlohmann::json out = {{"keyspace", o.keyspace},
                        {"tables", tables},
                        {"total", counts_json(total)},
                        {"sample_percent", o.sample_percent},
                        {"writetime", o.writetime},
                        {"repair", o.repair},
                        {"seconds", secs},
                        {"rows_per_second", secs > 0 ? total.origin_rows / secs : 0.0},
                        {"mb_per_second", secs > 0 ? origin_bytes / 1e6 / secs : 0.0}};
  if (!fatal.empty()) out["error"] = fatal;
  std::printf("%s\n", out.dump(2).c_str());
}

// The report as text on stdout: per table its counts and examples, then the totals.
void print_text(const Setup& s, const std::vector<TableReport>& reports, const TableReport& total,
                double secs, uint64_t origin_bytes) {
  const Options& o = s.options;
  for (std::size_t i = 0; i < s.tables.size(); ++i) {
    const auto& r = reports[i];
    std::printf(
        "%s: %s rows on origin, %s on target: %llu only on origin, %llu only on target, %llu "
        "differing%s\n",
        s.tables[i].schema.name().c_str(), thousands(r.origin_rows).c_str(),
        thousands(r.target_rows).c_str(), static_cast<unsigned long long>(r.only_origin),
        static_cast<unsigned long long>(r.only_target),
        static_cast<unsigned long long>(r.differing),
        o.repair ? (", " + std::to_string(r.repaired) + " repaired").c_str() : "");
    for (const auto& e : r.examples) {
      const char* what = e.kind == DiffKind::kOnlyOrigin   ? "only on origin"
                         : e.kind == DiffKind::kOnlyTarget ? "only on target"
                                                           : "differing";
      std::printf("  %s: %s%s%s%s\n", what, e.key.c_str(), e.columns.empty() ? "" : ": ",
                  columns_text(e.columns).c_str(),
                  e.outcome.empty() ? "" : (" -> " + e.outcome).c_str());
    }
  }
  const uint64_t found = total.only_origin + total.only_target + total.differing;
  std::printf(
      "validate: %s rows compared in %.1f s (%s rows/s, %.2f MB/s from origin): %llu "
      "differences (%llu only on origin, %llu only on target, %llu differing)%s; %llu "
      "remaining%s\n",
      thousands(total.origin_rows).c_str(), secs,
      thousands(static_cast<uint64_t>(secs > 0 ? total.origin_rows / secs : 0)).c_str(),
      secs > 0 ? origin_bytes / 1e6 / secs : 0.0, static_cast<unsigned long long>(found),
      static_cast<unsigned long long>(total.only_origin),
      static_cast<unsigned long long>(total.only_target),
      static_cast<unsigned long long>(total.differing),
      o.repair ? (", " + std::to_string(total.repaired) + " repaired").c_str() : "",
      static_cast<unsigned long long>(total.remaining),
      total.transient ? (" (" + std::to_string(total.transient) +
                         " more differed while writes were in flight and agreed when read again)")
                            .c_str()
                      : "");
}

// 0 when every range was compared and no difference remains; 1, with the reason on stderr if
// it is not a difference, otherwise.
int exit_code(const std::string& fatal, const TableReport& total, std::size_t ranges) {
  if (!fatal.empty()) {
    std::fprintf(stderr, "zdm-data: validate stopped: %s\n", fatal.c_str());
    return 1;
  }
  if (total.ranges_failed > 0 || total.ranges < ranges) {
    std::fprintf(stderr, "zdm-data: %llu token ranges could not be compared\n",
                 static_cast<unsigned long long>(ranges - (total.ranges - total.ranges_failed)));
    return 1;
  }
  return total.remaining == 0 ? 0 : 1;
}

}  // namespace

int run_validate(const Options& o) {
  if (!o.keys_from_journal.empty()) return run_validate_journal(o);
  Setup s = prepare(o);
  const std::vector<std::size_t> chosen = sample_ranges(s);
  std::vector<WorkItem> items;
  for (std::size_t ti = 0; ti < s.tables.size(); ++ti)
    for (std::size_t i : chosen) items.push_back({ti, s.ranges[i]});
  if (!o.json) print_start(s, chosen.size());
  metrics::Registry registry;
  Stats stats(registry);
  stats.ranges_total.set(static_cast<int64_t>(items.size()));
  RateLimiter rate(o.rate_rows, o.rate_mb * 1e6);
  WorkQueue work(std::move(items));
  Validate job(s, work, stats, rate);
  const auto started = std::chrono::steady_clock::now();
  job.run(registry, [&]() {
    ProgressSnapshot p = progress_of(stats, work);
    p.validate = true;
    p.differences = job.differences();
    return p;
  });
  const double secs = seconds_since(started);
  TableReport total;
  for (const auto& r : job.reports()) add_counts(total, r);
  const std::string fatal = job.fatal_error();
  if (o.json) {
    print_json(s, job.reports(), total, secs, stats.origin_bytes.value(), fatal);
  } else {
    print_text(s, job.reports(), total, secs, stats.origin_bytes.value());
  }
  std::fflush(stdout);
  return exit_code(fatal, total, work.size());
}

}  // namespace zdm::data
