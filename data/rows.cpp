#include "data/rows.h"

#include <algorithm>
#include <bit>
#include <cstdio>

namespace zdm::data {

namespace {

std::pair<std::size_t, std::size_t> scope(const TableSchema& t, bool statics) {
  return statics ? std::pair<std::size_t, std::size_t>{0, t.static_count}
                 : std::pair<std::size_t, std::size_t>{t.static_count, t.values.size()};
}

cql::Value value_of(const Cell& c) {
  if (!c) return cql::Value::null();
  return cql::Value::of(Bytes(c->begin(), c->end()));
}

bool same(const Cell& a, const Cell& b) {
  if (!a || !b) return !a && !b;
  return std::equal(a->begin(), a->end(), b->begin(), b->end());
}

void append_key(Bytes& out, const Cell& c) {
  const int32_t n = c ? static_cast<int32_t>(c->size()) : -1;
  for (int s = 24; s >= 0; s -= 8) out.push_back(std::byte((static_cast<uint32_t>(n) >> s) & 0xff));
  if (c) out.insert(out.end(), c->begin(), c->end());
}

std::string hex(BytesView v) {
  static const char* d = "0123456789abcdef";
  std::string out = "0x";
  for (auto b : v) {
    auto x = std::to_integer<unsigned>(b);
    out += d[x >> 4];
    out += d[x & 15];
  }
  return out;
}

int64_t signed_be(BytesView v) {
  uint64_t x = (!v.empty() && (std::to_integer<unsigned>(v[0]) & 0x80)) ? ~uint64_t{0} : 0;
  for (auto b : v) x = (x << 8) | std::to_integer<uint64_t>(b);
  return static_cast<int64_t>(x);
}

}  // namespace

OwnedRow own(RowView row) {
  OwnedRow out;
  out.reserve(row.size());
  for (const auto& c : row)
    out.push_back(c ? std::optional<Bytes>(Bytes(c->begin(), c->end())) : std::nullopt);
  return out;
}

std::vector<Cell> view(const OwnedRow& row) {
  std::vector<Cell> out;
  out.reserve(row.size());
  for (const auto& c : row) out.push_back(c ? Cell(BytesView(*c)) : std::nullopt);
  return out;
}

bool statics_only(const TableSchema& t, const Layout& l, RowView row) {
  return !t.clustering.empty() && !row[l.clustering];
}

std::vector<WriteGroup> plan_writes(const TableSchema& t, const Layout& l, RowView row,
                                    bool statics, int64_t fallback_timestamp) {
  auto [from, to] = scope(t, statics);
  std::vector<WriteGroup> groups;
  std::vector<std::size_t> untimed;
  for (std::size_t v = from; v < to; ++v) {
    const ColumnDef& c = t.values[v];
    if (c.counter || !row[l.values + v]) continue;
    const Cell& wt = c.timed() ? row[l.writetime(v)] : Cell{};
    if (!wt) {
      untimed.push_back(v);
      continue;
    }
    const int64_t ts = read_bigint(*wt);
    const Cell& ttl_cell = row[l.ttl(v)];
    const int32_t ttl = ttl_cell ? read_int(*ttl_cell) : 0;
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const WriteGroup& x) { return x.timestamp == ts && x.ttl == ttl; });
    if (g == groups.end()) {
      groups.push_back(WriteGroup{WriteGroup::Kind::kUpdateRow, ts, ttl, {}});
      g = groups.end() - 1;
    }
    g->columns.push_back(v);
  }
  if (!untimed.empty()) {
    // Collections: the newest writetime of the row (or the fallback), never a TTL: a TTL that
    // was not theirs would delete data on target, a missing one only keeps it longer.
    int64_t ts = fallback_timestamp;
    if (!groups.empty())
      ts = std::max_element(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
             return a.timestamp < b.timestamp;
           })->timestamp;
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const WriteGroup& x) { return x.timestamp == ts && x.ttl == 0; });
    if (g == groups.end()) {
      groups.push_back(WriteGroup{WriteGroup::Kind::kUpdateRow, ts, 0, {}});
      g = groups.end() - 1;
    }
    g->columns.insert(g->columns.end(), untimed.begin(), untimed.end());
    std::sort(g->columns.begin(), g->columns.end());
  }
  if (groups.empty() && !statics)  // only its primary key: the row marker alone
    groups.push_back(WriteGroup{WriteGroup::Kind::kInsertRow, fallback_timestamp, 0, {}});
  std::stable_sort(groups.begin(), groups.end(), [](const WriteGroup& a, const WriteGroup& b) {
    return a.timestamp < b.timestamp;
  });
  for (std::size_t i = 0; i < groups.size(); ++i)
    groups[i].kind = statics  ? WriteGroup::Kind::kUpdateStatics
                     : i == 0 ? WriteGroup::Kind::kInsertRow
                              : WriteGroup::Kind::kUpdateRow;
  return groups;
}

std::vector<cql::Value> key_values(const TableSchema& t, const Layout& l, RowView row,
                                   bool with_clustering) {
  std::vector<cql::Value> out;
  for (std::size_t i = 0; i < t.partition_key.size(); ++i)
    out.push_back(value_of(row[l.partition_key + i]));
  if (with_clustering)
    for (std::size_t i = 0; i < t.clustering.size(); ++i)
      out.push_back(value_of(row[l.clustering + i]));
  return out;
}

std::vector<cql::Value> bind_group(const TableSchema& t, const Layout& l, RowView row,
                                   const WriteGroup& g, std::size_t& ttl_slot) {
  const bool statics = g.kind == WriteGroup::Kind::kUpdateStatics;
  auto [from, to] = scope(t, statics);
  std::vector<cql::Value> cols;
  for (std::size_t v = from; v < to; ++v) {
    bool in = std::find(g.columns.begin(), g.columns.end(), v) != g.columns.end();
    cols.push_back(in ? value_of(row[l.values + v]) : cql::Value::unset());
  }
  std::vector<cql::Value> out;
  auto append = [&out](std::vector<cql::Value> v) {
    for (auto& x : v) out.push_back(std::move(x));
  };
  if (g.kind == WriteGroup::Kind::kInsertRow) {
    append(key_values(t, l, row, true));
    append(std::move(cols));
    out.push_back(cql::Value::of(bigint_bytes(g.timestamp)));
    ttl_slot = out.size();
    out.push_back(cql::Value::of(int_bytes(g.ttl)));
  } else {
    out.push_back(cql::Value::of(bigint_bytes(g.timestamp)));
    ttl_slot = out.size();
    out.push_back(cql::Value::of(int_bytes(g.ttl)));
    append(std::move(cols));
    append(key_values(t, l, row, !statics));
  }
  return out;
}

RowKey row_key(const TableSchema& t, const Layout& l, RowView row, bool statics) {
  RowKey k;
  k.token = read_bigint(*row[l.token]);
  for (std::size_t i = 0; i < t.partition_key.size(); ++i)
    append_key(k.partition, row[l.partition_key + i]);
  k.statics = statics;
  if (!statics)
    for (std::size_t i = 0; i < t.clustering.size(); ++i)
      append_key(k.clustering, row[l.clustering + i]);
  return k;
}

std::vector<ColumnDiff> compare_rows(const TableSchema& t, const Layout& l, RowView origin,
                                     RowView target, bool statics, bool writetimes) {
  auto [from, to] = scope(t, statics);
  std::vector<ColumnDiff> out;
  for (std::size_t v = from; v < to; ++v) {
    const ColumnDef& c = t.values[v];
    const Cell& o = origin[l.values + v];
    const Cell& g = target[l.values + v];
    if (!same(o, g)) {
      ColumnDiff d{c.name, false, std::nullopt, std::nullopt};
      if (c.timed()) {
        if (auto w = origin[l.writetime(v)]) d.origin_writetime = read_bigint(*w);
        if (auto w = target[l.writetime(v)]) d.target_writetime = read_bigint(*w);
      }
      out.push_back(d);
      continue;
    }
    if (writetimes && c.timed() && o && !same(origin[l.writetime(v)], target[l.writetime(v)])) {
      ColumnDiff d{c.name, true, std::nullopt, std::nullopt};
      if (auto w = origin[l.writetime(v)]) d.origin_writetime = read_bigint(*w);
      if (auto w = target[l.writetime(v)]) d.target_writetime = read_bigint(*w);
      out.push_back(d);
    }
  }
  return out;
}

bool has_values(const TableSchema& t, const Layout& l, RowView row, bool statics) {
  auto [from, to] = scope(t, statics);
  for (std::size_t v = from; v < to; ++v)
    if (row[l.values + v]) return true;
  return false;
}

std::optional<int64_t> newest_writetime(const TableSchema& t, const Layout& l, RowView row,
                                        bool statics) {
  auto [from, to] = scope(t, statics);
  std::optional<int64_t> out;
  for (std::size_t v = from; v < to; ++v) {
    if (!t.values[v].timed() || !row[l.writetime(v)]) continue;
    int64_t w = read_bigint(*row[l.writetime(v)]);
    if (!out || w > *out) out = w;
  }
  return out;
}

std::string literal(const std::string& type, BytesView v) {
  if (type == "int" || type == "bigint" || type == "smallint" || type == "tinyint" ||
      type == "counter" || type == "timestamp")
    if (v.size() <= 8 && !v.empty()) return std::to_string(signed_be(v));
  if (type == "text" || type == "varchar" || type == "ascii") {
    std::string out = "'";
    for (auto b : v) {
      char c = static_cast<char>(b);
      out += c == '\'' ? std::string("''") : std::string(1, c);
    }
    return out + "'";
  }
  if ((type == "uuid" || type == "timeuuid") && v.size() == 16) {
    std::string h = hex(v).substr(2);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
           "-" + h.substr(20);
  }
  if (type == "boolean" && v.size() == 1) return std::to_integer<int>(v[0]) ? "true" : "false";
  if (type == "double" && v.size() == 8) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g",
                  std::bit_cast<double>(static_cast<uint64_t>(signed_be(v))));
    return buf;
  }
  if (type == "inet") {
    std::string s = inet_text(v);
    if (!s.empty()) return "'" + s + "'";
  }
  return hex(v);
}

std::string key_text(const TableSchema& t, const Layout& l, RowView row, bool statics) {
  std::string out;
  auto add = [&](const ColumnDef& c, const Cell& v) {
    out += (out.empty() ? "" : ", ") + c.name + "=" + (v ? literal(c.type, *v) : "null");
  };
  for (std::size_t i = 0; i < t.partition_key.size(); ++i)
    add(t.partition_key[i], row[l.partition_key + i]);
  if (statics) return out + " (static columns)";
  for (std::size_t i = 0; i < t.clustering.size(); ++i) add(t.clustering[i], row[l.clustering + i]);
  return out;
}

}  // namespace zdm::data
