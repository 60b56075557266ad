#include <doctest/doctest.h>

#include <functional>

#include "common/cql/notation.h"
#include "tests/unit/cql/cql_test_util.h"

using namespace zdm::cql;
using zdm::cql::test::bytes;
using zdm::cql::test::text;
using zdm::cql::test::operator+;

namespace {

// Encodes with `write`, then checks the golden bytes and that `read` consumes exactly them.
struct NotationCase {
  const char* name;
  std::function<void(Writer&)> write;
  Bytes golden;
  std::function<void(Reader&)> read_and_check;
};

}  // namespace

TEST_CASE("notations of §3") {
  const NotationCase cases[] = {
      {"[byte]", [](Writer& w) { w.write_byte(0xab); }, bytes({0xab}),
       [](Reader& r) { CHECK(r.read_byte() == 0xab); }},
      {"[short] is big endian and unsigned", [](Writer& w) { w.write_short(0xfffe); },
       bytes({0xff, 0xfe}), [](Reader& r) { CHECK(r.read_short() == 0xfffe); }},
      {"[int] is big endian and signed", [](Writer& w) { w.write_int(-2); },
       bytes({0xff, 0xff, 0xff, 0xfe}), [](Reader& r) { CHECK(r.read_int() == -2); }},
      {"[int] positive", [](Writer& w) { w.write_int(0x01020304); },
       bytes({0x01, 0x02, 0x03, 0x04}), [](Reader& r) { CHECK(r.read_int() == 0x01020304); }},
      {"[long]", [](Writer& w) { w.write_long(0x0102030405060708); },
       bytes({0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}),
       [](Reader& r) { CHECK(r.read_long() == 0x0102030405060708); }},
      {"[long] negative", [](Writer& w) { w.write_long(-1); },
       bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
       [](Reader& r) { CHECK(r.read_long() == -1); }},
      {"[string]", [](Writer& w) { w.write_string("ks"); },
       bytes({0x00, 0x02}) /* [short] length 2 */ + text("ks"),
       [](Reader& r) { CHECK(r.read_string() == "ks"); }},
      {"empty [string]", [](Writer& w) { w.write_string(""); }, bytes({0x00, 0x00}),
       [](Reader& r) { CHECK(r.read_string().empty()); }},
      {"[long string]", [](Writer& w) { w.write_long_string("USE ks"); },
       bytes({0x00, 0x00, 0x00, 0x06}) /* [int] length 6 */ + text("USE ks"),
       [](Reader& r) { CHECK(r.read_long_string() == "USE ks"); }},
      {"[bytes]",
       [](Writer& w) {
         w.write_bytes(BytesView(bytes({0xca, 0xfe})));
       },
       bytes({0x00, 0x00, 0x00, 0x02,  // [int] length 2
              0xca, 0xfe}),
       [](Reader& r) {
         CHECK(r.read_bytes() == bytes({0xca, 0xfe}));
       }},
      {"null [bytes] is length -1", [](Writer& w) { w.write_bytes(std::optional<Bytes>{}); },
       bytes({0xff, 0xff, 0xff, 0xff}), [](Reader& r) { CHECK_FALSE(r.read_bytes()); }},
      {"empty [bytes] is not null", [](Writer& w) { w.write_bytes(std::optional<Bytes>{Bytes{}}); },
       bytes({0x00, 0x00, 0x00, 0x00}),
       [](Reader& r) {
         auto b = r.read_bytes();
         REQUIRE(b);
         CHECK(b->empty());
       }},
      {"[bytes] as a view", [](Writer& w) { w.write_bytes(BytesView(bytes({0x01}))); },
       bytes({0x00, 0x00, 0x00, 0x01, 0x01}),
       [](Reader& r) {
         auto v = r.read_bytes_view();
         REQUIRE(v);
         CHECK(Bytes(v->begin(), v->end()) == bytes({0x01}));
       }},
      {"[short bytes]",
       [](Writer& w) {
         w.write_short_bytes(bytes({0xde, 0xad, 0xbe}));
       },
       bytes({0x00, 0x03,  // [short] length 3
              0xde, 0xad, 0xbe}),
       [](Reader& r) {
         CHECK(r.read_short_bytes() == bytes({0xde, 0xad, 0xbe}));
       }},
      {"[value] with bytes", [](Writer& w) { w.write_value(Value::of(bytes({0x2a}))); },
       bytes({0x00, 0x00, 0x00, 0x01, 0x2a}),
       [](Reader& r) { CHECK(r.read_value() == Value::of(bytes({0x2a}))); }},
      {"[value] null is -1", [](Writer& w) { w.write_value(Value::null()); },
       bytes({0xff, 0xff, 0xff, 0xff}),
       [](Reader& r) {
         Value v = r.read_value();
         CHECK(v.is_null());
         CHECK(v == Value::null());
       }},
      {"[value] unset is -2", [](Writer& w) { w.write_value(Value::unset()); },
       bytes({0xff, 0xff, 0xff, 0xfe}),
       [](Reader& r) {
         Value v = r.read_value();
         CHECK(v.kind == Value::Kind::kUnset);
         CHECK_FALSE(v.is_null());
       }},
      {"[string list]",
       [](Writer& w) {
         w.write_string_list({"a", "bc"});
       },
       bytes({0x00, 0x02,              // [short] 2 strings
              0x00, 0x01, 'a',         // "a"
              0x00, 0x02, 'b', 'c'}),  // "bc"
       [](Reader& r) {
         CHECK(r.read_string_list() == std::vector<std::string>{"a", "bc"});
       }},
      {"[string map]",
       [](Writer& w) {
         w.write_string_map({{"CQL_VERSION", "3.0.0"}});
       },
       bytes({0x00, 0x01}) +                            // [short] 1 entry
           bytes({0x00, 0x0b}) + text("CQL_VERSION") +  // key
           bytes({0x00, 0x05}) + text("3.0.0"),         // value
       [](Reader& r) {
         CHECK(r.read_string_map() == StringMap{{"CQL_VERSION", "3.0.0"}});
       }},
      {"[string multimap]",
       [](Writer& w) {
         w.write_string_multimap({{"COMPRESSION", {"lz4", "snappy"}}});
       },
       bytes({0x00, 0x01}) +                            // [short] 1 key
           bytes({0x00, 0x0b}) + text("COMPRESSION") +  // key
           bytes({0x00, 0x02}) +                        // [string list] of 2
           bytes({0x00, 0x03}) + text("lz4") +          //
           bytes({0x00, 0x06}) + text("snappy"),
       [](Reader& r) {
         CHECK(r.read_string_multimap() == StringMultimap{{"COMPRESSION", {"lz4", "snappy"}}});
       }},
      {"[consistency]", [](Writer& w) { w.write_consistency(Consistency::kLocalQuorum); },
       bytes({0x00, 0x06}),
       [](Reader& r) { CHECK(r.read_consistency() == Consistency::kLocalQuorum); }},
      {"[inet] v4",
       [](Writer& w) {
         w.write_inet(Inet{bytes({127, 0, 0, 1}), 9042});
       },
       bytes({0x04,                      // address size
              127, 0, 0, 1,              // address
              0x00, 0x00, 0x23, 0x52}),  // [int] port 9042
       [](Reader& r) {
         CHECK(r.read_inet() == Inet{bytes({127, 0, 0, 1}), 9042});
       }},
      {"[inet] v6",
       [](Writer& w) {
         w.write_inet(Inet{bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), 7000});
       },
       bytes({0x10,                                                       // address size 16
              0,    0,    0,    0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,  // ::1
              0x00, 0x00, 0x1b, 0x58}),                                   // port 7000
       [](Reader& r) {
         CHECK(r.read_inet() ==
               Inet{bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), 7000});
       }},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      Bytes out;
      Writer w(out);
      c.write(w);
      CHECK(out == c.golden);
      Reader r(c.golden);
      c.read_and_check(r);
      CHECK(r.remaining() == 0);
      CHECK(r.position() == c.golden.size());
    }
  }
}

TEST_CASE("Writer appends to what the buffer already holds") {
  Bytes out = bytes({0x99});
  Writer w(out);
  w.write_short(1);
  CHECK(out == bytes({0x99, 0x00, 0x01}));
  CHECK(&w.buffer() == &out);
}

TEST_CASE("Reader reads in sequence and exposes the rest") {
  Bytes body = bytes({0x00, 0x02, 'k', 's', 0x07, 0x08, 0x09});
  Reader r(body);
  CHECK(r.read_string() == "ks");
  CHECK(r.position() == 4);
  CHECK(r.remaining() == 3);
  CHECK(Bytes(r.rest().begin(), r.rest().end()) == bytes({0x07, 0x08, 0x09}));
  auto raw = r.read_raw(2);
  CHECK(Bytes(raw.begin(), raw.end()) == bytes({0x07, 0x08}));
  CHECK(r.read_byte() == 0x09);
}

TEST_CASE("[uuid] is 16 raw bytes") {
  Bytes id = bytes({0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55,
                    0x44, 0x00, 0x00});
  Reader r(id);
  CHECK(r.read_uuid() == id);
  CHECK(r.remaining() == 0);
}

TEST_CASE("short bodies are errors naming the missing length") {
  struct Case {
    const char* name;
    Bytes body;
    std::function<void(Reader&)> read;
    const char* message;
  };
  const Case cases[] = {
      {"[byte] of nothing",
       {},
       [](Reader& r) { r.read_byte(); },
       "truncated frame: expected 1 bytes, length is 0"},
      {"[short] of 1 byte", bytes({0x00}), [](Reader& r) { r.read_short(); },
       "truncated frame: expected 2 bytes, length is 1"},
      {"[int] of 2 bytes", bytes({0x00, 0x00}), [](Reader& r) { r.read_int(); },
       "truncated frame: expected 4 bytes, length is 2"},
      {"[long] of 7 bytes", bytes({0, 0, 0, 0, 0, 0, 0}), [](Reader& r) { r.read_long(); },
       "truncated frame: expected 8 bytes, length is 7"},
      {"[string] shorter than its length", bytes({0x00, 0x05, 'a', 'b'}),
       [](Reader& r) { r.read_string(); }, "truncated frame: expected 5 bytes, length is 2"},
      {"[long string] shorter than its length", bytes({0x00, 0x00, 0x00, 0x03, 'a'}),
       [](Reader& r) { r.read_long_string(); }, "truncated frame: expected 3 bytes, length is 1"},
      {"[bytes] shorter than its length", bytes({0x00, 0x00, 0x01, 0x00, 0x01}),
       [](Reader& r) { r.read_bytes(); }, "truncated frame: expected 256 bytes, length is 1"},
      {"[value] shorter than its length", bytes({0x00, 0x00, 0x00, 0x02, 0x01}),
       [](Reader& r) { r.read_value(); }, "truncated frame: expected 2 bytes, length is 1"},
      {"[short bytes] shorter than its length", bytes({0x00, 0x02}),
       [](Reader& r) { r.read_short_bytes(); }, "truncated frame: expected 2 bytes, length is 0"},
      {"[uuid] of 15 bytes", Bytes(15), [](Reader& r) { r.read_uuid(); },
       "truncated frame: expected 16 bytes, length is 15"},
      {"[inet] without its port", bytes({0x04, 10, 0, 0, 1, 0x00}),
       [](Reader& r) { r.read_inet(); }, "truncated frame: expected 4 bytes, length is 1"},
      {"[string list] missing its second string", bytes({0x00, 0x02, 0x00, 0x02, 'a', 'b'}),
       [](Reader& r) { r.read_string_list(); }, "truncated frame: expected 2 bytes, length is 0"},
      {"[string list] counting more strings than its bytes can hold (checked before reserving)",
       bytes({0xff, 0xff, 0x00, 0x01, 'a'}), [](Reader& r) { r.read_string_list(); },
       "truncated frame: 65535 [string list] entries need at least 131070 bytes, length is 3"},
      {"[string map] missing a value", bytes({0x00, 0x01, 0x00, 0x01, 'k'}),
       [](Reader& r) { r.read_string_map(); }, "truncated frame: expected 2 bytes, length is 0"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      Reader r(c.body);
      CHECK_THROWS_WITH_AS(c.read(r), c.message, ProtocolError);
    }
  }
}

TEST_CASE("malformed notations are errors") {
  SUBCASE("[value] lengths below -2 are invalid") {
    for (int32_t n : {-3, -100, INT32_MIN}) {
      CAPTURE(n);
      Bytes body;
      Writer(body).write_int(n);
      Reader r(body);
      CHECK_THROWS_WITH_AS(r.read_value(), ("invalid [value] length " + std::to_string(n)).c_str(),
                           ProtocolError);
    }
  }
  SUBCASE("a negative [bytes] length of any value is null") {
    Bytes body = bytes({0xff, 0xff, 0xff, 0xfd});  // -3
    Reader r(body);
    CHECK_FALSE(r.read_bytes());
    CHECK(r.remaining() == 0);
  }
  SUBCASE("a negative [long string] length") {
    Bytes body = bytes({0xff, 0xff, 0xff, 0xff});
    Reader r(body);
    CHECK_THROWS_WITH_AS(r.read_long_string(), "negative [long string] length -1", ProtocolError);
  }
  SUBCASE("unknown consistency codes") {
    for (uint16_t code : {0x000B, 0x00ff, 0xffff}) {
      CAPTURE(code);
      Bytes body;
      Writer(body).write_short(code);
      Reader r(body);
      CHECK_THROWS_WITH_AS(
          r.read_consistency(),
          ("Unknown code " + std::to_string(code) + " for a consistency level").c_str(),
          ProtocolError);
    }
  }
  SUBCASE("an [inet] address is 4 or 16 bytes") {
    Bytes body = bytes({0x05, 1, 2, 3, 4, 5, 0, 0, 0, 0});
    Reader r(body);
    CHECK_THROWS_WITH_AS(r.read_inet(), "invalid [inet] address length 5", ProtocolError);
  }
  SUBCASE("[string] and [short bytes] longer than a [short] cannot be written") {
    Bytes out;
    Writer w(out);
    CHECK_THROWS_WITH_AS(w.write_string(std::string(0x10000, 'x')),
                         "[string] longer than 65535 bytes", ProtocolError);
    CHECK_THROWS_WITH_AS(w.write_short_bytes(Bytes(0x10000)),
                         "[short bytes] longer than 65535 bytes", ProtocolError);
    w.write_string(std::string(0xffff, 'x'));  // the largest that fits
    CHECK(out.size() == 2 + 0xffff);
  }
}

TEST_CASE("consistency names") {
  struct Case {
    Consistency c;
    uint16_t code;
    const char* name;
  };
  const Case cases[] = {
      {Consistency::kAny, 0x0000, "ANY"},
      {Consistency::kOne, 0x0001, "ONE"},
      {Consistency::kTwo, 0x0002, "TWO"},
      {Consistency::kThree, 0x0003, "THREE"},
      {Consistency::kQuorum, 0x0004, "QUORUM"},
      {Consistency::kAll, 0x0005, "ALL"},
      {Consistency::kLocalQuorum, 0x0006, "LOCAL_QUORUM"},
      {Consistency::kEachQuorum, 0x0007, "EACH_QUORUM"},
      {Consistency::kSerial, 0x0008, "SERIAL"},
      {Consistency::kLocalSerial, 0x0009, "LOCAL_SERIAL"},
      {Consistency::kLocalOne, 0x000A, "LOCAL_ONE"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CHECK(consistency_name(c.c) == c.name);
    Bytes body;
    Writer(body).write_short(c.code);
    Reader r(body);
    CHECK(r.read_consistency() == c.c);
  }
  CHECK(consistency_name(static_cast<Consistency>(0x0042)) == "UNKNOWN");
}

TEST_CASE("int placeholders are back-patched") {
  Bytes out;
  Writer w(out);
  std::size_t at = w.write_int_placeholder();
  w.write_string("abc");
  w.patch_int(at, static_cast<int32_t>(out.size() - at - 4));
  CHECK(out == bytes({0x00, 0x00, 0x00, 0x05,  // patched length 5
                      0x00, 0x03, 'a', 'b', 'c'}));
  w.patch_int(at, -2);
  CHECK(Bytes(out.begin(), out.begin() + 4) == bytes({0xff, 0xff, 0xff, 0xfe}));
}

TEST_CASE("byte helpers") {
  CHECK(to_bytes("ab") == bytes({'a', 'b'}));
  CHECK(to_string(bytes({'a', 0x00, 'b'})) == std::string("a\0b", 3));
  CHECK(to_string(to_bytes("")).empty());
}
