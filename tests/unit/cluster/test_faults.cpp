// zdm-testcluster's fault admin, the pure part: JSON in and out, which requests a fault takes,
// and the ERROR bodies of native_protocol_v4.spec §9 they answer with.
#include <doctest/doctest.h>

#include "testcluster/faults.h"
#include "tests/unit/cql/cql_test_util.h"

using namespace zdm::testcluster;
using zdm::cql::Consistency;
using zdm::cql::ErrorCode;
using zdm::cql::Opcode;
using zdm::cql::StatementKind;
using zdm::cql::test::bytes;
using zdm::cql::test::text;
using zdm::cql::test::operator+;
using nlohmann::json;

namespace {

RequestInfo write_request() {
  RequestInfo r;
  r.opcode = Opcode::kExecute;
  r.kind = StatementKind::kInsert;
  r.consistency = Consistency::kLocalQuorum;
  return r;
}

RequestInfo read_request() {
  RequestInfo r;
  r.opcode = Opcode::kQuery;
  r.kind = StatementKind::kSelect;
  return r;
}

}  // namespace

TEST_CASE("fault JSON") {
  SUBCASE("a merged fault shows in to_json; null removes it") {
    NodeFaults f;
    merge_faults(f, json::parse(R"({"latency": {"min_ms": 5, "max_ms": 9, "statements": "reads"},
                                    "error": {"type": "write_timeout", "fraction": 0.25}})"));
    json j = to_json(f);
    CHECK(j["latency"]["min_ms"] == 5);
    CHECK(j["latency"]["statements"] == "reads");
    CHECK(j["error"]["type"] == "write_timeout");
    CHECK(j["error"]["fraction"] == 0.25);
    merge_faults(f, json::parse(R"({"latency": null})"));
    CHECK_FALSE(f.latency);
    CHECK(f.error);
  }
  SUBCASE("a number is a fixed latency") {
    NodeFaults f;
    merge_faults(f, json::parse(R"({"latency": 40})"));
    CHECK((f.latency->min_ms == 40 && f.latency->max_ms == 40));
  }
  SUBCASE("unknown keys and values are refused by name, leaving the faults unchanged") {
    NodeFaults f;
    merge_faults(f, json::parse(R"({"drop": {}})"));
    CHECK_THROWS_WITH_AS(merge_faults(f, json::parse(R"({"silence": {}, "latncy": 5})")),
                         "faults.latncy: unknown key", std::invalid_argument);
    CHECK_THROWS_WITH_AS(merge_faults(f, json::parse(R"({"error": {"type": "nope"}})")),
                         "error.type: expected write_timeout, read_timeout, unavailable, "
                         "overloaded, server_error or is_bootstrapping",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(merge_faults(f, json::parse(R"({"drop": {"fraction": 2}})")),
                         "drop.fraction: must be 0..1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(merge_faults(f, json::parse(R"({"latency": {"min_ms": 9, "max_ms": 1}})")),
                         "latency.max_ms: must be >= min_ms", std::invalid_argument);
    CHECK(f.drop);
    CHECK_FALSE(f.silence);
  }
}

TEST_CASE("which requests a fault takes") {
  std::mt19937_64 rng(7);
  NodeFaults f;
  merge_faults(f, json::parse(R"({"error": {"type": "overloaded", "statements": "writes"}})"));
  CHECK(decide(f, write_request(), rng).action == Decision::Action::kError);
  CHECK(decide(f, read_request(), rng).action == Decision::Action::kAnswer);

  SUBCASE("reads are SELECTs outside the system keyspaces") {
    NodeFaults reads;
    merge_faults(reads, json::parse(R"({"silence": {"statements": "reads"}})"));
    RequestInfo system = read_request();
    system.system = true;
    CHECK(decide(reads, read_request(), rng).action == Decision::Action::kSilence);
    CHECK(decide(reads, system, rng).action == Decision::Action::kAnswer);
  }
  SUBCASE("opcodes narrow it down") {
    NodeFaults ex;
    merge_faults(ex, json::parse(R"({"drop": {"opcodes": ["EXECUTE"]}})"));
    CHECK(decide(ex, write_request(), rng).action == Decision::Action::kDrop);
    CHECK(decide(ex, read_request(), rng).action == Decision::Action::kAnswer);
  }
  SUBCASE("a fraction takes about that share") {
    NodeFaults half;
    merge_faults(half, json::parse(R"({"garbage": {"fraction": 0.5}})"));
    int hit = 0;
    for (int i = 0; i < 1000; ++i)
      hit += decide(half, read_request(), rng).action == Decision::Action::kGarbage;
    CHECK(hit > 400);
    CHECK(hit < 600);
  }
  SUBCASE("latency adds to whatever the answer is") {
    NodeFaults slow;
    merge_faults(slow, json::parse(R"({"latency": {"min_ms": 10, "max_ms": 20}})"));
    Decision d = decide(slow, read_request(), rng);
    CHECK(d.action == Decision::Action::kAnswer);
    CHECK(d.delay_ms >= 10);
    CHECK(d.delay_ms <= 20);
  }
}

TEST_CASE("the ERROR bodies of spec §9") {
  SUBCASE("Write_timeout: <cl><received><blockfor><writeType>") {
    ErrorFault e;
    e.code = ErrorCode::kWriteTimeout;
    auto m = fault_error(e, write_request());
    CHECK(m.message == "Operation timed out - received only 0 responses.");
    CHECK(m.extra == bytes({0x00, 0x06,              // LOCAL_QUORUM
                            0x00, 0x00, 0x00, 0x00,  // received 0
                            0x00, 0x00, 0x00, 0x02,  // blockfor 2 (quorum of 3)
                            0x00, 0x06}) +
                         text("SIMPLE"));
  }
  SUBCASE("a CAS write timeout carries <contentions> in v5 only") {
    ErrorFault e;
    e.code = ErrorCode::kWriteTimeout;
    e.write_type = "CAS";
    RequestInfo r = write_request();
    r.version = 5;
    CHECK(fault_error(e, r).extra.size() == 2 + 4 + 4 + 2 + 3 + 2);
    r.version = 4;
    CHECK(fault_error(e, r).extra.size() == 2 + 4 + 4 + 2 + 3);
  }
  SUBCASE("Read_timeout: <cl><received><blockfor><data_present>") {
    ErrorFault e;
    e.code = ErrorCode::kReadTimeout;
    e.received = 1;
    e.data_present = true;
    CHECK(fault_error(e, read_request()).extra == bytes({0x00, 0x01,              // ONE
                                                         0x00, 0x00, 0x00, 0x01,  // received
                                                         0x00, 0x00, 0x00, 0x01,  // blockfor
                                                         0x01}));                 // data
  }
  SUBCASE("Unavailable: <cl><required><alive>") {
    ErrorFault e;
    e.code = ErrorCode::kUnavailable;
    auto m = fault_error(e, write_request());
    CHECK(m.message == "Cannot achieve consistency level LOCAL_QUORUM");
    CHECK(m.extra == bytes({0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00}));
  }
  SUBCASE("Overloaded, Is_bootstrapping and Server_error have no body") {
    for (auto code :
         {ErrorCode::kOverloaded, ErrorCode::kIsBootstrapping, ErrorCode::kServerError}) {
      ErrorFault e;
      e.code = code;
      e.message = "custom";
      auto m = fault_error(e, read_request());
      CHECK(m.extra.empty());
      CHECK(m.message == "custom");
    }
  }
}

TEST_CASE("garbage frames") {
  GarbageFault body;
  auto frame = garbage_frame(body, 4, 7);
  CHECK(frame.size() == 9 + 31);  // a 31-byte ROWS body claiming 2^31-1 columns
  CHECK(frame[0] == std::byte{0x84});
  CHECK(frame[3] == std::byte{7});
  GarbageFault header;
  header.header = true;
  CHECK(garbage_frame(header, 4, 7).size() == 9);
}
