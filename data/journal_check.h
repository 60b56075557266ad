// The partition check of `zdm-data replay --validate` and `zdm-data validate --keys-from-journal`:
// the partitions journaled writes touched (journal_keys.h) read whole from origin and from target
// (SELECT token(pk), pk…, ck…, values…, writetime/ttl… FROM ks.t WHERE pk1 = <literal or ?> AND
// …, paged, at each cluster's consistency level) and compared row by row, cell by cell (rows.h's
// compare_rows; writetimes not compared). Lives on one io_context's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/journal/journal.h"
#include "data/async.h"
#include "data/client/session.h"
#include "data/journal_keys.h"
#include "data/options.h"
#include "data/rows.h"

namespace zdm::data {

/// What checks found (over one call of PartitionCheck::check, or added up).
struct CheckCounts {
  uint64_t checked = 0;       // partitions read from both clusters
  uint64_t equal = 0;         // … found alike
  uint64_t differing = 0;     // … found different (twice, 200 ms apart)
  uint64_t errors = 0;        // partitions whose read failed for good (RequestError)
  uint64_t unverifiable = 0;  // writes (statements) whose partitions cannot be told, and
                              // partitions over the row limit
  std::map<std::string, uint64_t> unverifiable_by_reason;
  /// "ks.t k=5: 1 row only on origin, 1 row differing (v)": keys and column names, never values.
  std::vector<std::string> differences;
  /// "ks.t k=5: origin: <the error>".
  std::vector<std::string> failures;

  /// Every partition checked was found equal and every read succeeded (unverifiable writes do
  /// not count against it).
  bool confirmed() const { return differing == 0 && errors == 0; }
  void add(const CheckCounts& o);
};

/// The check's settings.
struct CheckSettings {
  /// A partition with more rows than this (on either cluster) is not compared: it counts as
  /// unverifiable ("partition over N rows").
  int max_rows = 10000;
  int page_size = 1000;
  int concurrency = 16;  // partitions checked at once
};

class PartitionCheck {
 public:
  /// Reads with `origin` and `target` (the schema is target's: ClusterInfo::columns).
  PartitionCheck(asio::io_context& ioc, Session& origin, Session& target, CheckSettings settings);

  /// Adds the partitions journaled write `w` touched to the next check (each distinct partition
  /// once; a partition already checked by this object is not checked again when `once`).
  void add(const journal::Write& w);
  /// Partitions waiting for check().
  std::size_t pending() const { return pending_.size(); }
  /// Checks the partitions added since the last call; returns what it found (differences and
  /// unverifiable writes included).
  awaitable<CheckCounts> check();

  /// A partition added once is never checked again by this object (validate
  /// --keys-from-journal: one check per distinct partition of the whole journal).
  bool once = false;

 private:
  struct Table {
    std::optional<TableSchema> schema;  // nullopt: not on target
    std::string select;                 // "SELECT … FROM ks.t" (scan projection)
    std::optional<std::string> origin_difference;
  };
  const TableSchema* schema(const std::string& keyspace, const std::string& table);
  awaitable<void> check_one(const keys::Partition& p, CheckCounts& out);
  // Rows of `p` on one side by RowKey, or nullopt when over the limit.
  awaitable<std::optional<std::map<RowKey, OwnedRow>>> read(bool origin, const Table& t,
                                                            const keys::Partition& p);
  awaitable<std::shared_ptr<Statement>> statement(bool origin, const std::string& query);

  asio::io_context& ioc_;
  Session& origin_;
  Session& target_;
  CheckSettings settings_;
  std::map<std::string, Table> tables_;  // "ks\0table"
  std::set<keys::Partition> pending_, seen_;
  CheckCounts unverifiable_;  // reasons found by add() since the last check()
  std::map<std::string, std::shared_ptr<Statement>> prepared_[2];  // [origin, target]
};

/// The summary fields of a check: "checked=N equal=N differing=N unverifiable=N check_errors=N".
/// Discovers one cluster (nodes, tokens, schema, the protocol version it speaks) on an
/// io_context of its own. Throws JobError (exit 3) when it cannot be reached.
ClusterInfo discover_cluster(const ClusterConfig& config);

std::string check_summary(const CheckCounts& c);
/// Its report for people: each difference and failure, then the unverifiable writes by reason.
std::string check_report(const CheckCounts& c);

/// `zdm-data validate --keys-from-journal DIR…`.
int run_validate_journal(const Options& o);

}  // namespace zdm::data
