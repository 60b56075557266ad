#include "common/cql/types.h"

#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace zdm::cql {

namespace {

DataType read_type_at(Reader& r, int depth) {
  if (depth > kMaxTypeDepth) {
    throw ProtocolError("type option nested deeper than " + std::to_string(kMaxTypeDepth) +
                        " levels");
  }
  uint16_t raw = r.read_short();
  DataType t;
  t.id = static_cast<TypeId>(raw);
  switch (t.id) {
    case TypeId::kCustom:
      t.custom_class = r.read_string();
      break;
    case TypeId::kAscii:
    case TypeId::kBigint:
    case TypeId::kBlob:
    case TypeId::kBoolean:
    case TypeId::kCounter:
    case TypeId::kDecimal:
    case TypeId::kDouble:
    case TypeId::kFloat:
    case TypeId::kInt:
    case TypeId::kTimestamp:
    case TypeId::kUuid:
    case TypeId::kVarchar:
    case TypeId::kVarint:
    case TypeId::kTimeuuid:
    case TypeId::kInet:
    case TypeId::kDate:
    case TypeId::kTime:
    case TypeId::kSmallint:
    case TypeId::kTinyint:
    case TypeId::kDuration:
      break;
    case TypeId::kList:
    case TypeId::kSet:
      t.params.push_back(read_type_at(r, depth + 1));
      break;
    case TypeId::kMap:
      t.params.push_back(read_type_at(r, depth + 1));
      t.params.push_back(read_type_at(r, depth + 1));
      break;
    case TypeId::kUdt: {
      t.udt_keyspace = r.read_string();
      t.udt_name = r.read_string();
      uint16_t n = r.read_short();
      r.check_count(n, 2 + 2, "UDT fields");  // each: [string] name + [option] type
      t.field_names.reserve(n);
      t.params.reserve(n);
      for (uint16_t i = 0; i < n; ++i) {
        t.field_names.push_back(r.read_string());
        t.params.push_back(read_type_at(r, depth + 1));
      }
      break;
    }
    case TypeId::kTuple: {
      uint16_t n = r.read_short();
      r.check_count(n, 2, "tuple components");
      t.params.reserve(n);
      for (uint16_t i = 0; i < n; ++i) t.params.push_back(read_type_at(r, depth + 1));
      break;
    }
    default: {
      char hex[8];
      std::snprintf(hex, sizeof hex, "%04x", static_cast<unsigned>(raw));
      throw ProtocolError(std::string("unknown type option id 0x") + hex);
    }
  }
  return t;
}

}  // namespace

DataType read_type(Reader& r) {
  return read_type_at(r, 0);
}

void write_type(Writer& w, const DataType& t) {
  w.write_short(static_cast<uint16_t>(t.id));
  switch (t.id) {
    case TypeId::kCustom:
      w.write_string(t.custom_class);
      break;
    case TypeId::kList:
    case TypeId::kSet:
    case TypeId::kMap:
      for (const auto& p : t.params) write_type(w, p);
      break;
    case TypeId::kUdt:
      w.write_string(t.udt_keyspace);
      w.write_string(t.udt_name);
      w.write_short(static_cast<uint16_t>(t.params.size()));
      for (std::size_t i = 0; i < t.params.size(); ++i) {
        w.write_string(t.field_names.at(i));
        write_type(w, t.params[i]);
      }
      break;
    case TypeId::kTuple:
      w.write_short(static_cast<uint16_t>(t.params.size()));
      for (const auto& p : t.params) write_type(w, p);
      break;
    default:
      break;
  }
}

namespace {
struct Simple {
  const char* name;
  TypeId id;
  const char* marshal;
};
constexpr Simple kSimple[] = {
    {"ascii", TypeId::kAscii, "AsciiType"},
    {"bigint", TypeId::kBigint, "LongType"},
    {"blob", TypeId::kBlob, "BytesType"},
    {"boolean", TypeId::kBoolean, "BooleanType"},
    {"counter", TypeId::kCounter, "CounterColumnType"},
    {"decimal", TypeId::kDecimal, "DecimalType"},
    {"double", TypeId::kDouble, "DoubleType"},
    {"float", TypeId::kFloat, "FloatType"},
    {"int", TypeId::kInt, "Int32Type"},
    {"timestamp", TypeId::kTimestamp, "TimestampType"},
    {"uuid", TypeId::kUuid, "UUIDType"},
    {"text", TypeId::kVarchar, "UTF8Type"},
    {"varint", TypeId::kVarint, "IntegerType"},
    {"timeuuid", TypeId::kTimeuuid, "TimeUUIDType"},
    {"inet", TypeId::kInet, "InetAddressType"},
    {"date", TypeId::kDate, "SimpleDateType"},
    {"time", TypeId::kTime, "TimeType"},
    {"smallint", TypeId::kSmallint, "ShortType"},
    {"tinyint", TypeId::kTinyint, "ByteType"},
    {"duration", TypeId::kDuration, "DurationType"},
};
}  // namespace

std::string cql_type_name(const DataType& t) {
  for (const auto& s : kSimple)
    if (s.id == t.id) return s.name;
  auto join = [&](const char* sep) {
    std::string out;
    for (std::size_t i = 0; i < t.params.size(); ++i) {
      if (i) out += sep;
      out += cql_type_name(t.params[i]);
    }
    return out;
  };
  switch (t.id) {
    case TypeId::kList:
      return "list<" + join(", ") + ">";
    case TypeId::kSet:
      return "set<" + join(", ") + ">";
    case TypeId::kMap:
      return "map<" + join(", ") + ">";
    case TypeId::kTuple:
      return "tuple<" + join(", ") + ">";
    case TypeId::kUdt:
      return t.udt_name;
    case TypeId::kCustom:
      return "'" + t.custom_class + "'";
    default:
      return "unknown";
  }
}

std::string marshal_class_name(const DataType& t) {
  const std::string pkg = "org.apache.cassandra.db.marshal.";
  for (const auto& s : kSimple)
    if (s.id == t.id) return pkg + s.marshal;
  std::string inner;
  for (std::size_t i = 0; i < t.params.size(); ++i) {
    if (i) inner += ",";
    inner += marshal_class_name(t.params[i]);
  }
  switch (t.id) {
    case TypeId::kList:
      return pkg + "ListType(" + inner + ")";
    case TypeId::kSet:
      return pkg + "SetType(" + inner + ")";
    case TypeId::kMap:
      return pkg + "MapType(" + inner + ")";
    case TypeId::kTuple:
      return pkg + "TupleType(" + inner + ")";
    case TypeId::kCustom:
      return t.custom_class;
    default:
      return pkg + "BytesType";
  }
}

namespace {
class TypeParser {
 public:
  explicit TypeParser(std::string_view s) : s_(s) {}
  DataType parse() {
    DataType t = type();
    skip_ws();
    if (pos_ != s_.size()) fail();
    return t;
  }

 private:
  [[noreturn]] void fail() {
    throw std::invalid_argument("unknown type '" + std::string(s_) + "'");
  }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  std::string word() {
    skip_ws();
    std::size_t b = pos_;
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_'))
      ++pos_;
    std::string w(s_.substr(b, pos_ - b));
    for (auto& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return w;
  }
  void expect(char c) {
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != c) fail();
    ++pos_;
  }
  bool peek(char c) {
    skip_ws();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  DataType type() {
    std::string w = word();
    if (w.empty()) fail();
    if (w == "varchar") return DataType::of(TypeId::kVarchar);
    for (const auto& s : kSimple)
      if (w == s.name) return DataType::of(s.id);
    DataType t;
    if (w == "frozen") {
      expect('<');
      t = type();
      expect('>');
      return t;
    }
    if (w == "list" || w == "set") {
      t.id = w == "list" ? TypeId::kList : TypeId::kSet;
      expect('<');
      t.params.push_back(type());
      expect('>');
      return t;
    }
    if (w == "map") {
      t.id = TypeId::kMap;
      expect('<');
      t.params.push_back(type());
      expect(',');
      t.params.push_back(type());
      expect('>');
      return t;
    }
    if (w == "tuple") {
      t.id = TypeId::kTuple;
      expect('<');
      t.params.push_back(type());
      while (peek(',')) {
        expect(',');
        t.params.push_back(type());
      }
      expect('>');
      return t;
    }
    fail();
  }
  std::string_view s_;
  std::size_t pos_ = 0;
};
}  // namespace

DataType parse_cql_type(std::string_view name) {
  return TypeParser(name).parse();
}

}  // namespace zdm::cql
