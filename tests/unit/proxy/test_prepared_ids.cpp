#include <doctest/doctest.h>

#include <initializer_list>
#include <map>

#include "common/cql/compression.h"
#include "common/cql/messages.h"
#include "proxy/prepared_ids.h"
#include "proxy/wire.h"

using namespace zdm;
using namespace zdm::proxy;
using cql::Bytes;
using cql::BytesView;

namespace {

Bytes bytes(std::initializer_list<int> v) {
  Bytes out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
// A response frame: header (spec §2) then `body`.
Bytes response(uint8_t version, uint8_t flags, int16_t stream, cql::Opcode op, const Bytes& body) {
  return cql::encode_frame(cql::Header{version, true, flags, stream, op, 0}, body);
}

// The cache as the session sees it: origin id -> target id.
struct Ids {
  std::map<Bytes, Bytes> target_of;
  std::optional<Bytes> target(BytesView origin) const {
    auto it = target_of.find(Bytes(origin.begin(), origin.end()));
    if (it == target_of.end()) return std::nullopt;
    return it->second;
  }
  std::optional<Bytes> origin(BytesView target) const {
    for (const auto& [o, t] : target_of)
      if (BytesView(t).size() == target.size() && std::equal(t.begin(), t.end(), target.begin()))
        return o;
    return std::nullopt;
  }
};

}  // namespace

TEST_CASE("EXECUTE: target's copy carries target's prepared id") {
  SUBCASE("v4: <id> replaced, query parameters kept byte for byte") {
    const Bytes client = bytes({
        0x00, 0x02, 0xA1, 0xA2,  // <id> [short bytes]: origin's, 2 bytes
        0x00, 0x0A,              // <consistency> LOCAL_ONE
        0x01,                    // <flags> [byte]: 0x01 values
        0x00, 0x01,              // value count 1
        0x00, 0x00, 0x00, 0x01,  // [value] length 1
        0x2A,                    // its byte
    });
    const Bytes expected = bytes({
        0x00, 0x03, 0xB1, 0xB2, 0xB3,  // <id>: target's, 3 bytes
        0x00, 0x0A,                    // <consistency> LOCAL_ONE
        0x01,                          // <flags>
        0x00, 0x01,                    // value count
        0x00, 0x00, 0x00, 0x01,        // [value] length
        0x2A,                          // its byte
    });
    const Bytes out = execute_for_target(client, 0, 4, bytes({0xB1, 0xB2, 0xB3}), {});
    CHECK(out == expected);
    // Round trip: the decoded message is the client's but for the id.
    cql::Reader rc(client), rt(out);
    auto c = cql::ExecuteMsg::decode(rc, 4);
    auto t = cql::ExecuteMsg::decode(rt, 4);
    CHECK(t.id == bytes({0xB1, 0xB2, 0xB3}));
    CHECK(t.params.consistency == c.params.consistency);
    CHECK(t.params.values.size() == 1);
    CHECK(t.params.values[0].bytes == c.params.values[0].bytes);
  }
  SUBCASE("v5: <result_metadata_id> replaced too") {
    const Bytes client = bytes({
        0x00, 0x01, 0xA1,        // <id>: origin's
        0x00, 0x02, 0xC1, 0xC2,  // <result_metadata_id>: origin's
        0x00, 0x01,              // <consistency> ONE
        0x00, 0x00, 0x00, 0x00,  // <flags> [int] (v5)
    });
    const Bytes expected = bytes({
        0x00, 0x01, 0xB1,        // <id>: target's
        0x00, 0x01, 0xD1,        // <result_metadata_id>: target's
        0x00, 0x01,              // <consistency> ONE
        0x00, 0x00, 0x00, 0x00,  // <flags>
    });
    CHECK(execute_for_target(client, 0, 5, bytes({0xB1}), bytes({0xD1})) == expected);
  }
  SUBCASE("a custom payload before the message is kept verbatim") {
    const Bytes prefix = bytes({
        0x00, 0x01,              // custom payload [bytes map]: 1 entry
        0x00, 0x01, 'k',         // key [string]
        0x00, 0x00, 0x00, 0x01,  // value [bytes] length 1
        0x07,                    // its byte
    });
    const Bytes rest = bytes({0x00, 0x01, 0x00});  // <consistency> ONE, <flags> 0
    const Bytes client = cat({prefix, bytes({0x00, 0x01, 0xA1}), rest});
    const Bytes out = execute_for_target(client, prefix.size(), 4, bytes({0xB1, 0xB2}), {});
    CHECK(out == cat({prefix, bytes({0x00, 0x02, 0xB1, 0xB2}), rest}));
  }
  SUBCASE("the whole frame: header kept, compression flag cleared, length set") {
    const Bytes body = bytes({0x00, 0x01, 0xA1, 0x00, 0x01, 0x00});
    const Bytes client = cql::encode_frame(
        cql::Header{4, false, cql::flag::kTracing, 7, cql::Opcode::kExecute, 0}, body);
    const Bytes frame = with_body(client, execute_for_target(body, 0, 4, bytes({0xB1, 0xB2}), {}));
    CHECK(frame == bytes({
                       0x04,                    // version 4, request
                       0x02,                    // flags: tracing
                       0x00, 0x07,              // stream id 7
                       0x0A,                    // opcode EXECUTE
                       0x00, 0x00, 0x00, 0x07,  // body length 7
                       0x00, 0x02, 0xB1, 0xB2,  // <id>: target's
                       0x00, 0x01, 0x00,        // <consistency>, <flags>
                   }));
  }
  SUBCASE("a body that ends within its id") {
    CHECK_THROWS_WITH_AS(execute_for_target(bytes({0x00, 0x04, 0xA1}), 0, 4, bytes({0xB1}), {}),
                         "truncated frame: expected 4 bytes, length is 1", cql::ProtocolError);
  }
}

TEST_CASE("BATCH: target's copy carries target's ids of its prepared children") {
  Ids ids;
  ids.target_of[bytes({0xA1})] = bytes({0xB1, 0xB2});
  ids.target_of[bytes({0xA2})] = bytes({0xB3});
  auto target_id_of = [&](BytesView id) { return ids.target(id); };
  const Bytes client = bytes({
      0x00,                    // <type> LOGGED
      0x00, 0x03,              // <n> 3 children
      0x01,                    // <kind> prepared
      0x00, 0x01, 0xA1,        //   <id> [short bytes]: origin's
      0x00, 0x00,              //   no values
      0x00,                    // <kind> simple
      0x00, 0x00, 0x00, 0x01,  //   <query> [long string] length 1
      'q',                     //   its text
      0x00, 0x00,              //   no values
      0x01,                    // <kind> prepared
      0x00, 0x01, 0xA2,        //   <id>: origin's
      0x00, 0x01,              //   1 value
      0x00, 0x00, 0x00, 0x01,  //   [value] length 1
      0x2A,                    //   its byte
      0x00, 0x04,              // <consistency> QUORUM
      0x00,                    // <flags> [byte] (v4)
  });
  SUBCASE("each prepared child's id becomes target's") {
    BatchForTarget b = batch_for_target(client, 0, 4, target_id_of);
    REQUIRE(b.body);
    CHECK(!b.unknown_id);
    CHECK(b.first_origin_id == bytes({0xA1}));
    CHECK(*b.body == bytes({
                         0x00,                    // <type> LOGGED
                         0x00, 0x03,              // <n>
                         0x01,                    // prepared
                         0x00, 0x02, 0xB1, 0xB2,  //   <id>: target's
                         0x00, 0x00,              //   no values
                         0x00,                    // simple
                         0x00, 0x00, 0x00, 0x01,  //   <query>
                         'q',                     //
                         0x00, 0x00,              //   no values
                         0x01,                    // prepared
                         0x00, 0x01, 0xB3,        //   <id>: target's
                         0x00, 0x01,              //   1 value
                         0x00, 0x00, 0x00, 0x01,  //
                         0x2A,                    //
                         0x00, 0x04,              // <consistency> QUORUM
                         0x00,                    // <flags>
                     }));
    // Round trip: mapping target's ids back gives the client's body.
    Ids back;
    back.target_of[bytes({0xB1, 0xB2})] = bytes({0xA1});
    back.target_of[bytes({0xB3})] = bytes({0xA2});
    auto again = batch_for_target(*b.body, 0, 4, [&](BytesView id) { return back.target(id); });
    REQUIRE(again.body);
    CHECK(*again.body == client);
  }
  SUBCASE("the client's prefix (custom payload) is kept") {
    const Bytes prefix = bytes({0x00, 0x00});  // custom payload: empty [bytes map]
    BatchForTarget b = batch_for_target(cat({prefix, client}), prefix.size(), 4, target_id_of);
    REQUIRE(b.body);
    CHECK(Bytes(b.body->begin(), b.body->begin() + 2) == prefix);
    CHECK(Bytes(b.body->begin() + 2, b.body->end()) ==
          *batch_for_target(client, 0, 4, target_id_of).body);
  }
  SUBCASE("a batch of simple statements only: target gets the client's frame") {
    const Bytes simple = bytes({
        0x01,                         // <type> UNLOGGED
        0x00, 0x01,                   // <n> 1
        0x00,                         // <kind> simple
        0x00, 0x00, 0x00, 0x01, 'q',  //   <query>
        0x00, 0x00,                   //   no values
        0x00, 0x01,                   // <consistency> ONE
        0x00,                         // <flags>
    });
    BatchForTarget b = batch_for_target(simple, 0, 4, target_id_of);
    CHECK(!b.body);
    CHECK(!b.unknown_id);
    CHECK(b.first_origin_id.empty());
  }
  SUBCASE("a child's id the cache does not know: nothing for target, the id to report") {
    ids.target_of.erase(bytes({0xA2}));
    BatchForTarget b = batch_for_target(client, 0, 4, target_id_of);
    CHECK(!b.body);
    REQUIRE(b.unknown_id);
    CHECK(*b.unknown_id == bytes({0xA2}));
  }
  SUBCASE("a malformed batch") {
    CHECK_THROWS_WITH_AS(batch_for_target(bytes({0x03, 0x00, 0x00}), 0, 4, target_id_of),
                         "invalid BATCH type 3", cql::ProtocolError);
  }
}

TEST_CASE("UNPREPARED errors the client gets") {
  SUBCASE("an EXECUTE of an unknown id") {
    cql::ErrorMsg e = unknown_execute_id(bytes({0xA1, 0xA2}));
    CHECK(e.code == cql::ErrorCode::kUnprepared);
    CHECK(e.message == "Prepared query with ID 2-byte id not found in ZDM proxy cache");
    CHECK(e.unprepared_id() == bytes({0xA1, 0xA2}));
    CHECK(cql::encode_message(4, true, 3, cql::Opcode::kError, e) ==
          cat({bytes({
                   0x84,                    // version 4, response
                   0x00,                    // flags
                   0x00, 0x03,              // stream id 3
                   0x00,                    // opcode ERROR
                   0x00, 0x00, 0x00, 0x47,  // body length 71
                   0x00, 0x00, 0x25, 0x00,  // code 0x2500 UNPREPARED
                   0x00, 0x3D,              // message [string] length 61
               }),
               cql::to_bytes("Prepared query with ID 2-byte id not found in ZDM proxy cache"),
               bytes({0x00, 0x02, 0xA1, 0xA2})}));  // <id> [short bytes]
  }
  SUBCASE("a BATCH child of an unknown id") {
    cql::ErrorMsg e = unknown_batch_child(bytes({0xA2}));
    CHECK(e.code == cql::ErrorCode::kUnprepared);
    CHECK(e.message == "Prepared query in BATCH not found in ZDM proxy cache");
    CHECK(e.unprepared_id() == bytes({0xA2}));
  }
}

TEST_CASE("target's UNPREPARED goes back with origin's id") {
  Ids ids;
  ids.target_of[bytes({0xA1})] = bytes({0xB1, 0xB2});
  auto origin_id_of = [&](BytesView id) { return ids.origin(id); };
  const Bytes target_error = bytes({
      0x00, 0x00, 0x25, 0x00,  // code 0x2500 UNPREPARED
      0x00, 0x01, 'x',         // message [string]
      0x00, 0x02, 0xB1, 0xB2,  // <id> [short bytes]: target's
  });
  const Bytes for_client = cat({
      bytes({
          0x84,                    // version 4, response
          0x00,                    // flags
          0x00, 0x00,              // stream id 0 (the session sets the client's)
          0x00,                    // opcode ERROR
          0x00, 0x00, 0x00, 0x2D,  // body length 45
          0x00, 0x00, 0x25, 0x00,  // code UNPREPARED
          0x00, 0x24,              // message length 36
      }),
      cql::to_bytes("Prepared statement unknown on TARGET"),
      bytes({0x00, 0x01, 0xA1}),  // <id>: origin's
  });
  Bytes scratch;
  SUBCASE("a target id the cache maps") {
    auto out =
        unprepared_for_client(response(4, 0, 9, cql::Opcode::kError, target_error),
                              cql::Compression::kNone, 4, bytes({0xEE}), origin_id_of, scratch);
    REQUIRE(out);
    CHECK(*out == for_client);
  }
  SUBCASE("a target id the cache does not map: the request's origin id") {
    ids.target_of.clear();
    auto out =
        unprepared_for_client(response(4, 0, 9, cql::Opcode::kError, target_error),
                              cql::Compression::kNone, 4, bytes({0xA1}), origin_id_of, scratch);
    REQUIRE(out);
    CHECK(*out == for_client);
  }
  SUBCASE("a compressed, traced error") {
    const Bytes traced = cat({Bytes(16, std::byte{0x55}), target_error});  // tracing id first
    const Bytes frame =
        response(4, cql::flag::kCompression | cql::flag::kTracing, 9, cql::Opcode::kError,
                 cql::compress_body(cql::Compression::kLz4, traced));
    auto out = unprepared_for_client(frame, cql::Compression::kLz4, 4, {}, origin_id_of, scratch);
    REQUIRE(out);
    CHECK(*out == for_client);
  }
  SUBCASE("other errors and results pass as they are") {
    const Bytes overloaded = bytes({0x00, 0x00, 0x10, 0x01, 0x00, 0x01, 'x'});
    CHECK(!unprepared_for_client(response(4, 0, 9, cql::Opcode::kError, overloaded),
                                 cql::Compression::kNone, 4, {}, origin_id_of, scratch));
    CHECK(!unprepared_for_client(response(4, 0, 9, cql::Opcode::kResult, target_error),
                                 cql::Compression::kNone, 4, {}, origin_id_of, scratch));
    // Too short to hold an error code: not known to be UNPREPARED.
    CHECK(!unprepared_for_client(response(4, 0, 9, cql::Opcode::kError, bytes({0x00})),
                                 cql::Compression::kNone, 4, {}, origin_id_of, scratch));
  }
  SUBCASE("an UNPREPARED without its id") {
    CHECK_THROWS_WITH_AS(
        unprepared_for_client(
            response(4, 0, 9, cql::Opcode::kError, bytes({0x00, 0x00, 0x25, 0x00, 0x00, 0x00})),
            cql::Compression::kNone, 4, {}, origin_id_of, scratch),
        "truncated frame: expected 2 bytes, length is 0", cql::ProtocolError);
  }
  SUBCASE("unprepared_id reads the id an UNPREPARED names") {
    auto id = unprepared_id(response(4, 0, 9, cql::Opcode::kError, target_error),
                            cql::Compression::kNone, scratch);
    REQUIRE(id);
    CHECK(*id == bytes({0xB1, 0xB2}));
  }
}

TEST_CASE("re-preparing a statement on a connection that lost it") {
  SUBCASE("v4: the query only") {
    CHECK(reprepare_frame(4, 12, "SELECT 1", "ks") ==
          cat({bytes({
                   0x04,                    // version 4, request
                   0x00,                    // flags
                   0x00, 0x0C,              // stream id 12
                   0x09,                    // opcode PREPARE
                   0x00, 0x00, 0x00, 0x0C,  // body length 12
                   0x00, 0x00, 0x00, 0x08,  // <query> [long string] length 8
               }),
               cql::to_bytes("SELECT 1")}));
  }
  SUBCASE("v5: the keyspace with its flag") {
    const Bytes f = reprepare_frame(5, 12, "SELECT 1", "ks");
    cql::Reader r(BytesView(f).subspan(cql::kHeaderSize));
    auto p = cql::PrepareMsg::decode(r, 5);
    CHECK(p.query == "SELECT 1");
    CHECK(p.keyspace == "ks");
  }
}
