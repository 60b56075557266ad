#include <doctest/doctest.h>

#include "common/cql/messages.h"
#include "proxy/request.h"
#include "proxy/request_router.h"

using namespace zdm;
using namespace zdm::proxy;
using cql::Bytes;

namespace {

Bytes result_void() {
  cql::Bytes body{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}};  // kind Void
  return cql::encode_frame(cql::Header{4, true, 0, 0, cql::Opcode::kResult, 0}, body);
}
Bytes write_timeout() {
  return cql::encode_error(4, 0, cql::ErrorCode::kWriteTimeout, "timed out");
}

struct Counts {
  uint64_t writes_origin, writes_target, writes_both, reads_origin, reads_target;
  bool operator==(const Counts&) const = default;
};
Counts counts(ProxyMetrics& m) {
  return {m.failed_writes_origin().value(), m.failed_writes_target().value(),
          m.failed_writes_both().value(), m.failed_reads(Cluster::kOrigin).value(),
          m.failed_reads(Cluster::kTarget).value()};
}

PendingRequest request(RequestType metric, bool to_origin, bool to_target, ProxyMetrics& m) {
  PendingRequest p;
  p.opcode = cql::Opcode::kExecute;
  p.decision.metric = metric;
  p.start = std::chrono::steady_clock::now();
  p.sent(m, to_origin, to_target);
  return p;
}

}  // namespace

TEST_CASE("a request's end is counted once, whatever ends it") {
  Config config;
  Registry registry;
  ProxyMetrics m(config, registry);
  const auto W = RequestType::kWrites;

  SUBCASE("a dual write both clusters answered: the primary's answer, nothing failed") {
    PendingRequest p = request(W, true, true, m);
    CHECK(m.inflight(W).value() == 1);
    CHECK(!p.answer(Cluster::kOrigin, result_void(), nullptr, cql::Compression::kNone));
    CHECK(p.awaits(Cluster::kTarget));
    CHECK(p.answer(Cluster::kTarget, result_void(), nullptr, cql::Compression::kNone));
    Outcome o = p.answered(m, Cluster::kTarget);
    CHECK(o.chosen == Cluster::kTarget);
    CHECK(!o.error[0]);
    CHECK(!o.error[1]);
    CHECK(counts(m) == Counts{0, 0, 0, 0, 0});
    CHECK(m.request_duration(W).count() == 1);
    CHECK(m.inflight(W).value() == 0);
  }
  SUBCASE("a dual write that failed on one cluster: that cluster's error, counted there") {
    for (Cluster failing : {Cluster::kOrigin, Cluster::kTarget}) {
      PendingRequest p = request(W, true, true, m);
      for (Cluster c : {Cluster::kOrigin, Cluster::kTarget})
        p.answer(c, c == failing ? write_timeout() : result_void(), nullptr,
                 cql::Compression::kNone);
      Outcome o = p.answered(m, Cluster::kOrigin);
      CHECK(o.chosen == failing);
      CHECK(o.error[static_cast<int>(failing)]);
    }
    CHECK(counts(m) == Counts{1, 1, 0, 0, 0});
  }
  SUBCASE("a dual write that failed on both: origin's error, counted once as both") {
    PendingRequest p = request(W, true, true, m);
    p.answer(Cluster::kOrigin, write_timeout(), nullptr, cql::Compression::kNone);
    p.answer(Cluster::kTarget, write_timeout(), nullptr, cql::Compression::kNone);
    CHECK(p.answered(m, Cluster::kTarget).chosen == Cluster::kOrigin);
    CHECK(counts(m) == Counts{0, 0, 1, 0, 0});
  }
  SUBCASE("a read that failed: counted on the cluster it went to") {
    PendingRequest p = request(RequestType::kReadsTarget, false, true, m);
    p.answer(Cluster::kTarget, write_timeout(), nullptr, cql::Compression::kNone);
    CHECK(p.answered(m, Cluster::kOrigin).chosen == Cluster::kTarget);
    CHECK(counts(m) == Counts{0, 0, 0, 0, 1});
    CHECK(m.inflight(RequestType::kReadsTarget).value() == 0);
  }
  SUBCASE("untracked requests (OPTIONS, REGISTER) count nothing") {
    PendingRequest p = request(RequestType::kNone, true, true, m);
    p.answer(Cluster::kOrigin, write_timeout(), nullptr, cql::Compression::kNone);
    p.answer(Cluster::kTarget, write_timeout(), nullptr, cql::Compression::kNone);
    p.answered(m, Cluster::kOrigin);
    p.timed_out(m, Cluster::kOrigin);
    p.lost(m, Cluster::kOrigin, Cluster::kOrigin);
    CHECK(counts(m) == Counts{0, 0, 0, 0, 0});
  }
  SUBCASE("a lost connection: failed there, and on both if the other answered an ERROR") {
    PendingRequest a = request(W, true, true, m);
    a.lost(m, Cluster::kTarget, Cluster::kOrigin);  // neither answered
    CHECK(counts(m) == Counts{0, 1, 0, 0, 0});
    PendingRequest b = request(W, true, true, m);
    b.answer(Cluster::kOrigin, write_timeout(), nullptr, cql::Compression::kNone);
    b.lost(m, Cluster::kTarget, Cluster::kOrigin);
    CHECK(counts(m) == Counts{0, 1, 1, 0, 0});
    PendingRequest c = request(W, true, true, m);
    c.answer(Cluster::kTarget, result_void(), nullptr, cql::Compression::kNone);
    c.lost(m, Cluster::kOrigin, Cluster::kOrigin);
    CHECK(counts(m) == Counts{1, 1, 1, 0, 0});
    PendingRequest d = request(RequestType::kReadsOrigin, true, false, m);
    d.lost(m, Cluster::kOrigin, Cluster::kOrigin);
    CHECK(counts(m) == Counts{1, 1, 1, 1, 0});
    CHECK(m.inflight(W).value() == 0);
    CHECK(m.request_duration(W).count() == 0);
  }
  SUBCASE("a timeout: failed on each cluster that owes an answer") {
    PendingRequest a = request(W, true, true, m);
    a.timed_out(m, Cluster::kOrigin);
    CHECK(counts(m) == Counts{0, 0, 1, 0, 0});
    PendingRequest b = request(W, true, true, m);
    b.answer(Cluster::kOrigin, write_timeout(), nullptr, cql::Compression::kNone);
    b.timed_out(m, Cluster::kOrigin);  // origin's ERROR is not counted: target timed out
    CHECK(counts(m) == Counts{0, 1, 1, 0, 0});
    PendingRequest c = request(RequestType::kReadsOrigin, true, false, m);
    c.timed_out(m, Cluster::kTarget);
    CHECK(counts(m) == Counts{0, 1, 1, 1, 0});
    CHECK(m.inflight(W).value() == 0);
    CHECK(m.inflight(RequestType::kReadsOrigin).value() == 0);
  }
  SUBCASE("UNPREPARED is passed on to the client but not counted as failed") {
    PendingRequest p = request(W, true, true, m);
    p.answer(Cluster::kOrigin, result_void(), nullptr, cql::Compression::kNone);
    p.answer(Cluster::kTarget, cql::encode_error(4, 0, cql::ErrorCode::kUnprepared, "unknown id"),
             nullptr, cql::Compression::kNone);
    Outcome o = p.answered(m, Cluster::kOrigin);
    CHECK(o.chosen == Cluster::kTarget);  // the driver prepares again
    CHECK(o.error[1]);
    CHECK(counts(m) == Counts{0, 0, 0, 0, 0});
  }
  SUBCASE("never sent (no node of a cluster reachable): failed there, not in flight") {
    PendingRequest p = request(W, true, true, m);
    const int64_t before = m.inflight(W).value();
    p.unreachable(m, Cluster::kTarget, Cluster::kOrigin);
    CHECK(counts(m) == Counts{0, 1, 0, 0, 0});
    CHECK(m.inflight(W).value() == before);
    PendingRequest n = request(RequestType::kNone, true, true, m);
    n.unreachable(m, Cluster::kOrigin, Cluster::kOrigin);
    CHECK(m.client_errors(ProxyMetrics::ClientError::kNodeFailed).value() == 1);
  }
  SUBCASE("the session closed: in flight no more, nothing failed") {
    PendingRequest p = request(W, true, true, m);
    p.abandoned(m);
    CHECK(counts(m) == Counts{0, 0, 0, 0, 0});
    CHECK(m.inflight(W).value() == 0);
    CHECK(m.request_duration(W).count() == 0);
  }
  SUBCASE("a node's latency and error label are observed as its answer comes") {
    NodeMetrics& node = m.node("origin", "127.0.2.1:9042");
    PendingRequest p = request(W, true, false, m);
    p.answer(Cluster::kOrigin, write_timeout(), &node, cql::Compression::kNone);
    CHECK(node.writes->count() == 1);
    CHECK(node.requests_failed["write_timeout"]->value() == 1);
  }
}

TEST_CASE("a large compressed QUERY that is not a write is routed from its first bytes") {
  auto query_frame = [](const std::string& q, std::size_t padding) {
    Bytes body;
    cql::Writer w(body);
    w.write_long_string(q);
    w.write_short(1);  // ONE
    w.write_byte(0);   // no flags
    body.resize(body.size() + padding);
    const Bytes packed = cql::compress_body(cql::Compression::kLz4, body);
    return cql::encode_frame(
        cql::Header{4, false, cql::flag::kCompression, 1, cql::Opcode::kQuery, 0}, packed);
  };
  const auto h = [](const Bytes& f) { return cql::decode_header(cql::BytesView(f).first(9)); };
  Bytes scratch;
  const uint32_t max = 256 << 20;
  const Bytes read = query_frame("SELECT key FROM system.local", 24 << 20);
  auto p = RequestRouter::query_prefix(h(read), read, cql::Compression::kLz4, scratch, max);
  REQUIRE(p);
  CHECK(p->size() == RequestRouter::kQueryPrefixBytes);
  CHECK(scratch.size() == RequestRouter::kQueryPrefixBytes);  // not 24 MiB
  // A write may be completed (a timestamp, now()): inflated whole.
  const Bytes write = query_frame("INSERT INTO ks.t (k) VALUES (1)", 1 << 20);
  CHECK(!RequestRouter::query_prefix(h(write), write, cql::Compression::kLz4, scratch, max));
  // Over the largest frame accepted: refused by the whole-body path, as any request.
  CHECK(!RequestRouter::query_prefix(h(read), read, cql::Compression::kLz4, scratch, 1 << 20));
  // Small bodies, and snappy (no partial inflation), take the usual path.
  const Bytes small = query_frame("SELECT key FROM system.local", 100);
  CHECK(!RequestRouter::query_prefix(h(small), small, cql::Compression::kLz4, scratch, max));
  CHECK(!RequestRouter::query_prefix(h(read), read, cql::Compression::kSnappy, scratch, max));
  // A query string longer than the prefix: inflated whole.
  const Bytes long_query =
      query_frame("SELECT * FROM t WHERE k IN (" + std::string(70000, '1') + ")", 1 << 20);
  CHECK(!RequestRouter::query_prefix(h(long_query), long_query, cql::Compression::kLz4, scratch,
                                     max));
}
