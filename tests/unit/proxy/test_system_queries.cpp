#include <doctest/doctest.h>

#include "common/cql/messages.h"
#include "proxy/system_queries.h"

using namespace zdm;
using namespace zdm::proxy;
using cql::Bytes;

namespace {

const char* kSession = "5e1e3f4a-9b0c-11ee-8c90-0242ac120002";

Bytes session_id() {
  return *uuid_in(kSession);
}

// A traced RESULT Void (spec §2.2: the body starts with the 16-byte tracing session id).
Bytes traced_result(const Bytes& id) {
  Bytes body = id;
  for (int b : {0, 0, 0, 1}) body.push_back(static_cast<std::byte>(b));
  return cql::encode_frame(cql::Header{4, true, cql::flag::kTracing, 0, cql::Opcode::kResult, 0},
                           body);
}

}  // namespace

TEST_CASE("system_traces reads go to the cluster that served the traced request") {
  SUBCASE("uuid_in finds the first UUID literal") {
    auto id =
        uuid_in(std::string("SELECT * FROM system_traces.events WHERE session_id = ") + kSession);
    REQUIRE(id);
    CHECK(id->size() == 16);
    CHECK((*id)[0] == std::byte{0x5e});
    CHECK((*id)[15] == std::byte{0x02});
    CHECK(!uuid_in("SELECT * FROM system_traces.sessions"));
    CHECK(!uuid_in("5e1e3f4a-9b0c-11ee-8c90-0242ac12000"));  // one digit short
  }
  SUBCASE("a recorded session routes its reads; others are left as they are") {
    TraceRouting traces;
    Bytes scratch;
    traces.record(traced_result(session_id()), cql::Compression::kNone, scratch, Cluster::kTarget);
    Decision d;
    d.destination = Destination::kOrigin;
    d.metric = RequestType::kReadsOrigin;
    traces.route(std::string("SELECT * FROM system_traces.sessions WHERE session_id = ") + kSession,
                 d);
    CHECK(d.destination == Destination::kTarget);
    CHECK(d.metric == RequestType::kReadsTarget);
    Decision other;
    other.destination = Destination::kOrigin;
    traces.route(
        "SELECT * FROM system_traces.sessions WHERE session_id = "
        "00000000-0000-0000-0000-000000000000",
        other);
    CHECK(other.destination == Destination::kOrigin);
  }
  SUBCASE("only the last 256 sessions are kept") {
    TraceRouting traces;
    Bytes scratch;
    traces.record(traced_result(session_id()), cql::Compression::kNone, scratch, Cluster::kTarget);
    for (int i = 0; i < 256; ++i)
      traces.record(traced_result(Bytes(16, static_cast<std::byte>(i))), cql::Compression::kNone,
                    scratch, Cluster::kOrigin);
    Decision d;
    d.destination = Destination::kOrigin;
    traces.route(kSession, d);
    CHECK(d.destination == Destination::kOrigin);
  }
}

TEST_CASE("system.local before the control connection has a snapshot") {
  const cql::Header h{4, false, 0, 5, cql::Opcode::kQuery, 0};
  VirtualTopology topology;
  const Bytes frame =
      local_select(h, LocalTable::kSystemLocal, cql::classify("SELECT * FROM system.local"),
                   "SELECT * FROM system.local", nullptr, nullptr, Cluster::kOrigin, topology);
  CHECK(frame == cql::encode_error(4, 5, cql::ErrorCode::kServerError,
                                   "ZDM proxy has no ORIGIN topology yet"));
  PreparedCache cache;
  CHECK(local_prepare(h, LocalTable::kSystemLocal, cql::classify("SELECT * FROM system.local"),
                      "SELECT * FROM system.local", "ks", nullptr, topology, cache) ==
        cql::encode_error(4, 5, cql::ErrorCode::kServerError, "ZDM proxy has no topology yet"));
}
