#include "data/journal_check.h"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "data/commands.h"
#include "data/job.h"
#include "data/range_job.h"
#include "data/replay_plan.h"
#include "data/rows.h"

namespace zdm::data {

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using Rows = std::map<RowKey, OwnedRow>;

// Prepared statements kept per cluster before the cache starts over (a literal key makes a
// statement of its own).
constexpr std::size_t kMaxPrepared = 4096;

// Whether `row` has something in scope `statics` (validate's notion of a row being there).
bool present(const TableSchema& t, const Layout& l, const OwnedRow* r, bool statics) {
  if (!r) return false;
  auto v = view(*r);
  return statics ? has_values(t, l, v, true) : !statics_only(t, l, v);
}

// How origin's and target's versions of one partition differ: "" when alike, else "1 row only
// on origin, 2 rows differing (v, w)".
std::string compare(const TableSchema& t, const Layout& l, const Rows& o, const Rows& g) {
  std::set<RowKey> keys;
  for (const auto& [k, r] : o) keys.insert(k);
  for (const auto& [k, r] : g) keys.insert(k);
  uint64_t only_o = 0, only_g = 0, differing = 0;
  std::set<std::string> columns;
  for (const auto& k : keys) {
    auto oi = o.find(k);
    auto gi = g.find(k);
    const OwnedRow* orow = oi == o.end() ? nullptr : &oi->second;
    const OwnedRow* grow = gi == g.end() ? nullptr : &gi->second;
    const bool po = present(t, l, orow, k.statics), pg = present(t, l, grow, k.statics);
    if (!po && !pg) continue;
    if (po != pg) {
      ++(po ? only_o : only_g);
      continue;
    }
    auto ov = view(*orow), gv = view(*grow);
    auto cols = compare_rows(t, l, ov, gv, k.statics, false);
    if (cols.empty()) continue;
    ++differing;
    for (const auto& c : cols) columns.insert(c.column);
  }
  std::string out;
  auto part = [&out](uint64_t n, const std::string& what) {
    if (n == 0) return;
    out += (out.empty() ? "" : ", ") + std::to_string(n) + (n == 1 ? " row " : " rows ") + what;
  };
  part(only_o, "only on origin");
  part(only_g, "only on target");
  std::string cols;
  for (const auto& c : columns) cols += (cols.empty() ? "" : ", ") + c;
  part(differing, "differing (" + cols + ")");
  return out;
}

}  // namespace

ClusterInfo discover_cluster(const ClusterConfig& config) {
  asio::io_context ioc;
  ClusterInfo info;
  std::exception_ptr error;
  asio::co_spawn(
      ioc, [&]() -> awaitable<void> { info = co_await discover(ioc, config); },
      [&](std::exception_ptr e) { error = e; });
  ioc.run();
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      throw JobError(3, e.what());
    }
  }
  return info;
}

void CheckCounts::add(const CheckCounts& o) {
  checked += o.checked;
  equal += o.equal;
  differing += o.differing;
  errors += o.errors;
  unverifiable += o.unverifiable;
  for (const auto& [r, n] : o.unverifiable_by_reason) unverifiable_by_reason[r] += n;
  differences.insert(differences.end(), o.differences.begin(), o.differences.end());
  failures.insert(failures.end(), o.failures.begin(), o.failures.end());
}

PartitionCheck::PartitionCheck(asio::io_context& ioc, Session& origin, Session& target,
                               CheckSettings settings)
    : ioc_(ioc), origin_(origin), target_(target), settings_(settings) {}

const TableSchema* PartitionCheck::schema(const std::string& keyspace, const std::string& table) {
  auto [it, added] = tables_.try_emplace(keyspace + '\0' + table);
  Table& t = it->second;
  if (added) {
    t.schema = table_schema(target_.info().columns, keyspace, table);
    if (t.schema) {
      const std::string scan = statements_of(*t.schema).scan;
      t.select = scan.substr(0, scan.find(" WHERE token("));
      auto o = table_schema(origin_.info().columns, keyspace, table);
      if (!o)
        t.origin_difference = "the table is not on origin";
      else if (auto d = schema_difference(*o, *t.schema))
        t.origin_difference = "defined differently on origin and target: " + *d;
    }
  }
  return t.schema ? &*t.schema : nullptr;
}

void PartitionCheck::add(const journal::Write& w) {
  keys::Extracted e = keys::extract_body(
      w.version, w.opcode, w.body, w.keyspace,
      [this](const std::string& ks, const std::string& tb) { return schema(ks, tb); });
  for (auto& r : e.unverifiable) {
    ++unverifiable_.unverifiable;
    ++unverifiable_.unverifiable_by_reason[r];
  }
  for (auto& p : e.partitions) {
    if (once && seen_.count(p)) continue;
    const Table& t = tables_.at(p.keyspace + '\0' + p.table);
    if (t.origin_difference) {
      ++unverifiable_.unverifiable;
      ++unverifiable_
            .unverifiable_by_reason[p.keyspace + "." + p.table + ": " + *t.origin_difference];
      continue;
    }
    if (once) seen_.insert(p);
    pending_.insert(std::move(p));
  }
}

awaitable<std::shared_ptr<Statement>> PartitionCheck::statement(bool origin,
                                                                const std::string& query) {
  auto& cache = prepared_[origin ? 0 : 1];
  if (auto it = cache.find(query); it != cache.end()) co_return it->second;
  if (cache.size() >= kMaxPrepared) cache.clear();
  auto st = co_await (origin ? origin_ : target_).prepare(query);
  cache[query] = st;
  co_return st;
}

awaitable<std::optional<Rows>> PartitionCheck::read(bool origin, const Table& t,
                                                    const keys::Partition& p) {
  const TableSchema& s = *t.schema;
  const Layout l = layout_of(s);
  auto st = co_await statement(origin, t.select + " WHERE " + keys::where_clause(s, p));
  Rows rows;
  int64_t count = 0;
  std::optional<Bytes> paging;
  for (;;) {
    Call c;
    c.values = keys::where_values(p);
    c.write = false;
    c.page_size = std::min(settings_.page_size, settings_.max_rows + 1);
    c.paging_state = paging;
    Page page = co_await (origin ? origin_ : target_).select(*st, std::move(c));
    for (std::size_t i = 0; i < page.rows(); ++i) {
      RowView row = page.row(i);
      if (!statics_only(s, l, row)) {
        if (++count > settings_.max_rows) co_return std::nullopt;
        rows.emplace(row_key(s, l, row, false), own(row));
      }
      if (s.has_statics()) rows.emplace(row_key(s, l, row, true), own(row));
    }
    paging = page.paging_state();
    if (!paging) break;
  }
  co_return rows;
}

awaitable<void> PartitionCheck::check_one(const keys::Partition& p, CheckCounts& out) {
  const Table& t = tables_.at(p.keyspace + '\0' + p.table);
  const TableSchema& s = *t.schema;
  const std::string name = p.keyspace + "." + p.table + " " + keys::key_text(s, p);
  const Layout l = layout_of(s);
  std::string diff;
  for (int pass = 0; pass < 2; ++pass) {
    // A write in flight between the two reads agrees when read again a moment later.
    if (pass > 0) co_await pause(ioc_, std::chrono::milliseconds(200));
    std::optional<Rows> o, g;
    try {
      o = co_await read(true, t, p);
      if (o) g = co_await read(false, t, p);
    } catch (const RequestError& e) {
      ++out.errors;
      out.failures.push_back(name + ": " + e.what());
      co_return;
    } catch (const cql::ProtocolError& e) {
      ++out.errors;
      out.failures.push_back(name + ": " + e.what());
      co_return;
    }
    if (!o || !g) {
      ++out.unverifiable;
      ++out.unverifiable_by_reason[p.keyspace + "." + p.table + ": partition over " +
                                   std::to_string(settings_.max_rows) + " rows"];
      co_return;
    }
    diff = compare(s, l, *o, *g);
    if (diff.empty()) break;
  }
  ++out.checked;
  if (diff.empty()) {
    ++out.equal;
    co_return;
  }
  ++out.differing;
  out.differences.push_back(name + ": " + diff);
}

awaitable<CheckCounts> PartitionCheck::check() {
  CheckCounts out = std::move(unverifiable_);
  unverifiable_ = {};
  std::vector<keys::Partition> todo(pending_.begin(), pending_.end());
  pending_.clear();
  std::vector<CheckCounts> parts(todo.size());
  Semaphore slots(ioc_, static_cast<std::size_t>(std::max(1, settings_.concurrency)));
  WaitGroup group(ioc_);
  for (std::size_t i = 0; i < todo.size(); ++i) {
    co_await slots.acquire();
    group.add();
    asio::co_spawn(ioc_, check_one(todo[i], parts[i]), [&slots, &group](std::exception_ptr e) {
      if (e) log_exception(e, "partition check");
      slots.release();
      group.done();
    });
  }
  co_await group.wait();
  for (const auto& c : parts) out.add(c);
  co_return out;
}

std::string check_summary(const CheckCounts& c) {
  return "checked=" + std::to_string(c.checked) + " equal=" + std::to_string(c.equal) +
         " differing=" + std::to_string(c.differing) +
         " unverifiable=" + std::to_string(c.unverifiable) +
         " check_errors=" + std::to_string(c.errors);
}

std::string check_report(const CheckCounts& c) {
  std::string out;
  for (const auto& d : c.differences) out += "differing partition: " + d + "\n";
  for (const auto& f : c.failures) out += "partition not checked: " + f + "\n";
  for (const auto& [r, n] : c.unverifiable_by_reason)
    out += "unverifiable: " + std::to_string(n) + " x " + r + "\n";
  return out;
}

int run_validate_journal(const Options& o) {
  ClusterConfig oc, tc;
  try {
    oc = cluster_config(o, true);
    tc = cluster_config(o, false);
  } catch (const OptionsError& e) {
    throw JobError(2, e.what());
  }
  std::vector<fs::path> segments;
  try {
    for (const auto& dir : o.keys_from_journal)
      for (const auto& w : replay::writers_of(dir))
        segments.insert(segments.end(), w.segments.begin(), w.segments.end());
  } catch (const replay::ReplayError& e) {
    throw JobError(2, e.what());
  }
  const ClusterInfo origin = discover_cluster(oc);
  const ClusterInfo target = discover_cluster(tc);
  std::printf("zdm-data validate --keys-from-journal: %zu segments -> origin '%s', target '%s'\n",
              segments.size(), origin.cluster_name.c_str(), target.cluster_name.c_str());
  std::fflush(stdout);
  const auto started = Clock::now();
  metrics::Registry registry;
  Stats stats(registry);
  CheckCounts total;
  uint64_t writes = 0;
  std::string error;
  std::vector<replay::Torn> torn;
  asio::io_context ioc;
  asio::co_spawn(
      ioc,
      [&]() -> awaitable<void> {
        Session os(ioc, oc, origin, retry_hook(stats, "origin"));
        Session ts(ioc, tc, target, retry_hook(stats, "target"));
        PartitionCheck check(ioc, os, ts,
                             {o.check_max_rows, o.page_size, std::min(o.concurrency, 64)});
        check.once = true;
        for (const auto& seg : segments) {
          std::error_code ec;
          if (!fs::exists(seg, ec)) continue;  // deleted meanwhile
          journal::SegmentScan scan;
          try {
            scan = journal::read_segment(seg, 0);
          } catch (const std::exception& e) {
            error = e.what();
            break;
          }
          if (scan.torn) torn.push_back({seg.string(), *scan.torn});
          for (const auto& w : scan.writes) check.add(w);
          writes += scan.writes.size();
          total.add(co_await check.check());
        }
        os.close();
        ts.close();
      },
      [&](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          error = ex.what();
        }
      });
  ioc.run();
  const double secs = std::chrono::duration<double>(Clock::now() - started).count();
  for (const auto& t : torn)
    std::fprintf(stderr, "zdm-data: torn tail in %s: %s (the writes before it checked)\n",
                 t.file.c_str(), t.what.c_str());
  std::fputs(check_report(total).c_str(), stdout);
  std::printf("validate: segments=%zu writes=%llu %s seconds=%.2f\n", segments.size(),
              static_cast<unsigned long long>(writes), check_summary(total).c_str(), secs);
  std::fflush(stdout);
  if (!error.empty()) {
    std::fprintf(stderr, "zdm-data: %s\n", error.c_str());
    return 2;
  }
  return total.confirmed() ? 0 : 1;
}

}  // namespace zdm::data
