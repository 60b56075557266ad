// zdm-data replay and journal-status: the proxy's write journal (common/journal/journal.h) put
// back on target. Writers one after another, each one's segments in name order, each segment's
// unsettled writes in file order, one request at a time (journal order), each sent as the QUERY
// or BATCH the client sent at the record's protocol version after a USE of its keyspace. A
// checkpoint side file per segment (journal.h's Mark) makes a rerun skip what was applied.
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <mutex>

#include "data/commands.h"
#include "data/job.h"
#include "data/journal_check.h"
#include "data/replay_plan.h"

namespace zdm::data {

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using journal::Mark;
using replay::ReplayError;

// Exit codes (options.cpp's usage lists them).
constexpr int kFailed = 1, kBadJournal = 2, kUnreachable = 3, kTorn = 4, kInterrupted = 130;

// Target's coordinators as replay uses them: one connection per protocol version in use (a
// connection speaks the version of its STARTUP), on one node at a time; a failure moves on to
// the next node. Lives on one io_context's thread.
class Target {
 public:
  Target(asio::io_context& ioc, const ClusterConfig& config, const ClusterInfo& info,
         RetryHook on_retry)
      : ioc_(ioc), config_(config), info_(info), on_retry_(std::move(on_retry)) {}
  ~Target() { close(); }

  /// Sends `body` (a QUERY or BATCH body of protocol `version`) after a USE of `keyspace` when
  /// it is not empty and not the connection's; returns once target answered with a RESULT.
  /// Retries timeouts, closed connections and retryable errors (session.h's retryable()) with
  /// exponential backoff up to the cluster's max_attempts. Throws RequestError (the server's
  /// message and code for a refusal, "gave up after N attempts: ..." otherwise).
  awaitable<void> apply(uint8_t version, uint8_t opcode, const std::string& keyspace,
                        const std::string& body) {
    std::string why;
    for (int attempt = 0; attempt < config_.max_attempts; ++attempt) {
      if (attempt > 0) co_await backoff(attempt);
      Link* l = co_await link(version, why);
      if (!l) {
        if (on_retry_) on_retry_("connection");
        continue;
      }
      if (!keyspace.empty() && l->keyspace != keyspace) {
        cql::QueryMsg use;
        use.query = "USE " + replay::quote_identifier(keyspace);
        use.params.consistency = cql::Consistency::kOne;
        auto resp =
            co_await send(*l, cql::encode_message(version, false, 0, cql::Opcode::kQuery, use),
                          "USE " + keyspace, why);
        if (!resp) continue;
        l->keyspace = keyspace;
      }
      const cql::BytesView view(reinterpret_cast<const std::byte*>(body.data()), body.size());
      cql::Header h{version, false, 0, 0, static_cast<cql::Opcode>(opcode), 0};
      auto resp = co_await send(*l, cql::encode_frame(h, view), "", why);
      if (resp) co_return;
    }
    throw RequestError(
        "gave up after " + std::to_string(config_.max_attempts) + " attempts: " + why,
        std::nullopt);
  }

  void close() {
    for (auto& [v, l] : links_)
      if (l.conn) l.conn->close();
  }

 private:
  struct Link {
    std::shared_ptr<Connection> conn;
    std::string keyspace;  // the connection's, after a USE
  };

  awaitable<void> backoff(int attempt) {
    const auto base = std::min<int64_t>(config_.backoff_max.count(),
                                        config_.backoff_min.count() << std::min(attempt - 1, 20));
    asio::steady_timer pause(ioc_);
    pause.expires_after(std::chrono::milliseconds(base));
    net::error_code ec;
    co_await pause.async_wait(net::nothrow(ec));
  }

  // The connection for `version` on the current node, opened when needed; null (and `why`)
  // when it cannot be opened (the next call tries the next node).
  awaitable<Link*> link(uint8_t version, std::string& why) {
    Link& l = links_[version];
    if (l.conn && l.conn->usable()) co_return &l;
    l = {};
    const Node& n = info_.nodes[node_ % info_.nodes.size()];
    OpenFailure failure;
    l.conn = co_await Connection::open(ioc_, n.endpoint, n.host, version, config_.connect, failure);
    if (!l.conn) {
      why = n.host + ": " + failure.why;
      next_node();
      co_return nullptr;
    }
    co_return &l;
  }

  // Drops every connection: the next request goes to the next node.
  void next_node() {
    close();
    links_.clear();
    ++node_;
  }

  // Sends `frame` on `l` and reads the answer: the RESULT, or nullopt with `why` for a retry
  // (after moving to the next node). Throws RequestError when target refuses it for good.
  // `what` names a request other than the write in messages ("USE ks").
  awaitable<std::optional<cql::Frame>> send(Link& l, cql::Bytes frame, const std::string& what,
                                            std::string& why) {
    auto conn = l.conn;
    auto resp = co_await conn->request(std::move(frame), config_.request_timeout);
    if (!resp) {
      const bool closed = !conn->usable();
      why = closed ? "the connection to " + conn->node() + " closed"
                   : "no answer from " + conn->node() + " within " +
                         std::to_string(config_.request_timeout.count()) + " ms";
      if (on_retry_) on_retry_(closed ? "connection_closed" : "client_timeout");
      next_node();
      co_return std::nullopt;
    }
    if (resp->header.opcode != cql::Opcode::kError) co_return resp;
    cql::ErrorCode code = cql::ErrorCode::kServerError;
    const std::string message = cql::error_text(*resp, &code);
    if (!retryable(code)) throw RequestError((what.empty() ? "" : what + ": ") + message, code);
    why = message + " (" + error_reason(code) + " from " + conn->node() + ")";
    if (on_retry_) on_retry_(error_reason(code));
    next_node();
    co_return std::nullopt;
  }

  asio::io_context& ioc_;
  const ClusterConfig& config_;
  const ClusterInfo& info_;
  RetryHook on_retry_;
  std::map<uint8_t, Link> links_;
  std::size_t node_ = 0;
};

// What a replay did, read by the progress ticker on the main thread.
struct Counts {
  std::atomic<uint64_t> applied{0}, bytes{0}, settled{0}, replayed{0}, segments{0}, deleted{0};
};

// Where a replay ended.
struct Outcome {
  int code = 0;
  std::string error;               // the fatal problem, one line
  std::vector<replay::Torn> torn;  // torn tails found
  bool interrupted = false;
  CheckCounts check;         // --validate: what the partition checks found
  uint64_t unconfirmed = 0;  // --validate: segments kept because a check did not confirm them
};

class Replay {
 public:
  /// `origin`/`origin_info`: with --validate, the cluster the partitions are compared with.
  Replay(const Options& o, replay::Survey& survey, const ClusterConfig& config,
         const ClusterInfo& info, Stats& stats, Counts& counts, metrics::Counter& applied,
         const ClusterConfig* origin = nullptr, const ClusterInfo* origin_info = nullptr)
      : o_(o),
        origin_config_(origin),
        origin_info_(origin_info),
        survey_(survey),
        config_(config),
        info_(info),
        stats_(stats),
        counts_(counts),
        applied_metric_(applied),
        rate_(o.rate_writes, 0) {
    if (!o.replay_consistency.empty())
      consistency_ = static_cast<uint16_t>(parse_consistency(o.replay_consistency, "consistency"));
  }

  void stop() { stop_ = true; }
  const Outcome& outcome() const { return outcome_; }

  awaitable<void> run(asio::io_context& ioc) {
    Target target(ioc, config_, info_, retry_hook(stats_, "target"));
    std::optional<Session> origin_reads, target_reads;
    if (origin_config_) {
      origin_reads.emplace(ioc, *origin_config_, *origin_info_, retry_hook(stats_, "origin"));
      target_reads.emplace(ioc, config_, info_, retry_hook(stats_, "target"));
      check_.emplace(ioc, *origin_reads, *target_reads,
                     CheckSettings{o_.check_max_rows, o_.page_size, 16});
    }
    try {
      for (std::size_t wi = 0; wi < survey_.writer_list.size() && !stopped(); ++wi) {
        const auto& w = survey_.writer_list[wi];
        for (std::size_t si = 0; si < w.segments.size() && !stopped(); ++si)
          co_await segment(ioc, target, w, si, survey_.settled_seqs[wi]);
      }
      for (const auto& dir : o_.journals) journal::remove_orphan_marks(dir);
    } catch (const ReplayError& e) {
      fail(kBadJournal, e.what());
    } catch (const std::exception& e) {
      fail(kFailed, e.what());
    }
    if (stop_ && !outcome_.code) outcome_.interrupted = true;
    check_.reset();
    if (origin_reads) origin_reads->close();
    if (target_reads) target_reads->close();
  }

 private:
  bool stopped() const { return stop_ || outcome_.code != 0; }
  void fail(int code, const std::string& what) {
    if (outcome_.code) return;
    outcome_.code = code;
    outcome_.error = what;
  }

  // Applies the writes of segment `si` of `w` to replay, then deletes it or records that it
  // is done. Throws ReplayError.
  awaitable<void> segment(asio::io_context& ioc, Target& target, const journal::WriterSegments& w,
                          std::size_t si, std::set<uint64_t>& settled) {
    const fs::path& seg = w.segments[si];
    std::error_code ec;
    if (!fs::exists(seg, ec)) {  // the proxy deleted it meanwhile: every write in it settled
      fs::remove(journal::mark_path(seg), ec);
      co_return;
    }
    const auto save = [&](const Mark& m) {
      replay::journal_call([&] { journal::write_mark(seg, m); });
    };
    const Mark before = replay::journal_call([&] { return journal::read_mark(seg); });
    const uint64_t from = journal::start_offset(seg, before);
    const journal::SegmentScan scan =
        replay::journal_call([&] { return journal::read_segment(seg, from); });
    settled.insert(scan.settled.begin(), scan.settled.end());
    const journal::Selection sel = journal::select(scan, before, settled);
    counts_.settled += sel.settled;
    counts_.replayed += sel.replayed;
    Mark progress{from, before.last_seq};
    auto saved = Clock::now();
    uint64_t unsaved = 0;
    for (std::size_t i : sel.apply) {
      if (stop_) {
        save(progress);
        co_return;
      }
      const journal::Write& wr = scan.writes[i];
      try {
        check_record(seg, wr);
      } catch (const ReplayError&) {
        save(progress);  // what was applied before it stays applied
        throw;
      }
      if (auto wait = rate_.take(1, 0, Clock::now()); wait.count() > 0) {
        asio::steady_timer t(ioc);
        t.expires_after(wait);
        net::error_code tec;
        co_await t.async_wait(net::nothrow(tec));
      }
      std::string body = wr.body;
      if (consistency_) {
        try {
          body = replay::with_consistency(wr.version, wr.opcode, std::move(body), *consistency_);
        } catch (const ReplayError& e) {
          save(progress);
          throw ReplayError(seg.string() + ": seq " + std::to_string(wr.seq) + ": " + e.what());
        }
      }
      try {
        co_await target.apply(wr.version, wr.opcode, wr.keyspace, body);
      } catch (const RequestError& e) {
        save(progress);
        fail(kFailed, seg.string() + ": seq " + std::to_string(wr.seq) + " (" + wr.table +
                          "): target: " + e.what() +
                          " (the writes before it are applied and checkpointed: a rerun resumes "
                          "with this one)");
        co_return;
      }
      progress.last_seq = wr.seq;
      counts_.applied++;
      counts_.bytes += body.size();
      applied_metric_.inc();
      if (++unsaved >= 1000 || Clock::now() - saved >= std::chrono::seconds(1)) {
        save(progress);
        saved = Clock::now();
        unsaved = 0;
      }
    }
    // --validate: the partitions of every write of the segment past its mark (applied now or
    // by an earlier run) compared; a segment not confirmed keeps its mark where this run
    // started (the rerun checks its writes again, without applying them again).
    if (check_) {
      for (const auto& wr : scan.writes)
        if (!settled.count(wr.seq)) check_->add(wr);
      const CheckCounts c = co_await check_->check();
      outcome_.check.add(c);
      if (!c.confirmed()) {
        spdlog::warn("{}: kept: {} partitions differ, {} could not be read", seg.string(),
                     c.differing, c.errors);
        outcome_.unconfirmed++;
        save(progress);
        counts_.segments++;
        co_return;
      }
    }
    // Every intact record of the segment is handled: the next run reads past them.
    Mark done{scan.valid_bytes, progress.last_seq};
    for (const auto& wr : scan.writes) done.last_seq = std::max(done.last_seq, wr.seq);
    if (scan.torn) {
      outcome_.torn.push_back({seg.string(), *scan.torn});
      spdlog::warn("{}: torn tail: {} (every write before it {})", seg.string(), *scan.torn,
                   o_.accept_torn ? "applied; accepted" : "applied");
    }
    const bool newest = si + 1 == w.segments.size();
    if (replay::deletable(newest, w.earlier_run, o_.delete_all, scan.torn.has_value(),
                          o_.accept_torn)) {
      replay::journal_call([&] { journal::remove_segment(seg); });
      counts_.deleted++;
    } else {
      save(done);
    }
    counts_.segments++;
  }

  // Refuses a record target cannot take as it is. Throws ReplayError naming the file.
  void check_record(const fs::path& seg, const journal::Write& wr) const {
    const std::string where =
        seg.string() + ": seq " + std::to_string(wr.seq) + " (" + wr.table + ")";
    if (wr.opcode != 0x07 && wr.opcode != 0x0D)
      throw ReplayError(where + ": opcode " + std::to_string(wr.opcode) +
                        " is neither QUERY nor BATCH");
    if (wr.version < 3 || wr.version > 5)
      throw ReplayError(where + ": protocol version " + std::to_string(wr.version) +
                        " is not one zdm-data speaks (3 to 5)");
    if (wr.version > info_.version)
      throw ReplayError(where + " is a protocol v" + std::to_string(wr.version) +
                        " request; target negotiated v" + std::to_string(info_.version) +
                        " (--target-protocol-version " +
                        std::to_string(o_.target.max_protocol_version) +
                        "): replay it against a target that speaks v" + std::to_string(wr.version));
  }

  const Options& o_;
  const ClusterConfig* origin_config_;
  const ClusterInfo* origin_info_;
  std::optional<PartitionCheck> check_;
  replay::Survey& survey_;
  const ClusterConfig& config_;
  const ClusterInfo& info_;
  Stats& stats_;
  Counts& counts_;
  metrics::Counter& applied_metric_;
  RateLimiter rate_;
  std::optional<uint16_t> consistency_;
  std::atomic<bool> stop_{false};
  Outcome outcome_;
};

replay::Survey survey_or_fail(const Options& o) {
  try {
    return replay::survey(o.journals);
  } catch (const ReplayError& e) {
    throw JobError(kBadJournal, e.what());
  }
}

}  // namespace

int run_journal_status(const Options& o) {
  const replay::Survey s = survey_or_fail(o);
  std::fputs(
      (o.json ? replay::survey_json(s, o.journals) : replay::survey_text(s, o.journals)).c_str(),
      stdout);
  return 0;
}

int run_replay(const Options& o) {
  replay::Survey s = survey_or_fail(o);
  if (o.dry_run) {
    std::printf("zdm-data replay --dry-run: nothing applied\n%s",
                replay::survey_text(s, o.journals).c_str());
    return 0;
  }
  ClusterConfig config;
  try {
    config = cluster_config(o, false);
  } catch (const OptionsError& e) {
    throw JobError(2, e.what());
  }
  const ClusterInfo info = discover_cluster(config);
  ClusterConfig origin_config;
  ClusterInfo origin_info;
  if (o.replay_validate) {
    try {
      origin_config = cluster_config(o, true);
    } catch (const OptionsError& e) {
      throw JobError(2, e.what());
    }
    origin_info = discover_cluster(origin_config);
  }
  std::printf(
      "zdm-data replay: %llu segments of %llu writers, %llu writes to replay (%llu settled, "
      "%llu replayed earlier) -> target '%s' (%zu nodes, protocol v%d)\n",
      static_cast<unsigned long long>(s.segments), static_cast<unsigned long long>(s.writers),
      static_cast<unsigned long long>(s.pending), static_cast<unsigned long long>(s.settled),
      static_cast<unsigned long long>(s.replayed), info.cluster_name.c_str(), info.nodes.size(),
      info.version);
  std::fflush(stdout);
  metrics::Registry registry;
  Stats stats(registry);
  Counts counts;
  auto& applied = registry.counter("zdm_data_journal_writes_applied_total",
                                   "Journal writes applied to target by replay");
  Replay job(o, s, config, info, stats, counts, applied,
             o.replay_validate ? &origin_config : nullptr,
             o.replay_validate ? &origin_info : nullptr);
  Options single = o;
  single.threads = 1;  // journal order: one request at a time
  const auto started = Clock::now();
  run_workers(
      single, registry, [&](asio::io_context& ioc, int) { return job.run(ioc); },
      [&]() {
        ProgressSnapshot p;
        p.replay = true;
        p.rows = counts.applied.load();
        p.bytes = counts.bytes.load();
        p.ranges_done = p.rows;
        p.ranges_total = std::max<uint64_t>(s.pending, p.rows);
        p.retries = stats.total_retries();
        return p;
      },
      [&]() { job.stop(); });
  const double secs = std::chrono::duration<double>(Clock::now() - started).count();
  const Outcome& out = job.outcome();
  for (const auto& t : out.torn)
    std::fprintf(stderr, "zdm-data: torn tail in %s: %s (every write before it applied)%s\n",
                 t.file.c_str(), t.what.c_str(), o.accept_torn ? "; accepted (--accept-torn)" : "");
  if (o.replay_validate) std::fputs(check_report(out.check).c_str(), stdout);
  std::printf(
      "replay: segments=%llu applied=%llu skipped_settled=%llu skipped_replayed=%llu torn=%zu "
      "deleted=%llu retries=%llu%s seconds=%.2f\n",
      static_cast<unsigned long long>(counts.segments.load()),
      static_cast<unsigned long long>(counts.applied.load()),
      static_cast<unsigned long long>(counts.settled.load()),
      static_cast<unsigned long long>(counts.replayed.load()), out.torn.size(),
      static_cast<unsigned long long>(counts.deleted.load()),
      static_cast<unsigned long long>(stats.total_retries()),
      o.replay_validate ? (" " + check_summary(out.check) +
                           " kept_unconfirmed=" + std::to_string(out.unconfirmed))
                              .c_str()
                        : "",
      secs);
  std::fflush(stdout);
  if (out.code) {
    std::fprintf(stderr, "zdm-data: %s\n", out.error.c_str());
    return out.code;
  }
  if (out.interrupted) {
    std::fprintf(stderr, "zdm-data: stopped by a signal; checkpoints kept: a rerun resumes\n");
    return kInterrupted;
  }
  if (out.unconfirmed) {
    std::fprintf(stderr,
                 "zdm-data: %llu segments kept: their partitions differ on target or could not be "
                 "read (listed above); a rerun checks them again, validate --repair fixes "
                 "target\n",
                 static_cast<unsigned long long>(out.unconfirmed));
    return kFailed;
  }
  if (!out.torn.empty() && !o.accept_torn) return kTorn;
  return 0;
}

}  // namespace zdm::data
