#include <doctest/doctest.h>

#include <stdexcept>

#include "common/cql/types.h"
#include "tests/unit/cql/cql_test_util.h"

using namespace zdm::cql;
using zdm::cql::test::bytes;
using zdm::cql::test::text;
using zdm::cql::test::operator+;

namespace {

DataType list_of(DataType e) {
  DataType t = DataType::of(TypeId::kList);
  t.params = {std::move(e)};
  return t;
}
DataType set_of(DataType e) {
  DataType t = DataType::of(TypeId::kSet);
  t.params = {std::move(e)};
  return t;
}
DataType map_of(DataType k, DataType v) {
  DataType t = DataType::of(TypeId::kMap);
  t.params = {std::move(k), std::move(v)};
  return t;
}
DataType tuple_of(std::vector<DataType> elems) {
  DataType t = DataType::of(TypeId::kTuple);
  t.params = std::move(elems);
  return t;
}

const DataType kInt = DataType::of(TypeId::kInt);
const DataType kText = DataType::of(TypeId::kVarchar);

DataType address_udt() {
  DataType t = DataType::of(TypeId::kUdt);
  t.udt_keyspace = "ks";
  t.udt_name = "address";
  t.field_names = {"street", "zip"};
  t.params = {kText, kInt};
  return t;
}

Bytes encode_type(const DataType& t) {
  Bytes out;
  Writer w(out);
  write_type(w, t);
  return out;
}

DataType decode_type(const Bytes& in) {
  Reader r(in);
  DataType t = read_type(r);
  CHECK(r.remaining() == 0);
  return t;
}

}  // namespace

TEST_CASE("type options of §4.2.5.2") {
  struct Case {
    const char* name;
    DataType type;
    Bytes golden;
  };
  DataType custom = DataType::of(TypeId::kCustom);
  custom.custom_class = "org.apache.cassandra.db.marshal.DynamicCompositeType";
  const Case cases[] = {
      {"native int", kInt, bytes({0x00, 0x09})},
      {"native varchar (text)", kText, bytes({0x00, 0x0d})},
      {"native duration", DataType::of(TypeId::kDuration), bytes({0x00, 0x15})},
      {"custom carries its class as a [string]", custom,
       bytes({0x00, 0x00,     // id Custom
              0x00, 0x34}) +  // [string] length 52
           text("org.apache.cassandra.db.marshal.DynamicCompositeType")},
      {"list<int>", list_of(kInt),
       bytes({0x00, 0x20,     // id List
              0x00, 0x09})},  // element int
      {"set<uuid>", set_of(DataType::of(TypeId::kUuid)),
       bytes({0x00, 0x22,     // id Set
              0x00, 0x0c})},  // element uuid
      {"nested map<text, list<int>>", map_of(kText, list_of(kInt)),
       bytes({0x00, 0x21,     // id Map
              0x00, 0x0d,     // key: varchar
              0x00, 0x20,     // value: List
              0x00, 0x09})},  //   of int
      {"UDT with keyspace, name and named fields", address_udt(),
       bytes({0x00, 0x30}) +                        // id UDT
           bytes({0x00, 0x02}) + text("ks") +       // keyspace
           bytes({0x00, 0x07}) + text("address") +  // type name
           bytes({0x00, 0x02}) +                    // [short] 2 fields
           bytes({0x00, 0x06}) + text("street") +   // field 1 name
           bytes({0x00, 0x0d}) +                    // field 1 type varchar
           bytes({0x00, 0x03}) + text("zip") +      // field 2 name
           bytes({0x00, 0x09})},                    // field 2 type int
      {"tuple<int, text, list<int>>", tuple_of({kInt, kText, list_of(kInt)}),
       bytes({0x00, 0x31,     // id Tuple
              0x00, 0x03,     // [short] 3 elements
              0x00, 0x09,     // int
              0x00, 0x0d,     // varchar
              0x00, 0x20,     // List
              0x00, 0x09})},  //   of int
      {"list of UDT", list_of(address_udt()), bytes({0x00, 0x20}) + encode_type(address_udt())},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      CHECK(encode_type(c.type) == c.golden);
      CHECK(decode_type(c.golden) == c.type);
      CHECK(encode_type(decode_type(c.golden)) == c.golden);
    }
  }
}

TEST_CASE("every native type id round trips") {
  for (uint16_t id : {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0b,
                      0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15}) {
    CAPTURE(id);
    Bytes golden;
    Writer(golden).write_short(id);
    DataType t = decode_type(golden);
    CHECK(static_cast<uint16_t>(t.id) == id);
    CHECK(t.params.empty());
    CHECK(encode_type(t) == golden);
  }
}

TEST_CASE("malformed type options") {
  SUBCASE("an unknown id names it in hex") {
    // 0x000A was 'text' before v3 and is gone from the spec; 0x0016 and 0x0040 never existed.
    struct Case {
      uint16_t id;
      const char* message;
    };
    const Case cases[] = {{0x000a, "unknown type option id 0x000a"},
                          {0x0016, "unknown type option id 0x0016"},
                          {0x0040, "unknown type option id 0x0040"}};
    for (const auto& c : cases) {
      CAPTURE(c.id);
      Bytes in;
      Writer(in).write_short(c.id);
      Reader r(in);
      CHECK_THROWS_WITH_AS(read_type(r), c.message, ProtocolError);
    }
  }
  SUBCASE("an unknown id nested in a collection") {
    Bytes in = bytes({0x00, 0x20, 0x00, 0x99});
    Reader r(in);
    CHECK_THROWS_WITH_AS(read_type(r), "unknown type option id 0x0099", ProtocolError);
  }
  SUBCASE("a map missing its value type is truncated") {
    Bytes in = bytes({0x00, 0x21, 0x00, 0x0d});
    Reader r(in);
    CHECK_THROWS_WITH_AS(read_type(r), "truncated frame: expected 2 bytes, length is 0",
                         ProtocolError);
  }
}

TEST_CASE("untrusted counts and depth in type options") {
  SUBCASE("a UDT counting more fields than the body holds, checked before reserving") {
    Bytes in = bytes({0x00, 0x30,                     // UDT
                      0x00, 0x02, 'k', 's',           // keyspace "ks"
                      0x00, 0x01, 'u',                // name "u"
                      0xff, 0xff,                     // 65535 fields
                      0x00, 0x01, 'a', 0x00, 0x09});  // one field "a" int
    Reader r(in);
    CHECK_THROWS_WITH_AS(
        read_type(r), "truncated frame: 65535 UDT fields need at least 262140 bytes, length is 5",
        ProtocolError);
  }
  SUBCASE("a tuple counting more components than the body holds") {
    Bytes in = bytes({0x00, 0x31, 0xff, 0xff, 0x00, 0x09});
    Reader r(in);
    CHECK_THROWS_WITH_AS(
        read_type(r),
        "truncated frame: 65535 tuple components need at least 131070 bytes, length is 2",
        ProtocolError);
  }
  // list<list<...<int>>>: each level is a 2-byte id, so a body can nest millions deep and the
  // recursion must stop before the stack does.
  auto nested = [](int lists) {
    Bytes in;
    Writer w(in);
    for (int i = 0; i < lists; ++i) w.write_short(0x0020);  // list
    w.write_short(0x0009);                                  // int
    return in;
  };
  SUBCASE("64 nested lists are read") {
    Bytes in = nested(kMaxTypeDepth);
    Reader r(in);
    DataType t = read_type(r);
    int depth = 0;
    for (const DataType* p = &t; p->id == TypeId::kList; p = &p->params[0]) ++depth;
    CHECK(depth == kMaxTypeDepth);
  }
  SUBCASE("65 nested lists, or a million, are an error") {
    for (int lists : {kMaxTypeDepth + 1, 1000000}) {
      CAPTURE(lists);
      Bytes in = nested(lists);
      Reader r(in);
      CHECK_THROWS_WITH_AS(read_type(r), "type option nested deeper than 64 levels", ProtocolError);
    }
  }
}

TEST_CASE("CQL type names") {
  DataType custom = DataType::of(TypeId::kCustom);
  custom.custom_class = "org.example.MyType";
  struct Case {
    DataType type;
    const char* name;
  };
  const Case cases[] = {
      {DataType::of(TypeId::kAscii), "ascii"},
      {DataType::of(TypeId::kBigint), "bigint"},
      {DataType::of(TypeId::kBlob), "blob"},
      {DataType::of(TypeId::kBoolean), "boolean"},
      {DataType::of(TypeId::kCounter), "counter"},
      {DataType::of(TypeId::kDecimal), "decimal"},
      {DataType::of(TypeId::kDouble), "double"},
      {DataType::of(TypeId::kFloat), "float"},
      {kInt, "int"},
      {DataType::of(TypeId::kTimestamp), "timestamp"},
      {DataType::of(TypeId::kUuid), "uuid"},
      {kText, "text"},
      {DataType::of(TypeId::kVarint), "varint"},
      {DataType::of(TypeId::kTimeuuid), "timeuuid"},
      {DataType::of(TypeId::kInet), "inet"},
      {DataType::of(TypeId::kDate), "date"},
      {DataType::of(TypeId::kTime), "time"},
      {DataType::of(TypeId::kSmallint), "smallint"},
      {DataType::of(TypeId::kTinyint), "tinyint"},
      {DataType::of(TypeId::kDuration), "duration"},
      {list_of(kInt), "list<int>"},
      {set_of(kText), "set<text>"},
      {map_of(kText, DataType::of(TypeId::kBigint)), "map<text, bigint>"},
      {map_of(kText, list_of(kInt)), "map<text, list<int>>"},
      {tuple_of({kInt, kText}), "tuple<int, text>"},
      {address_udt(), "address"},
      {custom, "'org.example.MyType'"},
  };
  SUBCASE("cql_type_name prints schema-table names") {
    for (const auto& c : cases) {
      CAPTURE(c.name);
      CHECK(cql_type_name(c.type) == c.name);
    }
  }
  SUBCASE("parse_cql_type reads back every non-UDT, non-custom name") {
    for (const auto& c : cases) {
      if (c.type.id == TypeId::kUdt || c.type.id == TypeId::kCustom) continue;
      CAPTURE(c.name);
      CHECK(parse_cql_type(c.name) == c.type);
    }
  }
}

TEST_CASE("parse_cql_type") {
  SUBCASE("aliases, case, spacing and frozen<>") {
    struct Case {
      const char* name;
      DataType type;
    };
    const Case cases[] = {
        {"varchar", kText},
        {"TEXT", kText},
        {"  int  ", kInt},
        {"map<text,int>", map_of(kText, kInt)},
        {"map < text , list < int > >", map_of(kText, list_of(kInt))},
        {"frozen<list<uuid>>", list_of(DataType::of(TypeId::kUuid))},
        {"Frozen<Tuple<int,text>>", tuple_of({kInt, kText})},
        {"set<frozen<map<int, text>>>", set_of(map_of(kInt, kText))},
        {"list<frozen<tuple<int, frozen<list<text>>>>>", list_of(tuple_of({kInt, list_of(kText)}))},
        {"tuple<int>", tuple_of({kInt})},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      CHECK(parse_cql_type(c.name) == c.type);
    }
  }
  SUBCASE("unknown or malformed names throw std::invalid_argument naming the whole type") {
    for (const char* name :
         {"", "integer", "address", "frozen<address>", "list<int", "list<int>>", "map<text>",
          "list<>", "int int", "tuple<int,>", "'org.example.MyType'"}) {
      CAPTURE(name);
      CHECK_THROWS_WITH_AS(parse_cql_type(name),
                           ("unknown type '" + std::string(name) + "'").c_str(),
                           std::invalid_argument);
    }
  }
}

TEST_CASE("marshal class names") {
  struct Case {
    DataType type;
    const char* name;
  };
  DataType custom = DataType::of(TypeId::kCustom);
  custom.custom_class = "org.example.MyType";
  const Case cases[] = {
      {kInt, "org.apache.cassandra.db.marshal.Int32Type"},
      {kText, "org.apache.cassandra.db.marshal.UTF8Type"},
      {DataType::of(TypeId::kBigint), "org.apache.cassandra.db.marshal.LongType"},
      {DataType::of(TypeId::kUuid), "org.apache.cassandra.db.marshal.UUIDType"},
      {DataType::of(TypeId::kInet), "org.apache.cassandra.db.marshal.InetAddressType"},
      {list_of(kInt),
       "org.apache.cassandra.db.marshal.ListType(org.apache.cassandra.db.marshal.Int32Type)"},
      {map_of(kText, kInt),
       "org.apache.cassandra.db.marshal.MapType(org.apache.cassandra.db.marshal.UTF8Type,"
       "org.apache.cassandra.db.marshal.Int32Type)"},
      {tuple_of({kInt, kText}),
       "org.apache.cassandra.db.marshal.TupleType(org.apache.cassandra.db.marshal.Int32Type,"
       "org.apache.cassandra.db.marshal.UTF8Type)"},
      {custom, "org.example.MyType"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    CHECK(marshal_class_name(c.type) == c.name);
  }
}
