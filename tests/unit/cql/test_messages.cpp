#include <doctest/doctest.h>

#include "common/cql/messages.h"
#include "tests/unit/cql/cql_test_util.h"

using namespace zdm::cql;
using zdm::cql::test::bytes;
using zdm::cql::test::text;
using zdm::cql::test::operator+;

namespace {

constexpr uint8_t kV4 = 4;
constexpr uint8_t kV5 = 5;

template <class Msg>
Bytes encode(const Msg& m, uint8_t version) {
  Bytes out;
  Writer w(out);
  m.encode(w, version);
  return out;
}

template <class Msg>
Bytes encode(const Msg& m) {
  Bytes out;
  Writer w(out);
  m.encode(w);
  return out;
}

// Decodes the whole of `body`, checking nothing is left over.
template <class Msg>
Msg decode(const Bytes& body, uint8_t version) {
  Reader r(body);
  Msg m = Msg::decode(r, version);
  CHECK(r.remaining() == 0);
  return m;
}

template <class Msg>
Msg decode(const Bytes& body) {
  Reader r(body);
  Msg m = Msg::decode(r);
  CHECK(r.remaining() == 0);
  return m;
}

const DataType kInt = DataType::of(TypeId::kInt);
const DataType kText = DataType::of(TypeId::kVarchar);

// QUERY "SELECT * FROM ks.t" at ONE with a page size, v4 (§4.1.4).
const Bytes kQueryBodyV4 = bytes({0x00, 0x00, 0x00, 0x12}) +  // [long string] length 18
                           text("SELECT * FROM ks.t") +       // query
                           bytes({0x00, 0x01,                 // consistency ONE
                                  0x04,                       // flags [byte]: page size
                                  0x00, 0x00, 0x13, 0x88});   // page size 5000

// The same QUERY in v5, where the flags are an [int] (native_protocol_v5.spec §4.1.4).
const Bytes kQueryBodyV5 = bytes({0x00, 0x00, 0x00, 0x12}) +  // [long string] length 18
                           text("SELECT * FROM ks.t") +       // query
                           bytes({0x00, 0x01,                 // consistency ONE
                                  0x00, 0x00, 0x00, 0x04,     // flags [int]: page size
                                  0x00, 0x00, 0x13, 0x88});   // page size 5000

// RESULT Prepared for "INSERT INTO ks.t (id, v) VALUES (?, ?)", v4 (§4.2.5.4).
const Bytes kPreparedBodyV4 = bytes({0x00, 0x00, 0x00, 0x04,  // kind Prepared
                                     0x00, 0x04,              // [short bytes] id length 4
                                     0xca, 0xfe, 0xba, 0xbe,  // id
                                     0x00, 0x00, 0x00, 0x01,  // flags: global table spec
                                     0x00, 0x00, 0x00, 0x02,  // columns_count 2
                                     0x00, 0x00, 0x00, 0x01,  // pk_count 1
                                     0x00, 0x00}) +           // pk_index_1 = 0
                              bytes({0x00, 0x02}) +
                              text("ks") +                        // global keyspace
                              bytes({0x00, 0x01}) + text("t") +   // global table
                              bytes({0x00, 0x02}) + text("id") +  // column 1 name
                              bytes({0x00, 0x09}) +               // column 1 type int
                              bytes({0x00, 0x01}) + text("v") +   // column 2 name
                              bytes({0x00, 0x0d,                  // column 2 type varchar
                                     0x00, 0x00, 0x00, 0x04,      // result metadata: no metadata
                                     0x00, 0x00, 0x00, 0x00});    // result columns_count 0

// RESULT Rows from system.local with a global table spec and one row (§4.2.5.2).
const Bytes kRowsBody = bytes({0x00, 0x00, 0x00, 0x02,     // kind Rows
                               0x00, 0x00, 0x00, 0x01,     // flags: global table spec
                               0x00, 0x00, 0x00, 0x02}) +  // columns_count 2
                        bytes({0x00, 0x06}) +
                        text("system") +                          // global keyspace
                        bytes({0x00, 0x05}) + text("local") +     // global table
                        bytes({0x00, 0x03}) + text("key") +       // column 1 name
                        bytes({0x00, 0x0d}) +                     // column 1 type varchar
                        bytes({0x00, 0x08}) + text("rpc_port") +  // column 2 name
                        bytes({0x00, 0x09,                        // column 2 type int
                               0x00, 0x00, 0x00, 0x01,            // rows_count 1
                               0x00, 0x00, 0x00, 0x05}) +         // row 1 col 1: [bytes] len 5
                        text("local") +                           //   "local"
                        bytes({0xff, 0xff, 0xff, 0xff});          // row 1 col 2: null

}  // namespace

TEST_CASE("QUERY") {
  SUBCASE("golden v4 body for SELECT * FROM ks.t at ONE") {
    QueryMsg q = decode<QueryMsg>(kQueryBodyV4, kV4);
    CHECK(q.query == "SELECT * FROM ks.t");
    CHECK(q.params.consistency == Consistency::kOne);
    CHECK(q.params.flags == query_flag::kPageSize);
    CHECK(q.params.page_size == 5000);
    CHECK(q.params.values.empty());
    CHECK_FALSE(q.params.paging_state);
    CHECK(encode(q, kV4) == kQueryBodyV4);
  }
  SUBCASE("as a whole v4 frame") {
    QueryMsg q;
    q.query = "SELECT * FROM ks.t";
    q.params.flags = query_flag::kPageSize;
    q.params.page_size = 5000;
    Bytes expected = bytes({0x04,                     // version 4, request
                            0x00,                     // flags
                            0x00, 0x01,               // stream 1
                            0x07,                     // opcode QUERY
                            0x00, 0x00, 0x00, 0x1d})  // body length 29
                     + kQueryBodyV4;
    CHECK(encode_message(kV4, false, 1, Opcode::kQuery, q) == expected);
  }
  SUBCASE("v5 carries the flags as an [int]") {
    QueryMsg q = decode<QueryMsg>(kQueryBodyV5, kV5);
    CHECK(q.params.page_size == 5000);
    CHECK(encode(q, kV5) == kQueryBodyV5);
    CHECK(encode(q, kV4) == kQueryBodyV4);
  }
  SUBCASE("a truncated body names the missing length") {
    Bytes body = bytes({0x00, 0x00});  // half a [long string] length
    Reader r(body);
    CHECK_THROWS_WITH_AS(QueryMsg::decode(r, kV4), "truncated frame: expected 4 bytes, length is 2",
                         ProtocolError);
  }
  SUBCASE("a truncated page size") {
    Bytes body(kQueryBodyV4.begin(), kQueryBodyV4.end() - 2);
    Reader r(body);
    CHECK_THROWS_WITH_AS(QueryMsg::decode(r, kV4), "truncated frame: expected 4 bytes, length is 2",
                         ProtocolError);
  }
  SUBCASE("an unknown consistency code") {
    Bytes body = kQueryBodyV4;
    body[4 + 18 + 1] = std::byte{0x0b};  // consistency 0x000B
    Reader r(body);
    CHECK_THROWS_WITH_AS(QueryMsg::decode(r, kV4), "Unknown code 11 for a consistency level",
                         ProtocolError);
  }
}

TEST_CASE("query parameters") {
  SUBCASE("golden v4 with values (one null, one unset), paging state, serial CL, timestamp") {
    const Bytes golden = bytes({0x00, 0x06,                          // consistency LOCAL_QUORUM
                                0x3d,                                // flags: values | page size |
                                                                     // paging state | serial | ts
                                0x00, 0x03,                          // 3 values
                                0x00, 0x00, 0x00, 0x01, 0x2a,        // value 1: 1 byte 0x2a
                                0xff, 0xff, 0xff, 0xff,              // value 2: null
                                0xff, 0xff, 0xff, 0xfe,              // value 3: unset
                                0x00, 0x00, 0x00, 0x64,              // page size 100
                                0x00, 0x00, 0x00, 0x02, 0xab, 0xcd,  // paging state [bytes]
                                0x00, 0x09,                          // serial LOCAL_SERIAL
                                0x00, 0x05, 0xd0, 0x2b, 0x1c, 0x3e, 0x10, 0x00});  // timestamp
    QueryParameters p = decode<QueryParameters>(golden, kV4);
    CHECK(p.consistency == Consistency::kLocalQuorum);
    REQUIRE(p.values.size() == 3);
    CHECK(p.values[0] == Value::of(bytes({0x2a})));
    CHECK(p.values[1] == Value::null());
    CHECK(p.values[2] == Value::unset());
    CHECK(p.page_size == 100);
    CHECK(p.paging_state == bytes({0xab, 0xcd}));
    CHECK(p.serial_consistency == Consistency::kLocalSerial);
    CHECK(p.timestamp == 0x0005d02b1c3e1000);
    CHECK(encode(p, kV4) == golden);
  }
  SUBCASE("named values") {
    const Bytes golden = bytes({0x00, 0x01,                      // consistency ONE
                                0x41,                            // flags: values | names for values
                                0x00, 0x01,                      // 1 value
                                0x00, 0x01, 'k',                 // name "k"
                                0x00, 0x00, 0x00, 0x01, 0x07});  // value
    QueryParameters p = decode<QueryParameters>(golden, kV4);
    CHECK(p.names == std::vector<std::string>{"k"});
    CHECK(encode(p, kV4) == golden);
  }
  SUBCASE("values imply the values flag on encode") {
    QueryParameters p;
    p.values = {Value::null()};
    CHECK(encode(p, kV4) == bytes({0x00, 0x01,                 // ONE
                                   0x01,                       // flags: values
                                   0x00, 0x01,                 // 1 value
                                   0xff, 0xff, 0xff, 0xff}));  // null
  }
  SUBCASE("v5 adds keyspace (0x80) and now_in_seconds (0x100)") {
    const Bytes golden = bytes({0x00, 0x01,                // consistency ONE
                                0x00, 0x00, 0x01, 0x80,    // flags [int]: keyspace | now
                                0x00, 0x02, 'k', 's',      // keyspace "ks"
                                0x00, 0x00, 0x00, 0x2a});  // now_in_seconds 42
    QueryParameters p = decode<QueryParameters>(golden, kV5);
    CHECK(p.keyspace == "ks");
    CHECK(p.now_in_seconds == 42);
    CHECK(encode(p, kV5) == golden);
  }
  SUBCASE("DSE v2 has the keyspace flag; DSE v1 has [int] flags but no keyspace") {
    const Bytes with_ks = bytes({0x00, 0x01,              // consistency ONE
                                 0x00, 0x00, 0x00, 0x80,  // flags [int]: keyspace
                                 0x00, 0x02, 'k', 's'});  // keyspace "ks"
    QueryParameters p = decode<QueryParameters>(with_ks, 0x42);
    CHECK(p.keyspace == "ks");
    CHECK(encode(p, 0x42) == with_ks);
    // DSE v1 defines no 0x80 flag (python-driver: uses_keyspace_flag is false): nothing follows.
    Reader r(with_ks);
    QueryParameters v1 = QueryParameters::decode(r, 0x41);
    CHECK(v1.keyspace.empty());
    CHECK(r.remaining() == 4);
  }
  SUBCASE("an invalid [value] length (-3) is an error") {
    const Bytes body = bytes({0x00, 0x01, 0x01, 0x00, 0x01, 0xff, 0xff, 0xff, 0xfd});
    Reader r(body);
    CHECK_THROWS_WITH_AS(QueryParameters::decode(r, kV4), "invalid [value] length -3",
                         ProtocolError);
  }
}

TEST_CASE("PREPARE") {
  struct Case {
    const char* name;
    uint8_t version;
    std::string keyspace;
    Bytes golden;
  };
  const Bytes query = bytes({0x00, 0x00, 0x00, 0x12}) + text("SELECT * FROM ks.t");
  const Case cases[] = {
      {"v4 is the query only", kV4, "", query},
      {"v5 adds [int] flags", kV5, "", query + bytes({0x00, 0x00, 0x00, 0x00})},
      {"v5 with a keyspace sets flag 0x01", kV5, "ks",
       query + bytes({0x00, 0x00, 0x00, 0x01,  // flags: keyspace
                      0x00, 0x02, 'k', 's'})},
      {"DSE v1 has no flags", 0x41, "", query},
      {"DSE v2 has flags", 0x42, "", query + bytes({0x00, 0x00, 0x00, 0x00})},
      {"DSE v2 with a keyspace", 0x42, "ks",
       query + bytes({0x00, 0x00, 0x00, 0x01,  // flags: keyspace
                      0x00, 0x02, 'k', 's'})},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      PrepareMsg p = decode<PrepareMsg>(c.golden, c.version);
      CHECK(p.query == "SELECT * FROM ks.t");
      CHECK(p.keyspace == c.keyspace);
      CHECK(encode(p, c.version) == c.golden);
    }
  }
}

TEST_CASE("EXECUTE") {
  const Bytes params_v4 = bytes({0x00, 0x04, 0x00});                    // QUORUM, flags [byte] 0
  const Bytes params_v5 = bytes({0x00, 0x04, 0x00, 0x00, 0x00, 0x00});  // QUORUM, flags [int] 0
  SUBCASE("v4: prepared id then parameters") {
    const Bytes golden = bytes({0x00, 0x04, 0xca, 0xfe, 0xba, 0xbe}) + params_v4;
    ExecuteMsg e = decode<ExecuteMsg>(golden, kV4);
    CHECK(e.id == bytes({0xca, 0xfe, 0xba, 0xbe}));
    CHECK(e.result_metadata_id.empty());
    CHECK(e.params.consistency == Consistency::kQuorum);
    CHECK(encode(e, kV4) == golden);
  }
  SUBCASE("v5: prepared id, result_metadata_id, then parameters") {
    const Bytes golden = bytes({0x00, 0x04, 0xca, 0xfe, 0xba, 0xbe,  // id
                                0x00, 0x02, 0x11, 0x22}) +           // result_metadata_id
                         params_v5;
    ExecuteMsg e = decode<ExecuteMsg>(golden, kV5);
    CHECK(e.result_metadata_id == bytes({0x11, 0x22}));
    CHECK(encode(e, kV5) == golden);
  }
  SUBCASE("DSE v2 has int flags and a result_metadata_id, as v5") {
    const Bytes golden = bytes({0x00, 0x01, 0x07,     // id
                                0x00, 0x01, 0x08}) +  // result_metadata_id
                         params_v5;
    ExecuteMsg e = decode<ExecuteMsg>(golden, 0x42);
    CHECK(e.result_metadata_id == bytes({0x08}));
    CHECK(encode(e, 0x42) == golden);
  }
  SUBCASE("DSE v1 has int flags but no result_metadata_id") {
    const Bytes golden = bytes({0x00, 0x01, 0x07}) + params_v5;
    ExecuteMsg e = decode<ExecuteMsg>(golden, 0x41);
    CHECK(e.id == bytes({0x07}));
    CHECK(encode(e, 0x41) == golden);
  }
}

TEST_CASE("BATCH") {
  const Bytes children = bytes({0x00, 0x02,                    // 2 statements
                                0x00,                          // kind: query string
                                0x00, 0x00, 0x00, 0x0e}) +     // [long string] length 14
                         text("DELETE FROM t1") +              //
                         bytes({0x00, 0x00,                    // no values
                                0x01,                          // kind: prepared id
                                0x00, 0x02, 0xab, 0xcd,        // [short bytes] id
                                0x00, 0x02,                    // 2 values
                                0x00, 0x00, 0x00, 0x01, 0x01,  // value 1
                                0xff, 0xff, 0xff, 0xfe});      // value 2: unset
  SUBCASE("golden v4 unlogged batch with a timestamp") {
    const Bytes golden = bytes({0x01}) + children +  // type UNLOGGED
                         bytes({0x00, 0x01,          // consistency ONE
                                0x20,                // flags [byte]: default timestamp
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07});  // timestamp 7
    BatchMsg b = decode<BatchMsg>(golden, kV4);
    CHECK(b.type == BatchType::kUnlogged);
    REQUIRE(b.children.size() == 2);
    CHECK_FALSE(b.children[0].prepared);
    CHECK(b.children[0].query == "DELETE FROM t1");
    CHECK(b.children[1].prepared);
    CHECK(b.children[1].id == bytes({0xab, 0xcd}));
    CHECK(b.children[1].values == std::vector<Value>{Value::of(bytes({0x01})), Value::unset()});
    CHECK(b.timestamp == 7);
    CHECK(encode(b, kV4) == golden);
  }
  SUBCASE("v5 counter batch with [int] flags, serial CL, keyspace and now_in_seconds") {
    const Bytes golden = bytes({0x02}) + children +        // type COUNTER
                         bytes({0x00, 0x04,                // consistency QUORUM
                                0x00, 0x00, 0x01, 0x90,    // flags: serial | keyspace | now
                                0x00, 0x08,                // serial consistency SERIAL
                                0x00, 0x02, 'k', 's',      // keyspace
                                0x00, 0x00, 0x00, 0x01});  // now_in_seconds 1
    BatchMsg b = decode<BatchMsg>(golden, kV5);
    CHECK(b.type == BatchType::kCounter);
    CHECK(b.keyspace == "ks");
    CHECK(b.now_in_seconds == 1);
    CHECK(encode(b, kV5) == golden);
  }
  SUBCASE("an invalid batch type or statement kind is an error") {
    const Bytes bad_type = bytes({0x03, 0x00, 0x00});
    Reader r1(bad_type);
    CHECK_THROWS_WITH_AS(BatchMsg::decode(r1, kV4), "invalid BATCH type 3", ProtocolError);
    const Bytes bad_kind = bytes({0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00});
    Reader r2(bad_kind);
    CHECK_THROWS_WITH_AS(BatchMsg::decode(r2, kV4), "invalid BATCH statement kind 2",
                         ProtocolError);
  }
}

TEST_CASE("RESULT") {
  SUBCASE("Void") {
    const Bytes golden = bytes({0x00, 0x00, 0x00, 0x01});  // kind Void
    ResultMsg m = decode<ResultMsg>(golden, kV4);
    CHECK(m.kind() == ResultKind::kVoid);
    CHECK(encode(m, kV4) == golden);
  }
  SUBCASE("Set_keyspace") {
    const Bytes golden = bytes({0x00, 0x00, 0x00, 0x03,  // kind Set_keyspace
                                0x00, 0x02, 'k', 's'});  // keyspace
    ResultMsg m = decode<ResultMsg>(golden, kV4);
    CHECK(m.kind() == ResultKind::kSetKeyspace);
    CHECK(std::get<SetKeyspaceResult>(m.body).keyspace == "ks");
    CHECK(encode(m, kV4) == golden);
  }
  SUBCASE("Rows with a global table spec") {
    ResultMsg m = decode<ResultMsg>(kRowsBody, kV4);
    REQUIRE(m.kind() == ResultKind::kRows);
    const auto& rows = std::get<RowsResult>(m.body);
    CHECK(rows.metadata.column_count == 2);
    CHECK(rows.metadata.columns == std::vector<ColumnSpec>{{"system", "local", "key", kText},
                                                           {"system", "local", "rpc_port", kInt}});
    REQUIRE(rows.rows.size() == 1);
    CHECK(rows.rows[0] == Row{to_bytes("local"), std::nullopt});
    CHECK(encode(m, kV4) == kRowsBody);
  }
  SUBCASE("Rows built in code get a global table spec when all columns share a table") {
    RowsResult rows;
    rows.metadata.columns = {{"system", "local", "key", kText},
                             {"system", "local", "rpc_port", kInt}};
    rows.rows = {Row{to_bytes("local"), std::nullopt}};
    CHECK(encode(ResultMsg{rows}, kV4) == kRowsBody);
  }
  SUBCASE("Rows from two tables carry a keyspace and table per column") {
    const Bytes golden = bytes({0x00, 0x00, 0x00, 0x02,     // kind Rows
                                0x00, 0x00, 0x00, 0x00,     // flags: none
                                0x00, 0x00, 0x00, 0x02}) +  // columns_count 2
                         bytes({0x00, 0x02}) +
                         text("ks") +                        // column 1 keyspace
                         bytes({0x00, 0x01}) + text("a") +   // column 1 table
                         bytes({0x00, 0x01}) + text("x") +   // column 1 name
                         bytes({0x00, 0x09}) +               // column 1 type int
                         bytes({0x00, 0x02}) + text("ks") +  // column 2 keyspace
                         bytes({0x00, 0x01}) + text("b") +   // column 2 table
                         bytes({0x00, 0x01}) + text("y") +   // column 2 name
                         bytes({0x00, 0x21, 0x00, 0x0d, 0x00, 0x20, 0x00, 0x09}) +  // map<text,
                                                                                    // list<int>>
                         bytes({0x00, 0x00, 0x00, 0x00});                           // rows_count 0
    ResultMsg m = decode<ResultMsg>(golden, kV4);
    const auto& cols = std::get<RowsResult>(m.body).metadata.columns;
    REQUIRE(cols.size() == 2);
    CHECK(cols[0].table == "a");
    CHECK(cols[1].table == "b");
    CHECK(cql_type_name(cols[1].type) == "map<text, list<int>>");
    CHECK(encode(m, kV4) == golden);
  }
  SUBCASE("Rows without metadata, with a paging state") {
    const Bytes golden = bytes({0x00, 0x00, 0x00, 0x02,        // kind Rows
                                0x00, 0x00, 0x00, 0x06,        // flags: has more pages | no meta
                                0x00, 0x00, 0x00, 0x01,        // columns_count 1
                                0x00, 0x00, 0x00, 0x01, 0x99,  // paging state
                                0x00, 0x00, 0x00, 0x02,        // rows_count 2
                                0x00, 0x00, 0x00, 0x01, 0x01,  // row 1
                                0x00, 0x00, 0x00, 0x00});      // row 2: empty, not null
    ResultMsg m = decode<ResultMsg>(golden, kV4);
    const auto& rows = std::get<RowsResult>(m.body);
    CHECK(rows.metadata.columns.empty());
    CHECK(rows.metadata.paging_state == bytes({0x99}));
    REQUIRE(rows.rows.size() == 2);
    CHECK(rows.rows[1] == Row{Bytes{}});
    CHECK(encode(m, kV4) == golden);
  }
  SUBCASE("v5 Rows with a new_metadata_id") {
    const Bytes golden = bytes({0x00, 0x00, 0x00, 0x02,    // kind Rows
                                0x00, 0x00, 0x00, 0x0c,    // flags: no metadata | changed
                                0x00, 0x00, 0x00, 0x00,    // columns_count 0
                                0x00, 0x02, 0x33, 0x44,    // new_metadata_id
                                0x00, 0x00, 0x00, 0x00});  // rows_count 0
    ResultMsg m = decode<ResultMsg>(golden, kV5);
    CHECK(std::get<RowsResult>(m.body).metadata.new_metadata_id == bytes({0x33, 0x44}));
    CHECK(encode(m, kV5) == golden);
  }
  SUBCASE("Prepared with pk_indices and a global table spec (v4)") {
    ResultMsg m = decode<ResultMsg>(kPreparedBodyV4, kV4);
    REQUIRE(m.kind() == ResultKind::kPrepared);
    const auto& p = std::get<PreparedResult>(m.body);
    CHECK(p.id == bytes({0xca, 0xfe, 0xba, 0xbe}));
    CHECK(p.metadata.pk_indices == std::vector<uint16_t>{0});
    CHECK(p.metadata.columns ==
          std::vector<ColumnSpec>{{"ks", "t", "id", kInt}, {"ks", "t", "v", kText}});
    CHECK(p.result_metadata.flags == rows_flag::kNoMetadata);
    CHECK(encode(m, kV4) == kPreparedBodyV4);
  }
  SUBCASE("Prepared in v5 adds result_metadata_id after the id") {
    Bytes golden = kPreparedBodyV4;
    const Bytes rmid = bytes({0x00, 0x02, 0x11, 0x22});  // [short bytes] result_metadata_id
    golden.insert(golden.begin() + 10, rmid.begin(), rmid.end());
    ResultMsg m = decode<ResultMsg>(golden, kV5);
    const auto& p = std::get<PreparedResult>(m.body);
    CHECK(p.result_metadata_id == bytes({0x11, 0x22}));
    CHECK(p.metadata.pk_indices == std::vector<uint16_t>{0});
    CHECK(encode(m, kV5) == golden);
    CHECK(encode(m, kV4) == kPreparedBodyV4);
  }
  SUBCASE("Schema_change for a keyspace, a table and a function") {
    struct Case {
      SchemaChange change;
      Bytes golden;
    };
    const Case cases[] = {
        {{"CREATED", "KEYSPACE", "ks", "", {}},
         bytes({0x00, 0x07}) + text("CREATED") + bytes({0x00, 0x08}) + text("KEYSPACE") +
             bytes({0x00, 0x02}) + text("ks")},
        {{"DROPPED", "TABLE", "ks", "t", {}},
         bytes({0x00, 0x07}) + text("DROPPED") + bytes({0x00, 0x05}) + text("TABLE") +
             bytes({0x00, 0x02}) + text("ks") + bytes({0x00, 0x01}) + text("t")},
        {{"UPDATED", "FUNCTION", "ks", "f", {"int", "text"}},
         bytes({0x00, 0x07}) + text("UPDATED") + bytes({0x00, 0x08}) + text("FUNCTION") +
             bytes({0x00, 0x02}) + text("ks") + bytes({0x00, 0x01}) + text("f") +
             bytes({0x00, 0x02,  // [string list] of 2 argument types
                    0x00, 0x03}) +
             text("int") + bytes({0x00, 0x04}) + text("text")},
    };
    for (const auto& c : cases) {
      CAPTURE(c.change.target);
      Bytes golden = bytes({0x00, 0x00, 0x00, 0x05}) + c.golden;  // kind Schema_change
      ResultMsg m = decode<ResultMsg>(golden, kV4);
      const auto& sc = std::get<SchemaChange>(m.body);
      CHECK(sc.change_type == c.change.change_type);
      CHECK(sc.target == c.change.target);
      CHECK(sc.keyspace == c.change.keyspace);
      CHECK(sc.name == c.change.name);
      CHECK(sc.arg_types == c.change.arg_types);
      CHECK(encode(m, kV4) == golden);
    }
  }
  SUBCASE("an unknown kind is an error") {
    const Bytes golden = bytes({0x00, 0x00, 0x00, 0x06});
    Reader r(golden);
    CHECK_THROWS_WITH_AS(ResultMsg::decode(r, kV4), "unknown RESULT kind 6", ProtocolError);
  }
  SUBCASE("a truncated Prepared body") {
    Bytes body(kPreparedBodyV4.begin(), kPreparedBodyV4.begin() + 16);  // into columns_count
    Reader r(body);
    CHECK_THROWS_WITH_AS(ResultMsg::decode(r, kV4),
                         "truncated frame: expected 4 bytes, length is 2", ProtocolError);
  }
}

TEST_CASE("untrusted counts are checked against the body before allocating") {
  // Each body below is small; before the checks, its count went straight into reserve() (or
  // a loop pushing one element per count) and a 31-byte reply could throw std::bad_alloc. The
  // exact messages show the count check fired first.
  auto decode_result = [](const Bytes& body, uint8_t version = kV4) {
    Reader r(body);
    return ResultMsg::decode(r, version);
  };
  SUBCASE("a ROWS body claiming 2^31-1 rows in 31 bytes") {
    const Bytes body = bytes({0x00, 0x00, 0x00, 0x02,   // kind Rows
                              0x00, 0x00, 0x00, 0x04,   // flags: no metadata
                              0x00, 0x00, 0x00, 0x01,   // columns_count 1
                              0x7f, 0xff, 0xff, 0xff,   // rows_count 2147483647
                              0x00, 0x00, 0x00, 0x0b})  // row 1 col 1: [bytes] length 11
                       + text("hello world");           //   (15 bytes of rows in all)
    REQUIRE(body.size() == 31);
    CHECK_THROWS_WITH_AS(decode_result(body),
                         "truncated frame: 2147483647 rows of 1 columns need at least "
                         "8589934588 bytes, length is 15",
                         ProtocolError);
  }
  SUBCASE("a ROWS body claiming 2^31-1 columns without metadata") {
    const Bytes body = bytes({0x00, 0x00, 0x00, 0x02,    // kind Rows
                              0x00, 0x00, 0x00, 0x04,    // flags: no metadata
                              0x7f, 0xff, 0xff, 0xff,    // columns_count 2147483647
                              0x00, 0x00, 0x00, 0x01,    // rows_count 1
                              0xff, 0xff, 0xff, 0xff});  // one null cell
    CHECK_THROWS_WITH_AS(decode_result(body),
                         "truncated frame: 1 rows of 2147483647 columns need at least "
                         "8589934588 bytes, length is 4",
                         ProtocolError);
  }
  SUBCASE("a ROWS body claiming rows of no columns (nothing bounds their count)") {
    const Bytes body = bytes({0x00, 0x00, 0x00, 0x02,    // kind Rows
                              0x00, 0x00, 0x00, 0x04,    // flags: no metadata
                              0x00, 0x00, 0x00, 0x00,    // columns_count 0
                              0x7f, 0xff, 0xff, 0xff});  // rows_count 2147483647
    CHECK_THROWS_WITH_AS(decode_result(body), "RESULT Rows with 0 columns claims 2147483647 rows",
                         ProtocolError);
    const Bytes none = bytes({0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04,    // Rows, no meta
                              0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});  // 0 cols, 0 rows
    CHECK(std::get<RowsResult>(decode_result(none).body).rows.empty());
  }
  SUBCASE("Rows metadata claiming 2^31-1 column specs") {
    const Bytes body = bytes({0x00, 0x00, 0x00, 0x02,          // kind Rows
                              0x00, 0x00, 0x00, 0x01,          // flags: global table spec
                              0x7f, 0xff, 0xff, 0xff,          // columns_count 2147483647
                              0x00, 0x01, 'k',                 // keyspace "k"
                              0x00, 0x01, 't',                 // table "t"
                              0x00, 0x01, 'c',  0x00, 0x09});  // one column "c" int
    CHECK_THROWS_WITH_AS(decode_result(body),
                         "truncated frame: 2147483647 column specs need at least 8589934588 "
                         "bytes, length is 5",
                         ProtocolError);
  }
  SUBCASE("Prepared metadata claiming 2^31-1 pk indices") {
    const Bytes body = bytes({0x00, 0x00, 0x00, 0x04,  // kind Prepared
                              0x00, 0x01, 0x07,        // id
                              0x00, 0x00, 0x00, 0x00,  // flags
                              0x00, 0x00, 0x00, 0x01,  // columns_count 1
                              0x7f, 0xff, 0xff, 0xff,  // pk_count 2147483647
                              0x00, 0x00});            // pk_index_1
    CHECK_THROWS_WITH_AS(decode_result(body),
                         "truncated frame: 2147483647 pk indices need at least 4294967294 "
                         "bytes, length is 2",
                         ProtocolError);
  }
  SUBCASE("Prepared metadata claiming 2^31-1 bind markers, each with its own table spec") {
    const Bytes body = bytes({0x00, 0x00, 0x00, 0x04,    // kind Prepared
                              0x00, 0x01, 0x07,          // id
                              0x00, 0x00, 0x00, 0x00,    // flags: no global table spec
                              0x7f, 0xff, 0xff, 0xff,    // columns_count 2147483647
                              0x00, 0x00, 0x00, 0x00});  // pk_count 0
    CHECK_THROWS_WITH_AS(decode_result(body),
                         "truncated frame: 2147483647 column specs need at least 17179869176 "
                         "bytes, length is 0",
                         ProtocolError);
  }
  SUBCASE("QUERY values, BATCH statements and BATCH values") {
    const Bytes values = bytes({0x00, 0x01,                // consistency ONE
                                0x01,                      // flags: values
                                0xff, 0xff,                // 65535 values
                                0xff, 0xff, 0xff, 0xff});  // one null
    Reader r1(values);
    CHECK_THROWS_WITH_AS(QueryParameters::decode(r1, kV4),
                         "truncated frame: 65535 values need at least 262140 bytes, length is 4",
                         ProtocolError);
    const Bytes statements = bytes({0x00,        // LOGGED
                                    0xff, 0xff,  // 65535 statements
                                    0x00, 0x00, 0x00, 0x00, 0x00});
    Reader r2(statements);
    CHECK_THROWS_WITH_AS(BatchMsg::decode(r2, kV4),
                         "truncated frame: 65535 BATCH statements need at least 327675 bytes, "
                         "length is 5",
                         ProtocolError);
    const Bytes child_values = bytes({0x00,                    // LOGGED
                                      0x00, 0x01,              // 1 statement
                                      0x01, 0x00, 0x01, 0x07,  // prepared, id 07
                                      0xff, 0xff,              // 65535 values
                                      0x00, 0x01, 0x00});      // ONE, flags
    Reader r3(child_values);
    CHECK_THROWS_WITH_AS(BatchMsg::decode(r3, kV4),
                         "truncated frame: 65535 values need at least 262140 bytes, length is 3",
                         ProtocolError);
  }
}

TEST_CASE("ERROR") {
  SUBCASE("UNPREPARED carries the unknown id as [short bytes]") {
    const Bytes golden = bytes({0x00, 0x00, 0x25, 0x00,    // code 0x2500 UNPREPARED
                                0x00, 0x09}) +             // [string] message length 9
                         text("not found") +               //
                         bytes({0x00, 0x04,                // [short bytes] id length 4
                                0xca, 0xfe, 0xba, 0xbe});  // id
    ErrorMsg e = decode<ErrorMsg>(golden);
    CHECK(e.code == ErrorCode::kUnprepared);
    CHECK(e.message == "not found");
    CHECK(e.unprepared_id() == bytes({0xca, 0xfe, 0xba, 0xbe}));
    CHECK(encode(e) == golden);
    CHECK(encode(ErrorMsg::unprepared("not found", bytes({0xca, 0xfe, 0xba, 0xbe}))) == golden);
  }
  SUBCASE("ALREADY_EXISTS carries keyspace and table") {
    const Bytes golden = bytes({0x00, 0x00, 0x24, 0x00,  // code 0x2400 ALREADY_EXISTS
                                0x00, 0x06}) +
                         text("exists") + bytes({0x00, 0x02}) + text("ks") +  // keyspace
                         bytes({0x00, 0x00});  // table "" (a keyspace)
    CHECK(encode(ErrorMsg::already_exists("exists", "ks", "")) == golden);
    ErrorMsg e = decode<ErrorMsg>(golden);
    CHECK(e.code == ErrorCode::kAlreadyExists);
    CHECK(e.extra == bytes({0x00, 0x02, 'k', 's', 0x00, 0x00}));
  }
  SUBCASE("v5 READ_FAILURE carries a <reasonmap> and round-trips verbatim") {
    // native_protocol_v5.spec §8: <cl><received><blockfor><reasonmap><data_present>; the map
    // is an [int] n, then n pairs of <endpoint> ([inetaddr]: [byte] size + address, no port)
    // and <failurecode> ([short]).
    const Bytes golden = bytes({0x00, 0x00, 0x13, 0x00,  // code 0x1300 READ_FAILURE
                                0x00, 0x04}) +
                         text("fail") +                     // message
                         bytes({0x00, 0x04,                 // <cl> QUORUM
                                0x00, 0x00, 0x00, 0x01,     // <received> 1
                                0x00, 0x00, 0x00, 0x02,     // <blockfor> 2
                                0x00, 0x00, 0x00, 0x02,     // <reasonmap> 2 entries
                                0x04, 127,  0,    0,    2,  //   endpoint 127.0.0.2
                                0x00, 0x01,                 //   failure code 1
                                0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,    0,
                                0,    0,    0,    0,    0,    0, 0, 0x01,  //   endpoint 2001:db8::1
                                0x00, 0x00,                                //   failure code 0
                                0x01});                                    // <data_present> true
    ErrorMsg e = decode<ErrorMsg>(golden);
    CHECK(e.code == ErrorCode::kReadFailure);
    CHECK(e.message == "fail");
    CHECK(e.extra.size() == 2 + 4 + 4 + 4 + 5 + 2 + 17 + 2 + 1);
    CHECK(encode(e) == golden);
  }
  SUBCASE("v5 WRITE_FAILURE carries a <reasonmap> then the write type") {
    const Bytes golden = bytes({0x00, 0x00, 0x15, 0x00,     // code 0x1500 WRITE_FAILURE
                                0x00, 0x00,                 // message ""
                                0x00, 0x01,                 // <cl> ONE
                                0x00, 0x00, 0x00, 0x00,     // <received> 0
                                0x00, 0x00, 0x00, 0x01,     // <blockfor> 1
                                0x00, 0x00, 0x00, 0x01,     // <reasonmap> 1 entry
                                0x04, 10,   0,    0,    1,  //   endpoint 10.0.0.1
                                0x00, 0x03,                 //   failure code 3
                                0x00, 0x06}) +
                         text("SIMPLE");  // <writeType>
    ErrorMsg e = decode<ErrorMsg>(golden);
    CHECK(e.code == ErrorCode::kWriteFailure);
    CHECK(encode(e) == golden);
    // As a whole v5 response frame.
    Bytes frame = encode_message(kV5, true, 3, Opcode::kError, e);
    CHECK(frame == bytes({0x85, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00,
                          static_cast<unsigned>(golden.size())}) +
                       golden);
  }
  SUBCASE("unprepared_id of another code is an error") {
    ErrorMsg e{ErrorCode::kInvalid, "bad", {}};
    CHECK_THROWS_WITH_AS(e.unprepared_id(), "not an UNPREPARED error", ProtocolError);
  }
  SUBCASE("encode_error builds a whole response frame") {
    const Bytes expected = bytes({0x84,                         // version 4 | response
                                  0x00,                         // flags
                                  0x00, 0x05,                   // stream 5
                                  0x00,                         // opcode ERROR
                                  0x00, 0x00, 0x00, 0x09,       // body length 9
                                  0x00, 0x00, 0x00, 0x0a,       // code PROTOCOL_ERROR
                                  0x00, 0x03, 'b', 'a', 'd'});  // message
    CHECK(encode_error(kV4, 5, ErrorCode::kProtocolError, "bad") == expected);
  }
}

TEST_CASE("startup handshake messages") {
  SUBCASE("SUPPORTED is a string multimap") {
    const Bytes golden =
        bytes({0x00, 0x02}) +                                              // 2 keys
        bytes({0x00, 0x0b}) + text("COMPRESSION") + bytes({0x00, 0x02}) +  // 2 values
        bytes({0x00, 0x03}) + text("lz4") + bytes({0x00, 0x06}) + text("snappy") +
        bytes({0x00, 0x0b}) + text("CQL_VERSION") + bytes({0x00, 0x01}) +  // 1 value
        bytes({0x00, 0x05}) + text("3.4.5");
    SupportedMsg s = decode<SupportedMsg>(golden);
    CHECK(s.options ==
          StringMultimap{{"COMPRESSION", {"lz4", "snappy"}}, {"CQL_VERSION", {"3.4.5"}}});
    CHECK(encode(s) == golden);
  }
  SUBCASE("STARTUP is a string map") {
    const Bytes golden = bytes({0x00, 0x01}) + bytes({0x00, 0x0b}) + text("CQL_VERSION") +
                         bytes({0x00, 0x05}) + text("3.0.0");
    StartupMsg s = decode<StartupMsg>(golden);
    CHECK(s.options == StringMap{{"CQL_VERSION", "3.0.0"}});
    CHECK(encode(s) == golden);
  }
  SUBCASE("AUTHENTICATE names the authenticator") {
    const std::string cls = "org.apache.cassandra.auth.PasswordAuthenticator";
    const Bytes golden = bytes({0x00, 0x2f}) + text(cls);
    CHECK(decode<AuthenticateMsg>(golden).authenticator == cls);
    CHECK(encode(AuthenticateMsg{cls}) == golden);
  }
  SUBCASE("REGISTER lists event types") {
    const Bytes golden = bytes({0x00, 0x01, 0x00, 0x0f}) + text("TOPOLOGY_CHANGE");
    CHECK(decode<RegisterMsg>(golden).events == std::vector<std::string>{"TOPOLOGY_CHANGE"});
    CHECK(encode(RegisterMsg{{"TOPOLOGY_CHANGE"}}) == golden);
  }
  SUBCASE("READY is an empty response frame") {
    CHECK(encode_empty(kV4, true, 0, Opcode::kReady) ==
          bytes({0x84, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00}));
  }
}

TEST_CASE("EVENT") {
  SUBCASE("STATUS_CHANGE with an inet") {
    const Bytes golden = bytes({0x00, 0x0d}) + text("STATUS_CHANGE") + bytes({0x00, 0x04}) +
                         text("DOWN") +
                         bytes({0x04, 10, 0, 0, 2,         // inet 10.0.0.2
                                0x00, 0x00, 0x23, 0x52});  // port 9042
    EventMsg e = decode<EventMsg>(golden);
    CHECK(e.type == "STATUS_CHANGE");
    CHECK(e.change == "DOWN");
    CHECK(e.address == Inet{bytes({10, 0, 0, 2}), 9042});
    CHECK(encode(e) == golden);
  }
  SUBCASE("SCHEMA_CHANGE with a table") {
    const Bytes golden = bytes({0x00, 0x0d}) + text("SCHEMA_CHANGE") + bytes({0x00, 0x07}) +
                         text("CREATED") + bytes({0x00, 0x05}) + text("TABLE") +
                         bytes({0x00, 0x02}) + text("ks") + bytes({0x00, 0x01}) + text("t");
    EventMsg e = decode<EventMsg>(golden);
    CHECK(e.schema_change.name == "t");
    CHECK(encode(e) == golden);
  }
  SUBCASE("an unknown event type is an error") {
    const Bytes golden = bytes({0x00, 0x03}) + text("FOO");
    Reader r(golden);
    CHECK_THROWS_WITH_AS(EventMsg::decode(r), "unknown event type FOO", ProtocolError);
  }
}

TEST_CASE("body prefixes selected by header flags") {
  SUBCASE("a response skips tracing id, then warnings, then custom payload") {
    const Bytes body = Bytes(16, std::byte{0x11}) +             // tracing [uuid]
                       bytes({0x00, 0x01, 0x00, 0x01, 'w'}) +   // warnings [string list]
                       bytes({0x00, 0x01,                       // custom payload: 1 entry
                              0x00, 0x01, 'k',                  //   key
                              0x00, 0x00, 0x00, 0x01, 0x00}) +  //   [bytes] value
                       bytes({0x00, 0x00, 0x00, 0x01});         // RESULT Void
    Reader r(body);
    skip_response_prefix(r, flag::kTracing | flag::kWarning | flag::kCustomPayload);
    CHECK(decode<ResultMsg>(Bytes(r.rest().begin(), r.rest().end()), kV4).kind() ==
          ResultKind::kVoid);
  }
  SUBCASE("no flags skip nothing") {
    const Bytes body = bytes({0x00, 0x00, 0x00, 0x01});
    Reader r(body);
    skip_response_prefix(r, 0);
    skip_request_prefix(r, flag::kTracing);  // tracing on a request has no prefix
    CHECK(r.position() == 0);
  }
  SUBCASE("a request skips its custom payload") {
    const Bytes body = bytes({0x00, 0x01,                 // 1 entry
                              0x00, 0x01, 'k',            // key
                              0xff, 0xff, 0xff, 0xff}) +  // null value
                       kQueryBodyV4;
    Reader r(body);
    skip_request_prefix(r, flag::kCustomPayload);
    CHECK(QueryMsg::decode(r, kV4).query == "SELECT * FROM ks.t");
  }
}

TEST_CASE("consistency_offset: where a request's [consistency] sits") {
  SUBCASE("a QUERY's follows its query string") {
    const Bytes q = bytes({0, 0, 0, 1}) + text("Q") + bytes({0x00, 0x06, 0x00});
    CHECK(consistency_offset(q, 0, Opcode::kQuery, kV4) == 5);
    // After a custom payload: the offset counts from the start of the body.
    const Bytes prefixed = bytes({0xaa, 0xbb}) + q;
    CHECK(consistency_offset(prefixed, 2, Opcode::kQuery, kV4) == 7);
  }
  SUBCASE("an EXECUTE's follows its id, and in v5 its result metadata id") {
    const Bytes e4 = bytes({0, 1, 0xab, 0x00, 0x06});
    CHECK(consistency_offset(e4, 0, Opcode::kExecute, kV4) == 3);
    const Bytes e5 = bytes({0, 1, 0xab, 0, 2, 0xcd, 0xcd, 0x00, 0x06});
    CHECK(consistency_offset(e5, 0, Opcode::kExecute, kV5) == 7);
  }
  SUBCASE("a BATCH's follows its children, query strings and ids, values null and unset") {
    const Bytes children = bytes({0x00, 0, 2})                       // logged, 2 children
                           + bytes({0x00, 0, 0, 0, 1}) + text("Q")   // kind 0: a query string
                           + bytes({0, 2})                           // 2 values
                           + bytes({0, 0, 0, 2}) + text("ab")        // "ab"
                           + bytes({0xff, 0xff, 0xff, 0xff})         // null
                           + bytes({0x01, 0, 1}) + text("X")         // kind 1: a prepared id
                           + bytes({0, 1, 0xff, 0xff, 0xff, 0xfe});  // 1 value, unset
    const Bytes b = children + bytes({0x00, 0x06, 0x00});            // LOCAL_QUORUM, flags
    CHECK(consistency_offset(b, 0, Opcode::kBatch, kV4) == children.size());
    CHECK_THROWS_AS(consistency_offset(BytesView(b).first(10), 0, Opcode::kBatch, kV4),
                    ProtocolError);
  }
  SUBCASE("a body that ends before the 2 bytes of its consistency is an error") {
    const Bytes q = bytes({0, 0, 0, 1}) + text("Q") + bytes({0x00});
    CHECK_THROWS_AS(consistency_offset(q, 0, Opcode::kQuery, kV4), ProtocolError);
    CHECK_THROWS_AS(consistency_offset(bytes({0, 0, 0, 9}), 0, Opcode::kQuery, kV4), ProtocolError);
  }
  SUBCASE("other opcodes have none") {
    CHECK_FALSE(consistency_offset(Bytes{}, 0, Opcode::kOptions, kV4));
    CHECK_FALSE(consistency_offset(Bytes{}, 0, Opcode::kPrepare, kV4));
  }
}
