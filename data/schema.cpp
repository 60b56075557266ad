#include "data/schema.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace zdm::data {

namespace {

bool is_multi_cell(const std::string& type) {
  if (type.starts_with("frozen<")) return false;
  if (type.starts_with("list<") || type.starts_with("set<") || type.starts_with("map<"))
    return true;
  // A non-frozen user-defined type is multi-cell too; every built-in type name is one word.
  static const std::set<std::string> kBuiltin = {
      "ascii",  "bigint",    "blob",     "boolean", "counter", "date",     "decimal",
      "double", "duration",  "float",    "inet",    "int",     "smallint", "text",
      "time",   "timestamp", "timeuuid", "tinyint", "uuid",    "varchar",  "varint"};
  return !type.starts_with("tuple<") && !type.starts_with("vector<") && !type.starts_with("'") &&
         !kBuiltin.contains(type);
}

Kind kind_of(const std::string& k) {
  if (k == "partition_key") return Kind::kPartitionKey;
  if (k == "clustering") return Kind::kClustering;
  if (k == "static") return Kind::kStatic;
  return Kind::kRegular;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kPartitionKey:
      return "partition key";
    case Kind::kClustering:
      return "clustering";
    case Kind::kStatic:
      return "static";
    case Kind::kRegular:
      return "regular";
  }
  return "?";
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::vector<std::string> names(const std::vector<ColumnDef>& cols) {
  std::vector<std::string> out;
  for (const auto& c : cols) out.push_back(quote(c.name));
  return out;
}

std::vector<std::string> equals(const std::vector<ColumnDef>& cols) {
  std::vector<std::string> out;
  for (const auto& c : cols) out.push_back(quote(c.name) + " = ?");
  return out;
}

std::string markers(std::size_t n) {
  std::vector<std::string> m(n, "?");
  return join(m, ", ");
}

}  // namespace

std::string quote(const std::string& id) {
  bool plain = !id.empty() && (std::islower(static_cast<unsigned char>(id[0])) != 0);
  for (char c : id)
    plain = plain && (std::islower(static_cast<unsigned char>(c)) ||
                      std::isdigit(static_cast<unsigned char>(c)) || c == '_');
  if (plain) return id;
  std::string out = "\"";
  for (char c : id) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

bool TableSchema::counter_table() const {
  return std::any_of(values.begin(), values.end(), [](const ColumnDef& c) { return c.counter; });
}

std::string TableSchema::qualified() const {
  return quote(keyspace) + "." + quote(table);
}

std::optional<TableSchema> table_schema(const std::vector<ColumnRow>& rows,
                                        const std::string& keyspace, const std::string& table) {
  TableSchema t;
  t.keyspace = keyspace;
  t.table = table;
  std::vector<ColumnDef> statics, regular;
  for (const auto& r : rows) {
    if (r.keyspace != keyspace || r.table != table) continue;
    ColumnDef c{r.name,
                kind_of(r.kind),
                r.position,
                r.type,
                r.clustering_order,
                is_multi_cell(r.type),
                r.type == "counter"};
    switch (c.kind) {
      case Kind::kPartitionKey:
        t.partition_key.push_back(c);
        break;
      case Kind::kClustering:
        t.clustering.push_back(c);
        break;
      case Kind::kStatic:
        statics.push_back(c);
        break;
      case Kind::kRegular:
        regular.push_back(c);
        break;
    }
  }
  if (t.partition_key.empty()) return std::nullopt;
  auto by_position = [](const ColumnDef& a, const ColumnDef& b) { return a.position < b.position; };
  auto by_name = [](const ColumnDef& a, const ColumnDef& b) { return a.name < b.name; };
  std::sort(t.partition_key.begin(), t.partition_key.end(), by_position);
  std::sort(t.clustering.begin(), t.clustering.end(), by_position);
  std::sort(statics.begin(), statics.end(), by_name);
  std::sort(regular.begin(), regular.end(), by_name);
  t.static_count = statics.size();
  t.values = std::move(statics);
  t.values.insert(t.values.end(), regular.begin(), regular.end());
  return t;
}

std::vector<std::string> keyspace_tables(const std::vector<ColumnRow>& rows,
                                         const std::string& keyspace) {
  std::set<std::string> out;
  for (const auto& r : rows)
    if (r.keyspace == keyspace) out.insert(r.table);
  return {out.begin(), out.end()};
}

std::optional<std::string> schema_difference(const TableSchema& o, const TableSchema& t) {
  auto all = [](const TableSchema& s) {
    std::vector<ColumnDef> v = s.partition_key;
    v.insert(v.end(), s.clustering.begin(), s.clustering.end());
    v.insert(v.end(), s.values.begin(), s.values.end());
    return v;
  };
  auto oc = all(o), tc = all(t);
  for (const auto& c : oc) {
    auto it =
        std::find_if(tc.begin(), tc.end(), [&](const ColumnDef& x) { return x.name == c.name; });
    if (it == tc.end()) return "column '" + c.name + "' exists on origin only";
    if (it->type != c.type)
      return "column '" + c.name + "' is " + c.type + " on origin, " + it->type + " on target";
    if (it->kind != c.kind)
      return "column '" + c.name + "' is a " + kind_name(c.kind) + " column on origin, a " +
             kind_name(it->kind) + " column on target";
    if ((c.kind == Kind::kPartitionKey || c.kind == Kind::kClustering) &&
        it->position != c.position)
      return "key column '" + c.name + "' is at position " + std::to_string(c.position) +
             " on origin, " + std::to_string(it->position) + " on target";
    if (c.kind == Kind::kClustering && it->order != c.order)
      return "clustering column '" + c.name + "' is ordered " + c.order + " on origin, " +
             it->order + " on target";
  }
  for (const auto& c : tc)
    if (std::none_of(oc.begin(), oc.end(), [&](const ColumnDef& x) { return x.name == c.name; }))
      return "column '" + c.name + "' exists on target only";
  return std::nullopt;
}

Layout layout_of(const TableSchema& t) {
  Layout l;
  l.token = 0;
  l.partition_key = 1;
  l.clustering = l.partition_key + t.partition_key.size();
  l.values = l.clustering + t.clustering.size();
  l.times = l.values + t.values.size();
  int timed = 0;
  for (const auto& c : t.values) l.timed_slot.push_back(c.timed() ? timed++ : -1);
  l.width = l.times + 2 * static_cast<std::size_t>(timed);
  return l;
}

Statements statements_of(const TableSchema& t) {
  Statements s;
  const std::string pk = join(names(t.partition_key), ", ");
  std::vector<std::string> proj = {"token(" + pk + ")"};
  for (auto& n : names(t.partition_key)) proj.push_back(n);
  for (auto& n : names(t.clustering)) proj.push_back(n);
  for (auto& n : names(t.values)) proj.push_back(n);
  for (const auto& c : t.values) {
    if (!c.timed()) continue;
    proj.push_back("writetime(" + quote(c.name) + ")");
    proj.push_back("ttl(" + quote(c.name) + ")");
  }
  const std::string select = "SELECT " + join(proj, ", ") + " FROM " + t.qualified();
  s.scan = select + " WHERE token(" + pk + ") > ? AND token(" + pk + ") <= ?";
  std::vector<std::string> key = equals(t.partition_key);
  std::vector<std::string> row_key = key;
  for (auto& e : equals(t.clustering)) row_key.push_back(e);
  s.read_partition = select + " WHERE " + join(key, " AND ") + " LIMIT 1";
  s.read_row = select + " WHERE " + join(row_key, " AND ");

  std::vector<ColumnDef> statics(t.values.begin(),
                                 t.values.begin() + static_cast<long>(t.static_count));
  std::vector<ColumnDef> regular(t.values.begin() + static_cast<long>(t.static_count),
                                 t.values.end());
  if (!t.counter_table()) {
    std::vector<std::string> cols = names(t.partition_key);
    for (auto& n : names(t.clustering)) cols.push_back(n);
    for (auto& n : names(regular)) cols.push_back(n);
    s.insert_row = "INSERT INTO " + t.qualified() + " (" + join(cols, ", ") + ") VALUES (" +
                   markers(cols.size()) + ") USING TIMESTAMP ? AND TTL ?";
    if (!regular.empty())
      s.update_row = "UPDATE " + t.qualified() + " USING TIMESTAMP ? AND TTL ? SET " +
                     join(equals(regular), ", ") + " WHERE " + join(row_key, " AND ");
    if (!statics.empty())
      s.update_statics = "UPDATE " + t.qualified() + " USING TIMESTAMP ? AND TTL ? SET " +
                         join(equals(statics), ", ") + " WHERE " + join(key, " AND ");
  } else {
    auto adds = [](const std::vector<ColumnDef>& cols) {
      std::vector<std::string> out;
      for (const auto& c : cols) out.push_back(quote(c.name) + " = " + quote(c.name) + " + ?");
      return join(out, ", ");
    };
    if (!regular.empty())
      s.add_counters =
          "UPDATE " + t.qualified() + " SET " + adds(regular) + " WHERE " + join(row_key, " AND ");
    if (!statics.empty())
      s.add_static_counters =
          "UPDATE " + t.qualified() + " SET " + adds(statics) + " WHERE " + join(key, " AND ");
  }
  s.delete_row =
      "DELETE FROM " + t.qualified() + " USING TIMESTAMP ? WHERE " + join(row_key, " AND ");
  if (!statics.empty())
    s.delete_statics = "DELETE " + join(names(statics), ", ") + " FROM " + t.qualified() +
                       " USING TIMESTAMP ? WHERE " + join(key, " AND ");
  return s;
}

}  // namespace zdm::data
