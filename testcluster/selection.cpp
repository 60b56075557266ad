#include "testcluster/selection.h"

#include <algorithm>
#include <bit>
#include <map>
#include <set>

namespace zdm::testcluster {

// ---------------------------------------------------------------------------------------------

Bytes encode_paging(const PagingState& p) {
  Bytes out;
  cql::Writer w(out);
  w.write_int(p.returned);
  w.write_int(p.in_partition);
  w.write_long(p.partition.token);
  w.write_bytes(cql::BytesView(p.partition.key));
  w.write_byte(p.has_row ? 1 : 0);
  w.write_short(static_cast<uint16_t>(p.ck.size()));
  for (const auto& k : p.ck) w.write_bytes(cql::BytesView(k));
  return out;
}

PagingState decode_paging(const Bytes& state) {
  PagingState p;
  try {
    cql::Reader r(state);
    p.returned = r.read_int();
    p.in_partition = r.read_int();
    p.partition.token = r.read_long();
    auto key = r.read_bytes();
    p.partition.key = key ? std::move(*key) : Bytes{};
    p.has_row = r.read_byte() != 0;
    uint16_t n = r.read_short();
    for (uint16_t i = 0; i < n; ++i) {
      auto b = r.read_bytes();
      p.ck.push_back(b ? std::move(*b) : Bytes{});
    }
    if (r.remaining() != 0) throw cql::ProtocolError("trailing bytes");
  } catch (const cql::ProtocolError&) {
    throw cql::ProtocolError("Invalid value for the paging state");
  }
  return p;
}

// ---------------------------------------------------------------------------------------------

bool compare_op(int c, Relation::Op op) {
  switch (op) {
    case Relation::Op::kEq:
      return c == 0;
    case Relation::Op::kNeq:
      return c != 0;
    case Relation::Op::kLt:
      return c < 0;
    case Relation::Op::kLe:
      return c <= 0;
    case Relation::Op::kGt:
      return c > 0;
    case Relation::Op::kGe:
      return c >= 0;
    default:
      return false;
  }
}

bool matches(const Cond& c, const RowView& v) {
  const Column& col = v.t->columns[static_cast<std::size_t>(c.column)];
  Cell cell = v.value(static_cast<std::size_t>(c.column));
  if (!cell) return false;
  switch (c.op) {
    case Relation::Op::kIn:
      return std::any_of(c.values.begin(), c.values.end(),
                         [&](const Bytes& x) { return compare_values(*cell, x, col.type) == 0; });
    case Relation::Op::kContains:
    case Relation::Op::kContainsKey: {
      auto elems = collection_elements(*cell);
      bool is_map = col.type.id == TypeId::kMap;
      const DataType& et =
          is_map && c.op == Relation::Op::kContains ? col.type.params.at(1) : col.type.params.at(0);
      for (std::size_t i = 0; i < elems.size(); ++i) {
        if (is_map && (i % 2 == 0) != (c.op == Relation::Op::kContainsKey)) continue;
        if (compare_values(elems[i], c.values[0], et) == 0) return true;
      }
      return false;
    }
    default:
      return compare_op(compare_values(*cell, c.values[0], col.type), c.op);
  }
}

// ---------------------------------------------------------------------------------------------

namespace {

const std::set<std::string> kTimeFunctions = {
    "now",         "uuid",   "currenttimestamp", "currentdate", "currenttime",    "currenttimeuuid",
    "totimestamp", "todate", "tounixtimestamp",  "dateof",      "unixtimestampof"};

// ms since the epoch of a timeuuid, timestamp or date value.
int64_t time_ms(const Bytes& v, const DataType& type) {
  switch (type.id) {
    case TypeId::kTimeuuid:
      return timeuuid_ms(v);
    case TypeId::kDate:
      return (static_cast<int64_t>(static_cast<uint32_t>(read_be(v))) - (1LL << 31)) * 86'400'000;
    default:
      return read_be(v);
  }
}

// <type>asblob / blobas<type>: the CQL type named in a conversion function, or nullopt.
std::optional<DataType> conversion_type(const std::string& name) {
  try {
    return cql::parse_cql_type(name);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

Proj compile_function(const Selector& s, const Table& t);

}  // namespace

Proj compile_selector(const Selector& s, const Table& t) {
  Proj p;
  switch (s.kind) {
    case Selector::Kind::kColumn: {
      int idx = t.index(s.name);
      if (idx < 0) throw InvalidRequest("Undefined column name " + s.name);
      p.column = idx;
      p.type = t.columns[static_cast<std::size_t>(idx)].type;
      p.name = s.name;
      return p;
    }
    case Selector::Kind::kCount:
      p.kind = Proj::Kind::kCount;
      p.type = DataType::of(TypeId::kBigint);
      p.name = "count";
      if (!s.args.empty()) {
        p.column = t.index(s.args[0].name);
        if (p.column < 0) throw InvalidRequest("Undefined column name " + s.args[0].name);
        p.name = "system.count(" + s.args[0].name + ")";
      }
      return p;
    case Selector::Kind::kFunction:
      return compile_function(s, t);
    case Selector::Kind::kTerm:
      break;
  }
  throw InvalidRequest("Literal selectors are not supported by zdm-testcluster");
}

namespace {

Proj compile_function(const Selector& s, const Table& t) {
  Proj p;
  p.kind = Proj::Kind::kFunction;
  p.function = s.name;
  if (s.name == "writetime" || s.name == "ttl") {
    const char* fname = s.name == "writetime" ? "writeTime" : "ttl";
    if (s.args.size() != 1 || s.args[0].kind != Selector::Kind::kColumn)
      throw InvalidRequest(std::string("Invalid arguments for ") + fname);
    int idx = t.index(s.args[0].name);
    if (idx < 0) throw InvalidRequest("Undefined column name " + s.args[0].name);
    const Column& c = t.columns[static_cast<std::size_t>(idx)];
    if (static_cast<std::size_t>(idx) < t.key_size())
      throw InvalidRequest(std::string("Cannot use selection function ") + fname +
                           " on PRIMARY KEY part " + c.name);
    if (c.multi_cell)
      throw InvalidRequest(std::string("Cannot use selection function ") + fname +
                           " on non-frozen collection " + c.name);
    if (c.type.id == TypeId::kCounter)
      throw InvalidRequest(std::string("Cannot use selection function ") + fname +
                           " on counter column " + c.name);
    p.kind = s.name == "writetime" ? Proj::Kind::kWritetime : Proj::Kind::kTtl;
    p.column = idx;
    p.type = DataType::of(s.name == "writetime" ? TypeId::kBigint : TypeId::kInt);
    p.name = s.name + "(" + c.name + ")";
    return p;
  }
  std::string args_text;
  for (const auto& a : s.args) {
    p.args.push_back(compile_selector(a, t));
    args_text += (args_text.empty() ? "" : ", ") + p.args.back().name;
  }
  p.name = "system." + s.name + "(" + args_text + ")";
  if (s.name == "token") {
    bool ok = s.args.size() == t.pk_count;
    for (std::size_t i = 0; ok && i < s.args.size(); ++i)
      ok = p.args[i].kind == Proj::Kind::kColumn && p.args[i].column == static_cast<int>(i);
    if (!ok)
      throw InvalidRequest(
          "Invalid arguments for function system.token: it takes the partition "
          "key columns, in order");
    p.kind = Proj::Kind::kToken;
    p.type = DataType::of(TypeId::kBigint);
    return p;
  }
  auto arity = [&](std::size_t n) {
    if (p.args.size() != n)
      throw InvalidRequest("Invalid number of arguments in call to function system." + s.name +
                           ": " + std::to_string(n) + " required but " +
                           std::to_string(p.args.size()) + " provided");
  };
  if (s.name == "min" || s.name == "max" || s.name == "sum" || s.name == "avg") {
    arity(1);
    const DataType& t0 = p.args[0].type;
    bool numeric = t0.id == TypeId::kInt || t0.id == TypeId::kBigint ||
                   t0.id == TypeId::kSmallint || t0.id == TypeId::kTinyint ||
                   t0.id == TypeId::kCounter || t0.id == TypeId::kDouble || t0.id == TypeId::kFloat;
    if ((s.name == "sum" || s.name == "avg") && !numeric)
      throw InvalidRequest("Invalid call to function system." + s.name + " on " + p.args[0].name +
                           " of type " + cql::cql_type_name(t0) +
                           " (zdm-testcluster sums int, bigint, smallint, tinyint, counter, "
                           "float and double)");
    p.kind = Proj::Kind::kAggregate;
    p.type = t0;
    return p;
  }
  static const std::map<std::string, TypeId> kNullary = {
      {"now", TypeId::kTimeuuid},     {"currenttimeuuid", TypeId::kTimeuuid},
      {"uuid", TypeId::kUuid},        {"currenttimestamp", TypeId::kTimestamp},
      {"currentdate", TypeId::kDate}, {"currenttime", TypeId::kTime}};
  if (auto it = kNullary.find(s.name); it != kNullary.end()) {
    arity(0);
    p.type = DataType::of(it->second);
    return p;
  }
  static const std::map<std::string, TypeId> kUnary = {{"totimestamp", TypeId::kTimestamp},
                                                       {"dateof", TypeId::kTimestamp},
                                                       {"todate", TypeId::kDate},
                                                       {"tounixtimestamp", TypeId::kBigint},
                                                       {"unixtimestampof", TypeId::kBigint}};
  if (auto it = kUnary.find(s.name); it != kUnary.end()) {
    arity(1);
    TypeId in = p.args[0].type.id;
    if (in != TypeId::kTimeuuid && in != TypeId::kTimestamp && in != TypeId::kDate)
      throw InvalidRequest("Type error: " + p.args[0].name +
                           " cannot be passed as argument 0 of "
                           "function system." +
                           s.name + " of type timeuuid");
    p.type = DataType::of(it->second);
    return p;
  }
  if (s.name.size() > 6 && s.name.ends_with("asblob")) {
    arity(1);
    p.type = DataType::of(TypeId::kBlob);
    return p;
  }
  if (s.name.rfind("blobas", 0) == 0) {
    if (auto type = conversion_type(s.name.substr(6))) {
      arity(1);
      p.type = *type;
      return p;
    }
  }
  throw InvalidRequest("Unknown function '" + s.name + "'");
}

}  // namespace

Cell eval_proj(const Proj& p, const RowView& v) {
  switch (p.kind) {
    case Proj::Kind::kColumn:
      return v.value(static_cast<std::size_t>(p.column));
    case Proj::Kind::kWritetime: {
      const CellData* c = v.cell(static_cast<std::size_t>(p.column));
      return c ? Cell{be_int(c->ts, 8)} : std::nullopt;
    }
    case Proj::Kind::kTtl: {
      const CellData* c = v.cell(static_cast<std::size_t>(p.column));
      if (!c || c->ttl == 0) return std::nullopt;
      return be_int(std::max(0, c->expires - v.now), 4);
    }
    case Proj::Kind::kToken:
      return be_int(v.token, 8);
    case Proj::Kind::kCount:
    case Proj::Kind::kAggregate:
      return std::nullopt;  // aggregated by the caller
    case Proj::Kind::kFunction:
      break;
  }
  const std::string& f = p.function;
  if (f == "now" || f == "currenttimeuuid") return timeuuid_now();
  if (f == "uuid") return random_uuid();
  if (f == "currenttimestamp") return be_int(now_ms(), 8);
  if (f == "currentdate") return be_int(now_ms() / 86'400'000 + (1LL << 31), 4);
  if (f == "currenttime") return be_int((now_ms() % 86'400'000) * 1'000'000, 8);
  Cell arg = eval_proj(p.args.at(0), v);
  if (!arg) return std::nullopt;
  if (kTimeFunctions.contains(f)) {
    int64_t ms = time_ms(*arg, p.args[0].type);
    if (p.type.id == TypeId::kDate) {
      int64_t days = ms >= 0 ? ms / 86'400'000 : (ms - 86'399'999) / 86'400'000;
      return be_int(days + (1LL << 31), 4);
    }
    return be_int(ms, 8);
  }
  return arg;  // blob conversions keep the bytes
}

namespace {

long double number_of(const Bytes& b, const DataType& t) {
  if (t.id == TypeId::kDouble) return std::bit_cast<double>(read_be(b));
  if (t.id == TypeId::kFloat) return std::bit_cast<float>(static_cast<uint32_t>(read_be(b)));
  return static_cast<long double>(read_be(b));
}

Bytes number_bytes(long double v, const DataType& t) {
  switch (t.id) {
    case TypeId::kDouble:
      return be_int(std::bit_cast<int64_t>(static_cast<double>(v)), 8);
    case TypeId::kFloat:
      return be_int(std::bit_cast<uint32_t>(static_cast<float>(v)), 4);
    case TypeId::kInt:
      return be_int(static_cast<int64_t>(v), 4);
    case TypeId::kSmallint:
      return be_int(static_cast<int64_t>(v), 2);
    case TypeId::kTinyint:
      return be_int(static_cast<int64_t>(v), 1);
    default:
      return be_int(static_cast<int64_t>(v), 8);
  }
}

}  // namespace

void Aggregate::add(const Proj& p, const RowView& v) {
  if (p.kind != Proj::Kind::kCount && p.kind != Proj::Kind::kAggregate) return;
  if (p.kind == Proj::Kind::kCount) {
    if (p.column < 0 || v.value(static_cast<std::size_t>(p.column))) ++count;
    return;
  }
  Cell value = eval_proj(p.args.at(0), v);
  if (!value || value->empty()) return;
  ++count;
  if (p.function == "min" || p.function == "max") {
    int c = best ? compare_values(*value, *best, p.type) : 0;
    if (!best || (p.function == "min" ? c < 0 : c > 0)) best = std::move(value);
    return;
  }
  sum += number_of(*value, p.type);
}

Cell Aggregate::result(const Proj& p) const {
  if (p.kind == Proj::Kind::kCount) return be_int(count, 8);
  if (p.function == "min" || p.function == "max") return best;
  long double v = sum;
  if (p.function == "avg" && count > 0) {
    v = sum / static_cast<long double>(count);
    bool integral = p.type.id != TypeId::kDouble && p.type.id != TypeId::kFloat;
    if (integral) v = static_cast<long double>(static_cast<int64_t>(v));  // truncates, as Java
  }
  return number_bytes(v, p.type);
}

}  // namespace zdm::testcluster
