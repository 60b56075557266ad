// Data type options of result metadata (native_protocol_v4.spec §4.2.5.2) and their CQL names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/cql/notation.h"

namespace zdm::cql {

/// Type option ids, native_protocol_v4.spec §4.2.5.2.
enum class TypeId : uint16_t {
  kCustom = 0x0000,
  kAscii = 0x0001,
  kBigint = 0x0002,
  kBlob = 0x0003,
  kBoolean = 0x0004,
  kCounter = 0x0005,
  kDecimal = 0x0006,
  kDouble = 0x0007,
  kFloat = 0x0008,
  kInt = 0x0009,
  kTimestamp = 0x000B,
  kUuid = 0x000C,
  kVarchar = 0x000D,
  kVarint = 0x000E,
  kTimeuuid = 0x000F,
  kInet = 0x0010,
  kDate = 0x0011,
  kTime = 0x0012,
  kSmallint = 0x0013,
  kTinyint = 0x0014,
  kDuration = 0x0015,
  kList = 0x0020,
  kMap = 0x0021,
  kSet = 0x0022,
  kUdt = 0x0030,
  kTuple = 0x0031,
};

/// A column type: the option id plus its parameters (element types, UDT fields, custom class).
struct DataType {
  TypeId id = TypeId::kBlob;
  std::string custom_class;              // kCustom
  std::vector<DataType> params;          // list/set: 1, map: 2, tuple: n, udt: field types
  std::string udt_keyspace, udt_name;    // kUdt
  std::vector<std::string> field_names;  // kUdt

  static DataType of(TypeId id) { return DataType{id, {}, {}, {}, {}, {}}; }
  bool operator==(const DataType&) const = default;
};

/// Deepest nesting read_type accepts (list<list<...>> is 2 levels): the recursion must not be
/// steered by the wire into exhausting the stack. Real schemas nest a few levels.
inline constexpr int kMaxTypeDepth = 64;

/// Reads an [option] describing a type (§4.2.5.2). Throws ProtocolError on an unknown id, on
/// nesting deeper than kMaxTypeDepth, and on a UDT/tuple count the body cannot hold.
DataType read_type(Reader& r);
void write_type(Writer& w, const DataType& t);

/// The CQL name of a type as Cassandra's schema tables print it: "int", "text", "list<int>",
/// "map<text, bigint>", "frozen<tuple<int, text>>" is not produced (no frozen tracking).
std::string cql_type_name(const DataType& t);

/// Parses a CQL type name ("int", "varchar", "map<text,int>", "frozen<list<uuid>>").
/// Throws std::invalid_argument naming the type on an unknown name.
DataType parse_cql_type(std::string_view name);

/// Java class name of a type, as Cassandra 3.x stores in legacy metadata
/// ("org.apache.cassandra.db.marshal.Int32Type").
std::string marshal_class_name(const DataType& t);

}  // namespace zdm::cql
