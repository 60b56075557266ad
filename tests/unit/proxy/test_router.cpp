#include <doctest/doctest.h>

#include "proxy/router.h"

using namespace zdm::proxy;
using zdm::cql::classify;

namespace {
Config config(Cluster primary, ReadMode mode) {
  Config c;
  c.primary_cluster = primary;
  c.read_mode = mode;
  return c;
}
}  // namespace

TEST_CASE("routing of statements") {
  struct Case {
    const char* cql;
    Cluster primary;
    ReadMode mode;
    Decision expected;
  };
  const auto P = ReadMode::kPrimaryOnly;
  const auto A = ReadMode::kDualAsyncOnSecondary;
  const auto O = Cluster::kOrigin;
  const auto T = Cluster::kTarget;
  const Case cases[] = {
      {"SELECT * FROM ks.t WHERE id = 1",
       O,
       P,
       {Destination::kOrigin, false, RequestType::kReadsOrigin}},
      {"SELECT * FROM ks.t WHERE id = 1",
       T,
       P,
       {Destination::kTarget, false, RequestType::kReadsTarget}},
      {"SELECT * FROM ks.t WHERE id = 1",
       O,
       A,
       {Destination::kOrigin, true, RequestType::kReadsOrigin}},
      {"SELECT * FROM ks.t WHERE id = 1",
       T,
       A,
       {Destination::kTarget, true, RequestType::kReadsTarget}},
      {"INSERT INTO ks.t (id) VALUES (1)", T, A, {Destination::kBoth, false, RequestType::kWrites}},
      {"UPDATE ks.t SET v = 1 WHERE id = 1",
       O,
       P,
       {Destination::kBoth, false, RequestType::kWrites}},
      {"DELETE FROM ks.t WHERE id = 1", O, P, {Destination::kBoth, false, RequestType::kWrites}},
      {"BEGIN BATCH INSERT INTO ks.t (id) VALUES (1); APPLY BATCH",
       O,
       P,
       {Destination::kBoth, false, RequestType::kWrites}},
      {"CREATE TABLE ks.t (id int PRIMARY KEY)",
       O,
       P,
       {Destination::kBoth, false, RequestType::kWrites}},
      {"USE ks", O, A, {Destination::kBoth, true, RequestType::kWrites}},
      {"GRANT SELECT ON ks.t TO bob", O, P, {Destination::kBoth, false, RequestType::kWrites}},
      // System keyspaces are read from origin, never mirrored, whatever the primary.
      {"SELECT * FROM system_schema.tables",
       T,
       A,
       {Destination::kOrigin, false, RequestType::kReadsOrigin}},
      {"SELECT * FROM system.size_estimates",
       T,
       P,
       {Destination::kOrigin, false, RequestType::kReadsOrigin}},
      {"SELECT * FROM dse_insights.x",
       T,
       P,
       {Destination::kOrigin, false, RequestType::kReadsOrigin}},
      // system.local / peers / peers_v2 are answered by the proxy.
      {"SELECT * FROM system.local WHERE key='local'",
       O,
       P,
       {Destination::kLocal, false, RequestType::kNone, LocalTable::kSystemLocal}},
      {"select peer, rpc_address from system.peers",
       T,
       A,
       {Destination::kLocal, false, RequestType::kNone, LocalTable::kSystemPeers}},
      {"SELECT * FROM system.peers_v2",
       O,
       P,
       {Destination::kLocal, false, RequestType::kNone, LocalTable::kSystemPeersV2}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.cql);
    CHECK(route_statement(classify(c.cql), "", config(c.primary, c.mode)) == c.expected);
  }
}

TEST_CASE("unqualified tables use the connection's keyspace") {
  Config c = config(Cluster::kOrigin, ReadMode::kPrimaryOnly);
  CHECK(route_statement(classify("SELECT * FROM local"), "system", c).local ==
        LocalTable::kSystemLocal);
  CHECK(route_statement(classify("SELECT * FROM tables"), "system_schema", c).destination ==
        Destination::kOrigin);
  CHECK(route_statement(classify("SELECT * FROM local"), "app", c).local == LocalTable::kNone);
}

TEST_CASE("routing of requests without a statement") {
  Config c = config(Cluster::kTarget, ReadMode::kDualAsyncOnSecondary);
  CHECK(route_opcode(zdm::cql::Opcode::kBatch, c) ==
        Decision{Destination::kBoth, false, RequestType::kWrites});
  CHECK(route_opcode(zdm::cql::Opcode::kStartup, c) ==
        Decision{Destination::kBoth, false, RequestType::kNone});
  CHECK(route_opcode(zdm::cql::Opcode::kRegister, c) ==
        Decision{Destination::kBoth, false, RequestType::kNone});
}

TEST_CASE("system_queries_mode sends system-keyspace reads to its cluster") {
  Config c = config(Cluster::kOrigin, ReadMode::kDualAsyncOnSecondary);
  c.system_queries_mode = Cluster::kTarget;
  CHECK(route_statement(classify("SELECT * FROM system_schema.tables"), "", c) ==
        Decision{Destination::kTarget, false, RequestType::kReadsTarget});
  CHECK(route_statement(classify("SELECT * FROM ks.t"), "", c) ==
        Decision{Destination::kOrigin, true, RequestType::kReadsOrigin});
}

TEST_CASE("aggregation of answers from both clusters") {
  using zdm::cql::Opcode;
  using FW = Aggregate::FailedWrite;
  const bool both[2] = {true, true}, origin_only[2] = {true, false}, target_only[2] = {false, true};
  const bool ok[2] = {false, false}, o_err[2] = {true, false}, t_err[2] = {false, true},
             b_err[2] = {true, true};
  struct Case {
    const bool* expected;
    const bool* error;
    Opcode op;
    RequestType metric;
    Cluster primary;
    Aggregate want;
  };
  const Case cases[] = {
      {both, ok, Opcode::kQuery, RequestType::kWrites, Cluster::kOrigin, {Cluster::kOrigin}},
      {both, ok, Opcode::kQuery, RequestType::kWrites, Cluster::kTarget, {Cluster::kTarget}},
      {both, ok, Opcode::kPrepare, RequestType::kNone, Cluster::kTarget, {Cluster::kOrigin}},
      {both,
       t_err,
       Opcode::kExecute,
       RequestType::kWrites,
       Cluster::kOrigin,
       {Cluster::kTarget, FW::kTarget}},
      {both,
       o_err,
       Opcode::kExecute,
       RequestType::kWrites,
       Cluster::kTarget,
       {Cluster::kOrigin, FW::kOrigin}},
      {both,
       b_err,
       Opcode::kBatch,
       RequestType::kWrites,
       Cluster::kTarget,
       {Cluster::kOrigin, FW::kBoth}},
      {both, t_err, Opcode::kOptions, RequestType::kNone, Cluster::kOrigin, {Cluster::kTarget}},
      {origin_only,
       o_err,
       Opcode::kQuery,
       RequestType::kReadsOrigin,
       Cluster::kOrigin,
       {Cluster::kOrigin, FW::kNone, true}},
      {target_only,
       ok,
       Opcode::kQuery,
       RequestType::kReadsTarget,
       Cluster::kTarget,
       {Cluster::kTarget}},
  };
  for (const auto& c : cases)
    CHECK(aggregate(c.expected, c.error, c.op, c.metric, c.primary) == c.want);
}
