#include "tests/cluster/store.h"

#include <arpa/inet.h>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "tests/cluster/parser.h"
#include "tests/cluster/values.h"

namespace zdm::testcluster {

using cql::ColumnSpec;
using cql::ErrorCode;
using cql::ErrorMsg;
using cql::ResultMsg;
using cql::Value;

namespace {

// ---------------------------------------------------------------------------------------------
// Errors the executor raises; converted to ERROR bodies at the edge of each entry point.

struct AlreadyExists {
  std::string message, keyspace, table;
};
struct Unprepared {
  Bytes id;
};

// ---------------------------------------------------------------------------------------------
// Catalog and rows.

enum class Kind : uint8_t { kPartitionKey, kClustering, kRegular, kStatic };

const char* kind_text(Kind k) {
  switch (k) {
    case Kind::kPartitionKey:
      return "partition_key";
    case Kind::kClustering:
      return "clustering";
    case Kind::kStatic:
      return "static";
    default:
      return "regular";
  }
}

struct Column {
  std::string name;
  DataType type;
  Kind kind = Kind::kRegular;
  int position = -1;
  std::string order = "none";
};

using Key = std::vector<Bytes>;
using Row = std::vector<Cell>;

struct KeyLess {
  const std::vector<DataType>* types;
  bool operator()(const Key& a, const Key& b) const {
    std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
      int c = compare_values(a[i], b[i], (*types)[i]);
      if (c != 0) return c < 0;
    }
    return a.size() < b.size();
  }
};

struct Table {
  std::string keyspace, name;
  Bytes id;
  std::vector<Column> columns;  // SELECT * order: partition key, clustering, the rest by name
  std::size_t pk_count = 0, ck_count = 0;
  std::vector<DataType> key_types;
  std::map<Key, Row, KeyLess> rows{KeyLess{&key_types}};

  int index(const std::string& col) const {
    for (std::size_t i = 0; i < columns.size(); ++i)
      if (columns[i].name == col) return static_cast<int>(i);
    return -1;
  }
  std::size_t key_size() const { return pk_count + ck_count; }
};

struct Keyspace {
  std::string name;
  std::vector<std::pair<std::string, std::string>> replication;
  bool durable_writes = true;
  std::map<std::string, std::unique_ptr<Table>> tables;
};

// A system table generated for one request.
struct VirtualTable {
  std::string keyspace, name;
  std::vector<Column> columns;
  std::vector<Row> rows;
};

struct Prepared {
  std::string query;
  std::string keyspace;
  std::shared_ptr<const Statement> statement;
};

bool is_system_keyspace(const std::string& ks) {
  return ks == "system" || ks == "system_schema" || ks == "system_virtual_schema";
}

Column col(std::string name, const char* type, Kind kind = Kind::kRegular, int position = -1) {
  Column c;
  c.name = std::move(name);
  c.type = cql::parse_cql_type(type);
  c.kind = kind;
  c.position = position;
  return c;
}

Cell text(const std::string& s) {
  return text_bytes(s);
}

// ---------------------------------------------------------------------------------------------
// Bound values.

struct Binds {
  const std::vector<Value>* values = nullptr;
  const std::vector<std::string>* names = nullptr;  // names_for_values, or empty
  const Statement* statement = nullptr;

  void check() const {
    std::size_t have = values ? values->size() : 0;
    if (have != static_cast<std::size_t>(statement->bind_count))
      throw InvalidRequest("There were " + std::to_string(statement->bind_count) +
                           " markers(?) in CQL but " + std::to_string(have) + " bound variables");
  }
  const Value& value(int index) const {
    if (names && !names->empty()) {
      const std::string& want = statement->bind_names.at(static_cast<std::size_t>(index));
      for (std::size_t i = 0; i < names->size(); ++i)
        if (!want.empty() && lower((*names)[i]) == lower(want)) return values->at(i);
    }
    return values->at(static_cast<std::size_t>(index));
  }
};

// The value of `t` for a column of `type`; nullopt when the bound value is unset.
std::optional<Cell> eval(const Term& t, const DataType& type, const std::string& column,
                         const Binds& binds) {
  if (t.kind == Term::Kind::kBind) {
    const Value& v = binds.value(t.bind_index);
    if (v.kind == Value::Kind::kUnset) return std::nullopt;
    if (v.kind == Value::Kind::kNull) return Cell{};
    validate_value(v.bytes, type);
    return Cell{v.bytes};
  }
  return literal_to_cell(t, type, column);
}

int64_t eval_int(const Term& t, const Binds& binds, const std::string& what) {
  auto c = eval(t, DataType::of(TypeId::kInt), what, binds);
  if (!c || !*c || (*c)->size() != 4) throw InvalidRequest("Invalid null value of " + what);
  int64_t v = 0;
  for (auto b : **c) v = (v << 8) | std::to_integer<uint8_t>(b);
  return static_cast<int32_t>(v);
}

// A WHERE relation with evaluated values.
struct Cond {
  int column = -1;
  Relation::Op op = Relation::Op::kEq;
  std::vector<Bytes> values;
};

bool matches(const Cond& c, const Row& row, const DataType& type) {
  const Cell& cell = row[static_cast<std::size_t>(c.column)];
  if (!cell) return false;
  switch (c.op) {
    case Relation::Op::kEq:
      return compare_values(*cell, c.values[0], type) == 0;
    case Relation::Op::kIn:
      for (const auto& v : c.values)
        if (compare_values(*cell, v, type) == 0) return true;
      return false;
    case Relation::Op::kLt:
      return compare_values(*cell, c.values[0], type) < 0;
    case Relation::Op::kLe:
      return compare_values(*cell, c.values[0], type) <= 0;
    case Relation::Op::kGt:
      return compare_values(*cell, c.values[0], type) > 0;
    case Relation::Op::kGe:
      return compare_values(*cell, c.values[0], type) >= 0;
  }
  return false;
}

std::vector<Cond> eval_where(const std::vector<Relation>& where, const std::vector<Column>& cols,
                             const std::function<int(const std::string&)>& index,
                             const Binds& binds) {
  std::vector<Cond> out;
  for (const auto& r : where) {
    Cond c;
    c.column = index(r.column);
    if (c.column < 0) throw InvalidRequest("Undefined column name " + r.column);
    c.op = r.op;
    const Column& column = cols[static_cast<std::size_t>(c.column)];
    if (r.op == Relation::Op::kIn && r.terms.size() == 1 && r.terms[0].kind == Term::Kind::kBind) {
      DataType lt;
      lt.id = TypeId::kList;
      lt.params.push_back(column.type);
      auto v = eval(r.terms[0], lt, column.name, binds);
      if (!v || !*v) throw InvalidRequest("Invalid null value for IN restriction on " + r.column);
      c.values = collection_elements(**v);
    } else {
      for (const auto& t : r.terms) {
        auto v = eval(t, column.type, column.name, binds);
        if (!v) throw InvalidRequest("Invalid unset value for column " + column.name);
        if (!*v) throw InvalidRequest("Invalid null value in condition for column " + column.name);
        c.values.push_back(std::move(**v));
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Paging state: [int rows returned so far][short n]([int len][bytes])* of the last key.

Bytes encode_paging(int32_t returned, const Key& last) {
  Bytes out;
  cql::Writer w(out);
  w.write_int(returned);
  w.write_short(static_cast<uint16_t>(last.size()));
  for (const auto& k : last) w.write_bytes(cql::BytesView(k));
  return out;
}

void decode_paging(const Bytes& state, int32_t& returned, Key& last) {
  try {
    cql::Reader r(state);
    returned = r.read_int();
    uint16_t n = r.read_short();
    for (uint16_t i = 0; i < n; ++i) {
      auto b = r.read_bytes();
      last.push_back(b ? std::move(*b) : Bytes{});
    }
    if (r.remaining() != 0) throw cql::ProtocolError("trailing bytes");
  } catch (const cql::ProtocolError&) {
    throw cql::ProtocolError("Invalid value for the paging state");
  }
}

ResultMsg void_result() {
  return ResultMsg{cql::VoidResult{}};
}

ResultMsg schema_result(const cql::SchemaChange& sc) {
  return ResultMsg{sc};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<NodeInfo> make_nodes(const std::vector<std::string>& addresses) {
  std::vector<NodeInfo> nodes;
  constexpr int kTokensPerNode = 16;
  const uint64_t total = static_cast<uint64_t>(addresses.size()) * kTokensPerNode;
  const uint64_t step = total ? UINT64_MAX / total : 0;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    NodeInfo n;
    n.address = addresses[i];
    unsigned char buf[16];
    if (inet_pton(AF_INET, n.address.c_str(), buf) == 1) {
      n.address_bytes.assign(reinterpret_cast<std::byte*>(buf),
                             reinterpret_cast<std::byte*>(buf) + 4);
    } else if (inet_pton(AF_INET6, n.address.c_str(), buf) == 1) {
      n.address_bytes.assign(reinterpret_cast<std::byte*>(buf),
                             reinterpret_cast<std::byte*>(buf) + 16);
    } else {
      throw std::invalid_argument("not an IP address: " + n.address);
    }
    n.host_id = uuid_from_seed("zdm-testcluster host " + n.address);
    for (int t = 0; t < kTokensPerNode; ++t) {
      uint64_t slot = static_cast<uint64_t>(t) * addresses.size() + i;
      uint64_t u = slot * step + step / 2;
      int64_t token = static_cast<int64_t>(u ^ 0x8000000000000000ULL);  // shift to signed range
      n.tokens.push_back(std::to_string(token));
    }
    nodes.push_back(std::move(n));
  }
  return nodes;
}

struct Unavailable {
  cql::Consistency consistency;
  int required, alive;
};

struct Store::State {
  ClusterInfo info;
  mutable std::mutex mu;
  std::vector<bool> up;                                   // per node (fault admin)
  std::vector<std::pair<int64_t, std::size_t>> ring;      // (token, node), sorted
  cql::Consistency consistency = cql::Consistency::kOne;  // of the request being run
  std::map<std::string, Keyspace> keyspaces;
  std::vector<std::map<Bytes, Prepared>> prepared_by_node;  // one map when not per node
  Bytes schema_version;
  uint64_t schema_generation = 0;

  explicit State(ClusterInfo i) : info(std::move(i)) {
    prepared_by_node.resize(info.prepared_per_node ? info.nodes.size() : 1);
    bump_schema();
    up.assign(info.nodes.size(), true);
    for (std::size_t n = 0; n < info.nodes.size(); ++n)
      for (const auto& t : info.nodes[n].tokens) ring.emplace_back(std::stoll(t), n);
    std::sort(ring.begin(), ring.end());
  }

  // ---- replicas (fault admin) ----

  int replication_factor(const std::string& ks) const {
    auto it = keyspaces.find(ks);
    if (it == keyspaces.end()) return 1;
    for (const auto& [k, v] : it->second.replication) {
      if (k == "replication_factor" || k == info.datacenter) {
        try {
          return std::max(1, std::stoi(v));
        } catch (const std::exception&) {
          return 1;
        }
      }
    }
    return 1;
  }

  static int required(cql::Consistency cl, int rf) {
    using C = cql::Consistency;
    switch (cl) {
      case C::kAny:
        return 0;  // a hint is enough
      case C::kOne:
      case C::kLocalOne:
        return 1;
      case C::kTwo:
        return 2;
      case C::kThree:
        return 3;
      case C::kAll:
        return rf;
      default:  // QUORUM, LOCAL_QUORUM, EACH_QUORUM, SERIAL, LOCAL_SERIAL
        return rf / 2 + 1;
    }
  }

  // Live replicas of the range that ends at ring[from]'s token (rf distinct nodes from there).
  int alive_replicas(std::size_t from, int rf) const {
    std::vector<bool> seen(info.nodes.size(), false);
    int found = 0, alive = 0;
    for (std::size_t i = 0; i < ring.size() && found < rf; ++i) {
      std::size_t node = ring[(from + i) % ring.size()].second;
      if (seen[node]) continue;
      seen[node] = true;
      ++found;
      if (up[node]) ++alive;
    }
    return alive;
  }

  void check_alive(int alive, int rf) const {
    int need = required(consistency, rf);
    if (alive < need) throw Unavailable{consistency, need, alive};
  }

  // The partition of `key` (its first pk_count components) must have enough live replicas.
  void require_replicas(const Table& t, const Key& key) const {
    if (ring.empty() || std::all_of(up.begin(), up.end(), [](bool u) { return u; })) return;
    Key pk(key.begin(), key.begin() + static_cast<std::ptrdiff_t>(t.pk_count));
    int64_t token = murmur3_token(partition_key_bytes(pk));
    auto it = std::lower_bound(ring.begin(), ring.end(), std::make_pair(token, std::size_t{0}));
    std::size_t from = it == ring.end() ? 0 : static_cast<std::size_t>(it - ring.begin());
    int rf = replication_factor(t.keyspace);
    check_alive(alive_replicas(from, rf), rf);
  }

  // A scan reads every range.
  void require_every_range(const Table& t) const {
    if (std::all_of(up.begin(), up.end(), [](bool u) { return u; })) return;
    int rf = replication_factor(t.keyspace);
    for (std::size_t i = 0; i < ring.size(); ++i) check_alive(alive_replicas(i, rf), rf);
  }

  std::map<Bytes, Prepared>& prepared(std::size_t node) {
    return prepared_by_node[info.prepared_per_node ? node : 0];
  }

  void bump_schema() {
    ++schema_generation;
    schema_version =
        uuid_from_seed("schema " + info.name + " " + std::to_string(schema_generation));
  }

  // ---- name resolution ----

  std::string keyspace_of(const QualifiedName& q, const Session& s) const {
    std::string ks = q.keyspace.empty() ? s.keyspace : q.keyspace;
    if (ks.empty())
      throw InvalidRequest(
          "No keyspace has been specified. USE a keyspace, or explicitly specify "
          "keyspace.tablename");
    return ks;
  }

  Keyspace& keyspace(const std::string& ks) {
    auto it = keyspaces.find(ks);
    if (it == keyspaces.end()) throw InvalidRequest("Keyspace " + ks + " does not exist");
    return it->second;
  }

  Table& table(const QualifiedName& q, const Session& s) {
    std::string ks = keyspace_of(q, s);
    if (is_system_keyspace(ks)) throw InvalidRequest(ks + " keyspace is not user-modifiable.");
    Keyspace& k = keyspace(ks);
    auto it = k.tables.find(q.name);
    if (it == k.tables.end()) throw InvalidRequest("unconfigured table " + q.name);
    return *it->second;
  }

  // ---- system tables ----

  // The columns DSE 6.x adds to system.local/peers that drivers read: dse_version (which picks
  // DSE protocol versions and schema parsers), native_transport_address/_port (where clients
  // connect), workloads, graph. Appends them to row `row` (and once to the columns).
  void append_dse_columns(VirtualTable& v, const NodeInfo& n, std::size_t row = 0) {
    if (row == 0) {
      for (auto* c : {"dse_version", "native_transport_address", "native_transport_port",
                      "native_transport_port_ssl", "workloads", "graph"}) {
        const char* type = "text";
        if (std::string(c) == "native_transport_address") type = "inet";
        if (std::string(c).rfind("native_transport_port", 0) == 0) type = "int";
        if (std::string(c) == "workloads") type = "set<text>";
        if (std::string(c) == "graph") type = "boolean";
        v.columns.push_back(col(c, type));
      }
    }
    auto& r = v.rows.at(row);
    r.push_back(text(info.dse_version));
    r.push_back(n.address_bytes);
    r.push_back(be_int(info.native_port, 4));
    r.push_back(be_int(info.native_port, 4));
    r.push_back(text_set({"Cassandra"}));
    r.push_back(be_int(0, 1));
  }

  std::optional<VirtualTable> system_table(const std::string& ks, const std::string& name,
                                           std::size_t node) {
    VirtualTable v;
    v.keyspace = ks;
    v.name = name;
    const NodeInfo& self = info.nodes.at(node);
    if (ks == "system" && name == "local") {
      v.columns = {col("key", "text", Kind::kPartitionKey, 0),
                   col("bootstrapped", "text"),
                   col("broadcast_address", "inet"),
                   col("cluster_name", "text"),
                   col("cql_version", "text"),
                   col("data_center", "text"),
                   col("gossip_generation", "int"),
                   col("host_id", "uuid"),
                   col("listen_address", "inet"),
                   col("native_protocol_version", "text"),
                   col("partitioner", "text"),
                   col("rack", "text"),
                   col("release_version", "text"),
                   col("rpc_address", "inet"),
                   col("schema_version", "uuid"),
                   col("thrift_version", "text"),
                   col("tokens", "set<text>"),
                   col("truncated_at", "map<uuid, blob>")};
      v.rows.push_back({text("local"), text("COMPLETED"), self.address_bytes, text(info.name),
                        text(info.cql_version), text(info.datacenter), be_int(1700000000, 4),
                        self.host_id, self.address_bytes, text("4"),
                        text("org.apache.cassandra.dht.Murmur3Partitioner"), text(info.rack),
                        text(info.release_version), self.address_bytes, schema_version,
                        text("20.1.0"), text_set(self.tokens), std::nullopt});
      if (!info.dse_version.empty()) append_dse_columns(v, self);
      return v;
    }
    if (ks == "system" && name == "peers") {
      v.columns = {col("peer", "inet", Kind::kPartitionKey, 0),
                   col("data_center", "text"),
                   col("host_id", "uuid"),
                   col("preferred_ip", "inet"),
                   col("rack", "text"),
                   col("release_version", "text"),
                   col("rpc_address", "inet"),
                   col("schema_version", "uuid"),
                   col("tokens", "set<text>")};
      for (std::size_t i = 0; i < info.nodes.size(); ++i) {
        if (i == node) continue;
        const NodeInfo& p = info.nodes[i];
        v.rows.push_back({p.address_bytes, text(info.datacenter), p.host_id, std::nullopt,
                          text(info.rack), text(info.release_version), p.address_bytes,
                          schema_version, text_set(p.tokens)});
      }
      if (!info.dse_version.empty()) {
        std::size_t row = 0;
        for (std::size_t i = 0; i < info.nodes.size(); ++i)
          if (i != node) append_dse_columns(v, info.nodes[i], row++);
      }
      return v;
    }
    if (ks == "system_virtual_schema") {
      // Cassandra 4.0 and later list their virtual keyspaces here; drivers read these three
      // tables at every schema refresh. The keyspaces are listed, their tables not modelled.
      if (info.release_version.empty() || info.release_version[0] < '4') return std::nullopt;
      if (name == "keyspaces") {
        v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0)};
        for (const char* k : {"system_views", "system_virtual_schema"}) v.rows.push_back({text(k)});
        return v;
      }
      if (name == "tables") {
        v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                     col("table_name", "text", Kind::kClustering, 0), col("comment", "text")};
        return v;
      }
      if (name == "columns") {
        v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                     col("table_name", "text", Kind::kClustering, 0),
                     col("column_name", "text", Kind::kClustering, 1),
                     col("clustering_order", "text"),
                     col("column_name_bytes", "blob"),
                     col("kind", "text"),
                     col("position", "int"),
                     col("type", "text")};
        return v;
      }
      return std::nullopt;
    }
    if (ks != "system_schema") return std::nullopt;
    const std::string kLocal = "org.apache.cassandra.locator.LocalStrategy";
    if (name == "keyspaces") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("durable_writes", "boolean"), col("replication", "map<text, text>")};
      std::map<std::string, Row> rows;
      for (const char* sys : {"system", "system_schema"})
        rows[sys] = {text(sys), be_int(1, 1), text_map({{"class", kLocal}})};
      for (const auto& [n, k] : keyspaces)
        rows[n] = {text(n), be_int(k.durable_writes ? 1 : 0, 1), text_map(k.replication)};
      for (auto& [n, r] : rows) v.rows.push_back(std::move(r));
      return v;
    }
    if (name == "tables") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("table_name", "text", Kind::kClustering, 0),
                   col("bloom_filter_fp_chance", "double"),
                   col("caching", "map<text, text>"),
                   col("cdc", "boolean"),
                   col("comment", "text"),
                   col("compaction", "map<text, text>"),
                   col("compression", "map<text, text>"),
                   col("crc_check_chance", "double"),
                   col("dclocal_read_repair_chance", "double"),
                   col("default_time_to_live", "int"),
                   col("extensions", "map<text, blob>"),
                   col("flags", "set<text>"),
                   col("gc_grace_seconds", "int"),
                   col("id", "uuid"),
                   col("max_index_interval", "int"),
                   col("memtable_flush_period_in_ms", "int"),
                   col("min_index_interval", "int"),
                   col("read_repair_chance", "double"),
                   col("speculative_retry", "text")};
      auto dbl = [](double d) { return be_int(std::bit_cast<int64_t>(d), 8); };
      for (const auto& [kn, k] : keyspaces) {
        for (const auto& [tn, t] : k.tables) {
          v.rows.push_back(
              {text(kn),
               text(tn),
               dbl(0.01),
               text_map({{"keys", "ALL"}, {"rows_per_partition", "NONE"}}),
               std::nullopt,
               text(""),
               text_map(
                   {{"class", "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy"},
                    {"max_threshold", "32"},
                    {"min_threshold", "4"}}),
               text_map({{"chunk_length_in_kb", "64"},
                         {"class", "org.apache.cassandra.io.compress.LZ4Compressor"}}),
               dbl(1.0),
               dbl(0.1),
               be_int(0, 4),
               collection_value({}, 0),
               text_set({"compound"}),
               be_int(864000, 4),
               t->id,
               be_int(2048, 4),
               be_int(0, 4),
               be_int(128, 4),
               dbl(0.0),
               text("99PERCENTILE")});
        }
      }
      return v;
    }
    if (name == "columns") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("table_name", "text", Kind::kClustering, 0),
                   col("column_name", "text", Kind::kClustering, 1),
                   col("clustering_order", "text"),
                   col("column_name_bytes", "blob"),
                   col("kind", "text"),
                   col("position", "int"),
                   col("type", "text")};
      for (const auto& [kn, k] : keyspaces) {
        for (const auto& [tn, t] : k.tables) {
          std::vector<const Column*> sorted;
          for (const auto& c : t->columns) sorted.push_back(&c);
          std::sort(sorted.begin(), sorted.end(),
                    [](const Column* a, const Column* b) { return a->name < b->name; });
          for (const Column* c : sorted)
            v.rows.push_back({text(kn), text(tn), text(c->name), text(c->order), text(c->name),
                              text(kind_text(c->kind)), be_int(c->position, 4),
                              text(cql::cql_type_name(c->type))});
        }
      }
      return v;
    }
    // Empty tables with Cassandra 3.11's columns.
    if (name == "types") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("type_name", "text", Kind::kClustering, 0), col("field_names", "list<text>"),
                   col("field_types", "list<text>")};
      return v;
    }
    if (name == "functions") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("function_name", "text", Kind::kClustering, 0),
                   col("argument_types", "list<text>", Kind::kClustering, 1),
                   col("argument_names", "list<text>"),
                   col("body", "text"),
                   col("called_on_null_input", "boolean"),
                   col("language", "text"),
                   col("return_type", "text")};
      return v;
    }
    if (name == "aggregates") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("aggregate_name", "text", Kind::kClustering, 0),
                   col("argument_types", "list<text>", Kind::kClustering, 1),
                   col("final_func", "text"),
                   col("initcond", "text"),
                   col("return_type", "text"),
                   col("state_func", "text"),
                   col("state_type", "text")};
      return v;
    }
    if (name == "triggers") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("table_name", "text", Kind::kClustering, 0),
                   col("trigger_name", "text", Kind::kClustering, 1),
                   col("options", "map<text, text>")};
      return v;
    }
    if (!info.dse_version.empty() && (name == "vertices" || name == "edges")) {
      // DSE Graph's schema tables (DSE 6.8): drivers read them; no table here is a graph.
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("table_name", "text", Kind::kClustering, 0), col("label_name", "text")};
      if (name == "edges")
        for (const char* c : {"from_table", "from_label", "to_table", "to_label"})
          v.columns.push_back(col(c, "text"));
      if (name == "edges")
        for (const char* c : {"from_partition_key_columns", "from_clustering_columns",
                              "to_partition_key_columns", "to_clustering_columns"})
          v.columns.push_back(col(c, "list<text>"));
      return v;
    }
    if (name == "indexes") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("table_name", "text", Kind::kClustering, 0),
                   col("index_name", "text", Kind::kClustering, 1), col("kind", "text"),
                   col("options", "map<text, text>")};
      return v;
    }
    if (name == "views") {
      v.columns = {col("keyspace_name", "text", Kind::kPartitionKey, 0),
                   col("view_name", "text", Kind::kClustering, 0),
                   col("base_table_id", "uuid"),
                   col("base_table_name", "text"),
                   col("bloom_filter_fp_chance", "double"),
                   col("caching", "map<text, text>"),
                   col("cdc", "boolean"),
                   col("comment", "text"),
                   col("compaction", "map<text, text>"),
                   col("compression", "map<text, text>"),
                   col("crc_check_chance", "double"),
                   col("dclocal_read_repair_chance", "double"),
                   col("default_time_to_live", "int"),
                   col("extensions", "map<text, blob>"),
                   col("gc_grace_seconds", "int"),
                   col("id", "uuid"),
                   col("include_all_columns", "boolean"),
                   col("max_index_interval", "int"),
                   col("memtable_flush_period_in_ms", "int"),
                   col("min_index_interval", "int"),
                   col("read_repair_chance", "double"),
                   col("speculative_retry", "text"),
                   col("where_clause", "text")};
      return v;
    }
    return std::nullopt;
  }

  // ---- DDL ----

  ResultMsg create_keyspace(const CreateKeyspace& c, std::optional<cql::SchemaChange>& event) {
    if (is_system_keyspace(c.name) || keyspaces.contains(c.name)) {
      if (c.if_not_exists) return void_result();
      throw AlreadyExists{"Cannot add existing keyspace \"" + c.name + "\"", c.name, ""};
    }
    Keyspace k;
    k.name = c.name;
    k.durable_writes = c.durable_writes;
    for (auto [key, value] : c.replication) {
      if (key == "class" && value.find('.') == std::string::npos)
        value = "org.apache.cassandra.locator." + value;
      k.replication.emplace_back(key, value);
    }
    bool has_class = std::any_of(k.replication.begin(), k.replication.end(),
                                 [](const auto& kv) { return kv.first == "class"; });
    if (!has_class) throw InvalidRequest("Missing replication strategy class");
    keyspaces.emplace(c.name, std::move(k));
    bump_schema();
    event = cql::SchemaChange{"CREATED", "KEYSPACE", c.name, "", {}};
    return schema_result(*event);
  }

  ResultMsg create_table(const CreateTable& c, const Session& s,
                         std::optional<cql::SchemaChange>& event) {
    std::string ks = keyspace_of(c.table, s);
    if (is_system_keyspace(ks)) throw InvalidRequest(ks + " keyspace is not user-modifiable.");
    Keyspace& k = keyspace(ks);
    if (k.tables.contains(c.table.name)) {
      if (c.if_not_exists) return void_result();
      throw AlreadyExists{
          "Cannot add already existing table \"" + c.table.name + "\" to keyspace \"" + ks + "\"",
          ks, c.table.name};
    }
    if (c.partition_key.empty())
      throw InvalidRequest("No PRIMARY KEY specifed (exactly one required)");
    std::map<std::string, Column> defs;
    for (const auto& d : c.columns) {
      if (defs.contains(d.name))
        throw InvalidRequest("Multiple definition of identifier " + d.name);
      Column column;
      column.name = d.name;
      try {
        column.type = cql::parse_cql_type(d.type);
      } catch (const std::invalid_argument&) {
        throw InvalidRequest("Unknown type " + ks + "." + d.type);
      }
      column.kind = d.is_static ? Kind::kStatic : Kind::kRegular;
      defs.emplace(d.name, std::move(column));
    }
    auto table = std::make_unique<Table>();
    table->keyspace = ks;
    table->name = c.table.name;
    table->id = uuid_from_seed("table " + ks + "." + c.table.name + " " +
                               std::to_string(schema_generation));
    std::set<std::string> used;
    auto take = [&](const std::string& name, Kind kind, int position) {
      auto it = defs.find(name);
      if (it == defs.end())
        throw InvalidRequest("Unknown definition " + name + " referenced in PRIMARY KEY");
      if (!used.insert(name).second)
        throw InvalidRequest("Multiple definition of identifier " + name);
      Column column = it->second;
      column.kind = kind;
      column.position = position;
      if (kind == Kind::kClustering) {
        auto o = c.clustering_order.find(name);
        column.order = o == c.clustering_order.end() ? "asc" : o->second;
      }
      table->columns.push_back(column);
      table->key_types.push_back(column.type);
    };
    for (std::size_t i = 0; i < c.partition_key.size(); ++i)
      take(c.partition_key[i], Kind::kPartitionKey, static_cast<int>(i));
    for (std::size_t i = 0; i < c.clustering_key.size(); ++i)
      take(c.clustering_key[i], Kind::kClustering, static_cast<int>(i));
    table->pk_count = c.partition_key.size();
    table->ck_count = c.clustering_key.size();
    for (const auto& [name, column] : defs)
      if (!used.contains(name)) table->columns.push_back(column);
    k.tables.emplace(c.table.name, std::move(table));
    bump_schema();
    event = cql::SchemaChange{"CREATED", "TABLE", ks, c.table.name, {}};
    return schema_result(*event);
  }

  ResultMsg drop_keyspace(const DropKeyspace& d, std::optional<cql::SchemaChange>& event) {
    if (is_system_keyspace(d.name))
      throw InvalidRequest(d.name + " keyspace is not user-modifiable.");
    if (!keyspaces.contains(d.name)) {
      if (d.if_exists) return void_result();
      throw InvalidRequest("Cannot drop non existing keyspace '" + d.name + "'.");
    }
    keyspaces.erase(d.name);
    bump_schema();
    event = cql::SchemaChange{"DROPPED", "KEYSPACE", d.name, "", {}};
    return schema_result(*event);
  }

  ResultMsg drop_table(const DropTable& d, const Session& s,
                       std::optional<cql::SchemaChange>& event) {
    std::string ks = keyspace_of(d.table, s);
    auto it = keyspaces.find(ks);
    if (it == keyspaces.end() || !it->second.tables.contains(d.table.name)) {
      if (d.if_exists) return void_result();
      if (it == keyspaces.end()) throw InvalidRequest("Keyspace " + ks + " does not exist");
      throw InvalidRequest("unconfigured table " + d.table.name);
    }
    it->second.tables.erase(d.table.name);
    bump_schema();
    event = cql::SchemaChange{"DROPPED", "TABLE", ks, d.table.name, {}};
    return schema_result(*event);
  }

  // ---- writes ----

  // All primary keys the WHERE clause names (cartesian product of = / IN on key columns).
  // With `allow_partition`, a clause naming only the partition key yields partition prefixes.
  std::vector<Key> keys_of(const Table& t, const std::vector<Cond>& conds, bool allow_partition) {
    std::vector<Key> keys{Key{}};
    for (std::size_t i = 0; i < t.key_size(); ++i) {
      const Cond* found = nullptr;
      for (const auto& c : conds)
        if (c.column == static_cast<int>(i)) found = &c;
      if (!found) {
        if (i >= t.pk_count && allow_partition && i == t.pk_count) break;
        const Column& column = t.columns[i];
        throw InvalidRequest(std::string(column.kind == Kind::kPartitionKey
                                             ? "Some partition key parts are missing: "
                                             : "Some clustering keys are missing: ") +
                             column.name);
      }
      if (found->op != Relation::Op::kEq && found->op != Relation::Op::kIn)
        throw InvalidRequest("Invalid operator for primary key column " + t.columns[i].name);
      std::vector<Key> next;
      for (const auto& k : keys)
        for (const auto& v : found->values) {
          Key nk = k;
          nk.push_back(v);
          next.push_back(std::move(nk));
        }
      keys = std::move(next);
    }
    for (const auto& c : conds)
      if (c.column >= static_cast<int>(t.key_size()))
        throw InvalidRequest("Non PRIMARY KEY columns found in where clause: " +
                             t.columns[static_cast<std::size_t>(c.column)].name);
    return keys;
  }

  Row applied_row(bool applied) { return Row{be_int(applied ? 1 : 0, 1)}; }

  cql::RowsResult applied_result(const Table& t, bool applied, const Row* existing) {
    cql::RowsResult r;
    r.metadata.columns.push_back(
        ColumnSpec{t.keyspace, t.name, "[applied]", DataType::of(TypeId::kBoolean)});
    Row row = applied_row(applied);
    if (existing) {
      for (std::size_t i = 0; i < t.columns.size(); ++i) {
        r.metadata.columns.push_back(
            ColumnSpec{t.keyspace, t.name, t.columns[i].name, t.columns[i].type});
        row.push_back((*existing)[i]);
      }
    }
    r.metadata.column_count = static_cast<int32_t>(r.metadata.columns.size());
    r.rows.push_back(std::move(row));
    return r;
  }

  ResultMsg insert(const Insert& ins, const Session& s, const Binds& binds) {
    Table& t = table(ins.table, s);
    Key key(t.key_size());
    std::vector<bool> have(t.key_size(), false);
    std::vector<std::pair<std::size_t, std::optional<Cell>>> sets;
    for (std::size_t i = 0; i < ins.columns.size(); ++i) {
      int idx = t.index(ins.columns[i]);
      if (idx < 0) throw InvalidRequest("Undefined column name " + ins.columns[i]);
      const Column& c = t.columns[static_cast<std::size_t>(idx)];
      auto v = eval(ins.values[i], c.type, c.name, binds);
      if (static_cast<std::size_t>(idx) < t.key_size()) {
        if (!v) throw InvalidRequest("Invalid unset value for column " + c.name);
        if (!*v) throw InvalidRequest("Invalid null value in condition for column " + c.name);
        key[static_cast<std::size_t>(idx)] = std::move(**v);
        have[static_cast<std::size_t>(idx)] = true;
      } else {
        sets.emplace_back(static_cast<std::size_t>(idx), std::move(v));
      }
    }
    for (std::size_t i = 0; i < t.key_size(); ++i)
      if (!have[i])
        throw InvalidRequest(std::string(i < t.pk_count ? "Some partition key parts are missing: "
                                                        : "Some clustering keys are missing: ") +
                             t.columns[i].name);
    if (ins.using_.ttl) eval_int(*ins.using_.ttl, binds, "[ttl]");
    require_replicas(t, key);
    auto it = t.rows.find(key);
    if (ins.if_not_exists && it != t.rows.end())
      return ResultMsg{applied_result(t, false, &it->second)};
    if (it == t.rows.end()) {
      Row row(t.columns.size());
      for (std::size_t i = 0; i < t.key_size(); ++i) row[i] = key[i];
      it = t.rows.emplace(key, std::move(row)).first;
    }
    for (auto& [idx, v] : sets)
      if (v) it->second[idx] = std::move(*v);
    if (ins.if_not_exists) return ResultMsg{applied_result(t, true, nullptr)};
    return void_result();
  }

  ResultMsg update(const Update& u, const Session& s, const Binds& binds) {
    Table& t = table(u.table, s);
    auto conds = eval_where(
        u.where, t.columns, [&](const std::string& n) { return t.index(n); }, binds);
    auto keys = keys_of(t, conds, false);
    for (const auto& key : keys) require_replicas(t, key);
    std::vector<std::pair<std::size_t, std::optional<Cell>>> sets;
    for (const auto& [name, term] : u.assignments) {
      int idx = t.index(name);
      if (idx < 0) throw InvalidRequest("Undefined column name " + name);
      if (static_cast<std::size_t>(idx) < t.key_size())
        throw InvalidRequest("PRIMARY KEY part " + name + " found in SET part");
      const Column& c = t.columns[static_cast<std::size_t>(idx)];
      sets.emplace_back(static_cast<std::size_t>(idx), eval(term, c.type, c.name, binds));
    }
    if (u.if_exists) {
      bool all =
          std::all_of(keys.begin(), keys.end(), [&](const Key& k) { return t.rows.contains(k); });
      if (!all) return ResultMsg{applied_result(t, false, nullptr)};
    }
    for (const auto& key : keys) {
      auto it = t.rows.find(key);
      if (it == t.rows.end()) {
        Row row(t.columns.size());
        for (std::size_t i = 0; i < t.key_size(); ++i) row[i] = key[i];
        it = t.rows.emplace(key, std::move(row)).first;
      }
      for (auto& [idx, v] : sets)
        if (v) it->second[idx] = *v;
    }
    if (u.if_exists) return ResultMsg{applied_result(t, true, nullptr)};
    return void_result();
  }

  ResultMsg delete_(const Delete& d, const Session& s, const Binds& binds) {
    Table& t = table(d.table, s);
    auto conds = eval_where(
        d.where, t.columns, [&](const std::string& n) { return t.index(n); }, binds);
    auto keys = keys_of(t, conds, true);
    for (const auto& key : keys) require_replicas(t, key);
    std::vector<std::size_t> cols;
    for (const auto& name : d.columns) {
      int idx = t.index(name);
      if (idx < 0) throw InvalidRequest("Undefined column name " + name);
      if (static_cast<std::size_t>(idx) < t.key_size())
        throw InvalidRequest("Invalid identifier " + name +
                             " for deletion (should not be a PRIMARY KEY part)");
      cols.push_back(static_cast<std::size_t>(idx));
    }
    bool any = false;
    for (const auto& key : keys) {
      auto begin = t.rows.lower_bound(key);
      auto end = begin;
      while (end != t.rows.end() &&
             std::equal(key.begin(), key.end(), end->first.begin(),
                        [&](const Bytes& a, const Bytes& b) { return a == b; }))
        ++end;
      if (begin != end) any = true;
      if (d.if_exists && begin == end) return ResultMsg{applied_result(t, false, nullptr)};
      if (d.if_exists) continue;
      if (cols.empty()) {
        t.rows.erase(begin, end);
      } else {
        for (auto it = begin; it != end; ++it)
          for (auto c : cols) it->second[c].reset();
      }
    }
    if (d.if_exists) {
      for (const auto& key : keys) {
        auto begin = t.rows.lower_bound(key);
        auto end = begin;
        while (end != t.rows.end() &&
               std::equal(key.begin(), key.end(), end->first.begin(),
                          [&](const Bytes& a, const Bytes& b) { return a == b; }))
          ++end;
        if (cols.empty()) {
          t.rows.erase(begin, end);
        } else {
          for (auto it = begin; it != end; ++it)
            for (auto c : cols) it->second[c].reset();
        }
      }
      return ResultMsg{applied_result(t, any, nullptr)};
    }
    return void_result();
  }

  // ---- reads ----

  struct Projection {
    std::vector<int> source;  // column index, or -1 for count(*)
    std::vector<ColumnSpec> specs;
  };

  Projection project(const Select& sel, const std::string& ks, const std::string& name,
                     const std::vector<Column>& cols,
                     const std::function<int(const std::string&)>& index) {
    Projection p;
    if (sel.star) {
      for (std::size_t i = 0; i < cols.size(); ++i) {
        p.source.push_back(static_cast<int>(i));
        p.specs.push_back(ColumnSpec{ks, name, cols[i].name, cols[i].type});
      }
      return p;
    }
    for (const auto& s : sel.selectors) {
      if (s.count) {
        p.source.push_back(-1);
        p.specs.push_back(ColumnSpec{ks, name, s.alias, DataType::of(TypeId::kBigint)});
        continue;
      }
      int idx = index(s.column);
      if (idx < 0) throw InvalidRequest("Undefined column name " + s.column);
      p.source.push_back(idx);
      p.specs.push_back(ColumnSpec{ks, name, s.alias.empty() ? s.column : s.alias,
                                   cols[static_cast<std::size_t>(idx)].type});
    }
    return p;
  }

  static Row project_row(const Projection& p, const Row& row, int64_t count) {
    Row out;
    for (int s : p.source)
      out.push_back(s < 0 ? Cell{be_int(count, 8)} : row[static_cast<std::size_t>(s)]);
    return out;
  }

  ResultMsg select(const Select& sel, const Session& s, const Binds& binds, std::size_t node,
                   const cql::QueryParameters& params) {
    std::string ks = keyspace_of(sel.table, s);
    int64_t limit = INT64_MAX;
    if (sel.limit) {
      limit = eval_int(*sel.limit, binds, "[limit]");
      if (limit <= 0) throw InvalidRequest("LIMIT must be strictly positive");
    }
    bool has_count = std::any_of(sel.selectors.begin(), sel.selectors.end(),
                                 [](const Selector& x) { return x.count; });
    cql::RowsResult result;

    if (is_system_keyspace(ks)) {
      auto v = system_table(ks, sel.table.name, node);
      if (!v) throw InvalidRequest("unconfigured table " + sel.table.name);
      auto index = [&](const std::string& n) {
        for (std::size_t i = 0; i < v->columns.size(); ++i)
          if (v->columns[i].name == n) return static_cast<int>(i);
        return -1;
      };
      auto conds = eval_where(sel.where, v->columns, index, binds);
      Projection p = project(sel, ks, sel.table.name, v->columns, index);
      std::vector<const Row*> matched;
      for (const auto& row : v->rows) {
        bool ok = std::all_of(conds.begin(), conds.end(), [&](const Cond& c) {
          return matches(c, row, v->columns[static_cast<std::size_t>(c.column)].type);
        });
        if (ok) matched.push_back(&row);
      }
      result.metadata.columns = p.specs;
      if (has_count) {
        Row empty(v->columns.size());
        result.rows.push_back(project_row(p, matched.empty() ? empty : *matched[0],
                                          static_cast<int64_t>(matched.size())));
      } else {
        for (const Row* r : matched) {
          if (static_cast<int64_t>(result.rows.size()) >= limit) break;
          result.rows.push_back(project_row(p, *r, 0));
        }
      }
      result.metadata.column_count = static_cast<int32_t>(p.specs.size());
      return ResultMsg{std::move(result)};
    }

    Table& t = table(sel.table, s);
    auto index = [&](const std::string& n) { return t.index(n); };
    auto conds = eval_where(sel.where, t.columns, index, binds);
    Projection p = project(sel, t.keyspace, t.name, t.columns, index);
    result.metadata.columns = p.specs;
    result.metadata.column_count = static_cast<int32_t>(p.specs.size());

    // Partitions named by = / IN on every partition key column, else a full scan.
    std::vector<Key> partitions;
    bool by_partition = t.pk_count > 0;
    for (std::size_t i = 0; i < t.pk_count && by_partition; ++i) {
      bool found = false;
      for (const auto& c : conds)
        if (c.column == static_cast<int>(i) &&
            (c.op == Relation::Op::kEq || c.op == Relation::Op::kIn))
          found = true;
      by_partition = found;
    }
    if (by_partition) {
      partitions.push_back(Key{});
      for (std::size_t i = 0; i < t.pk_count; ++i) {
        std::vector<Key> next;
        for (const auto& c : conds) {
          if (c.column != static_cast<int>(i) ||
              (c.op != Relation::Op::kEq && c.op != Relation::Op::kIn))
            continue;
          for (const auto& k : partitions)
            for (const auto& v : c.values) {
              Key nk = k;
              nk.push_back(v);
              next.push_back(std::move(nk));
            }
          break;
        }
        partitions = std::move(next);
      }
      KeyLess less{&t.key_types};
      std::sort(partitions.begin(), partitions.end(), less);
      partitions.erase(
          std::unique(partitions.begin(), partitions.end(),
                      [&](const Key& a, const Key& b) { return !less(a, b) && !less(b, a); }),
          partitions.end());
    }
    if (by_partition) {
      for (const auto& k : partitions) require_replicas(t, k);
    } else {
      require_every_range(t);
    }

    int32_t returned = 0;
    Key after;
    if (params.paging_state && !has_count) decode_paging(*params.paging_state, returned, after);
    int64_t page = params.page_size > 0 && !has_count ? params.page_size : INT64_MAX;
    int64_t remaining = limit - returned;

    auto row_ok = [&](const Row& row) {
      return std::all_of(conds.begin(), conds.end(), [&](const Cond& c) {
        return matches(c, row, t.columns[static_cast<std::size_t>(c.column)].type);
      });
    };
    int64_t count = 0;
    const Row* first = nullptr;
    bool more = false;
    Key last;
    // Visits matching rows in key order after `after`; returns false to stop.
    auto visit = [&](const Key& key, const Row& row) {
      if (!row_ok(row)) return true;
      if (has_count) {
        if (!first) first = &row;
        ++count;
        return true;
      }
      if (static_cast<int64_t>(result.rows.size()) >= std::min(page, remaining)) {
        more = static_cast<int64_t>(result.rows.size()) < remaining;
        return false;
      }
      result.rows.push_back(project_row(p, row, 0));
      last = key;
      return true;
    };
    auto start = [&](const Key& prefix) {
      auto it = t.rows.lower_bound(prefix);
      if (!after.empty()) {
        auto a = t.rows.upper_bound(after);
        if (a != t.rows.end() && (it == t.rows.end() || t.rows.key_comp()(it->first, a->first)))
          it = a;
        else if (a == t.rows.end())
          it = a;
      }
      return it;
    };
    if (by_partition) {
      bool go = true;
      for (const auto& pk : partitions) {
        for (auto it = start(pk); go && it != t.rows.end(); ++it) {
          if (!std::equal(pk.begin(), pk.end(), it->first.begin())) break;
          go = visit(it->first, it->second);
        }
        if (!go) break;
      }
    } else {
      for (auto it = start(Key{}); it != t.rows.end(); ++it)
        if (!visit(it->first, it->second)) break;
    }
    if (has_count) {
      Row empty(t.columns.size());
      result.rows.push_back(project_row(p, first ? *first : empty, count));
    } else if (more) {
      result.metadata.paging_state =
          encode_paging(returned + static_cast<int32_t>(result.rows.size()), last);
    }
    return ResultMsg{std::move(result)};
  }

  // ---- dispatch ----

  Outcome run(const Statement& st, Session& s, const Binds& binds, std::size_t node,
              const cql::QueryParameters& params) {
    Outcome out;
    std::optional<cql::SchemaChange> event;
    binds.check();
    out.response = std::visit(
        [&](const auto& body) -> ResultMsg {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<T, CreateKeyspace>) {
            return create_keyspace(body, event);
          } else if constexpr (std::is_same_v<T, CreateTable>) {
            return create_table(body, s, event);
          } else if constexpr (std::is_same_v<T, DropKeyspace>) {
            return drop_keyspace(body, event);
          } else if constexpr (std::is_same_v<T, DropTable>) {
            return drop_table(body, s, event);
          } else if constexpr (std::is_same_v<T, Truncate>) {
            table(body.table, s).rows.clear();
            return void_result();
          } else if constexpr (std::is_same_v<T, Use>) {
            keyspace_exists_or_throw(body.keyspace);
            s.keyspace = body.keyspace;
            return ResultMsg{cql::SetKeyspaceResult{body.keyspace}};
          } else if constexpr (std::is_same_v<T, Insert>) {
            return insert(body, s, binds);
          } else if constexpr (std::is_same_v<T, Update>) {
            return update(body, s, binds);
          } else if constexpr (std::is_same_v<T, Delete>) {
            return delete_(body, s, binds);
          } else if constexpr (std::is_same_v<T, Select>) {
            return select(body, s, binds, node, params);
          } else {
            for (const auto& child : body.children) run_child(child, s, binds);
            return void_result();
          }
        },
        st.body);
    out.event = std::move(event);
    return out;
  }

  void keyspace_exists_or_throw(const std::string& ks) {
    if (!is_system_keyspace(ks) && !keyspaces.contains(ks))
      throw InvalidRequest("Keyspace '" + ks + "' does not exist");
  }

  // A child of a batch: INSERT, UPDATE or DELETE.
  void run_child(const Statement& child, const Session& s, const Binds& binds) {
    if (const auto* i = std::get_if<Insert>(&child.body)) {
      insert(*i, s, binds);
    } else if (const auto* u = std::get_if<Update>(&child.body)) {
      update(*u, s, binds);
    } else if (const auto* d = std::get_if<Delete>(&child.body)) {
      delete_(*d, s, binds);
    } else {
      throw InvalidRequest("Only INSERT, UPDATE and DELETE statements are allowed in a batch");
    }
  }

  // ---- prepared metadata ----

  void bind_specs(const Statement& st, const Session& s, cql::PreparedMetadata& meta) {
    meta.columns.assign(static_cast<std::size_t>(st.bind_count),
                        ColumnSpec{"", "", "", DataType::of(TypeId::kBlob)});
    std::string default_ks, default_table;
    auto set = [&](const Term& term, const ColumnSpec& spec) {
      if (term.kind != Term::Kind::kBind) return;
      ColumnSpec& out = meta.columns[static_cast<std::size_t>(term.bind_index)];
      out = spec;
      if (!term.bind_name.empty()) out.name = term.bind_name;  // :name markers keep their name
    };
    auto using_specs = [&](const Using& u, const Table& t) {
      if (u.ttl) set(*u.ttl, ColumnSpec{t.keyspace, t.name, "[ttl]", DataType::of(TypeId::kInt)});
      if (u.timestamp)
        set(*u.timestamp,
            ColumnSpec{t.keyspace, t.name, "[timestamp]", DataType::of(TypeId::kBigint)});
    };
    auto where_specs = [&](const std::vector<Relation>& where, const std::string& ks,
                           const std::string& tn, const std::vector<Column>& cols,
                           const std::function<int(const std::string&)>& index) {
      for (const auto& r : where) {
        int idx = index(r.column);
        if (idx < 0) throw InvalidRequest("Undefined column name " + r.column);
        const Column& c = cols[static_cast<std::size_t>(idx)];
        if (r.op == Relation::Op::kIn && r.terms.size() == 1 &&
            r.terms[0].kind == Term::Kind::kBind) {
          DataType lt;
          lt.id = TypeId::kList;
          lt.params.push_back(c.type);
          set(r.terms[0], ColumnSpec{ks, tn, "in(" + c.name + ")", lt});
        } else {
          for (const auto& term : r.terms) set(term, ColumnSpec{ks, tn, c.name, c.type});
        }
      }
    };
    auto pk_from_where = [&](const std::vector<Relation>& where, const Table& t) {
      std::vector<uint16_t> pk;
      for (std::size_t i = 0; i < t.pk_count; ++i) {
        bool found = false;
        for (const auto& r : where)
          if (r.column == t.columns[i].name && r.op == Relation::Op::kEq &&
              r.terms[0].kind == Term::Kind::kBind) {
            pk.push_back(static_cast<uint16_t>(r.terms[0].bind_index));
            found = true;
            break;
          }
        if (!found) return std::vector<uint16_t>{};
      }
      return pk;
    };
    std::function<void(const Statement&, bool)> walk = [&](const Statement& node, bool top) {
      if (const auto* ins = std::get_if<Insert>(&node.body)) {
        Table& t = table(ins->table, s);
        std::vector<uint16_t> pk(t.pk_count, UINT16_MAX);
        for (std::size_t i = 0; i < ins->columns.size(); ++i) {
          int idx = t.index(ins->columns[i]);
          if (idx < 0) throw InvalidRequest("Undefined column name " + ins->columns[i]);
          const Column& c = t.columns[static_cast<std::size_t>(idx)];
          set(ins->values[i], ColumnSpec{t.keyspace, t.name, c.name, c.type});
          if (static_cast<std::size_t>(idx) < t.pk_count &&
              ins->values[i].kind == Term::Kind::kBind)
            pk[static_cast<std::size_t>(idx)] = static_cast<uint16_t>(ins->values[i].bind_index);
        }
        using_specs(ins->using_, t);
        if (top && std::none_of(pk.begin(), pk.end(), [](uint16_t v) { return v == UINT16_MAX; }))
          meta.pk_indices = pk;
      } else if (const auto* u = std::get_if<Update>(&node.body)) {
        Table& t = table(u->table, s);
        for (const auto& [name, term] : u->assignments) {
          int idx = t.index(name);
          if (idx < 0) throw InvalidRequest("Undefined column name " + name);
          const Column& c = t.columns[static_cast<std::size_t>(idx)];
          set(term, ColumnSpec{t.keyspace, t.name, c.name, c.type});
        }
        using_specs(u->using_, t);
        where_specs(u->where, t.keyspace, t.name, t.columns,
                    [&](const std::string& n) { return t.index(n); });
        if (top) meta.pk_indices = pk_from_where(u->where, t);
      } else if (const auto* d = std::get_if<Delete>(&node.body)) {
        Table& t = table(d->table, s);
        using_specs(d->using_, t);
        where_specs(d->where, t.keyspace, t.name, t.columns,
                    [&](const std::string& n) { return t.index(n); });
        if (top) meta.pk_indices = pk_from_where(d->where, t);
      } else if (const auto* sel = std::get_if<Select>(&node.body)) {
        std::string ks = keyspace_of(sel->table, s);
        if (is_system_keyspace(ks)) {
          auto v = system_table(ks, sel->table.name, 0);
          if (!v) throw InvalidRequest("unconfigured table " + sel->table.name);
          where_specs(sel->where, ks, v->name, v->columns, [&](const std::string& n) {
            for (std::size_t i = 0; i < v->columns.size(); ++i)
              if (v->columns[i].name == n) return static_cast<int>(i);
            return -1;
          });
          if (sel->limit)
            set(*sel->limit, ColumnSpec{ks, v->name, "[limit]", DataType::of(TypeId::kInt)});
        } else {
          Table& t = table(sel->table, s);
          where_specs(sel->where, t.keyspace, t.name, t.columns,
                      [&](const std::string& n) { return t.index(n); });
          if (sel->limit)
            set(*sel->limit, ColumnSpec{t.keyspace, t.name, "[limit]", DataType::of(TypeId::kInt)});
          if (top) meta.pk_indices = pk_from_where(sel->where, t);
        }
      } else if (const auto* b = std::get_if<Batch>(&node.body)) {
        for (const auto& child : b->children) walk(child, false);
      }
    };
    walk(st, true);
  }

  cql::RowsMetadata result_metadata(const Statement& st, const Session& s) {
    cql::RowsMetadata m;
    const auto* sel = std::get_if<Select>(&st.body);
    if (!sel) {
      m.flags = cql::rows_flag::kNoMetadata;
      return m;
    }
    std::string ks = keyspace_of(sel->table, s);
    if (is_system_keyspace(ks)) {
      auto v = system_table(ks, sel->table.name, 0);
      if (!v) throw InvalidRequest("unconfigured table " + sel->table.name);
      m.columns = project(*sel, ks, v->name, v->columns, [&](const std::string& n) {
                    for (std::size_t i = 0; i < v->columns.size(); ++i)
                      if (v->columns[i].name == n) return static_cast<int>(i);
                    return -1;
                  }).specs;
    } else {
      Table& t = table(sel->table, s);
      m.columns = project(*sel, t.keyspace, t.name, t.columns, [&](const std::string& n) {
                    return t.index(n);
                  }).specs;
    }
    m.column_count = static_cast<int32_t>(m.columns.size());
    return m;
  }
};

// ---------------------------------------------------------------------------------------------

namespace {

// Runs `f` and turns the executor's exceptions into ERROR bodies.
template <class F>
Outcome guarded(F&& f) {
  try {
    return f();
  } catch (const SyntaxError& e) {
    return Outcome{ErrorMsg{ErrorCode::kSyntaxError, e.what(), {}}, std::nullopt};
  } catch (const InvalidRequest& e) {
    return Outcome{ErrorMsg{ErrorCode::kInvalid, e.what(), {}}, std::nullopt};
  } catch (const AlreadyExists& e) {
    return Outcome{ErrorMsg::already_exists(e.message, e.keyspace, e.table), std::nullopt};
  } catch (const Unprepared& e) {
    return Outcome{ErrorMsg::unprepared("Prepared query with ID " + uuid_to_string(e.id) +
                                            " not found (either the query was not prepared on "
                                            "this host (maybe the host has been restarted?) or "
                                            "you have prepared too many queries and it has been "
                                            "evicted from the internal cache)",
                                        e.id),
                   std::nullopt};
  } catch (const Unavailable& e) {
    // Cassandra's UnavailableException: <consistency><required><alive> (§4.2.1 0x1000).
    ErrorMsg m{ErrorCode::kUnavailable,
               "Cannot achieve consistency level " + cql::consistency_name(e.consistency),
               {}};
    cql::Writer w(m.extra);
    w.write_consistency(e.consistency);
    w.write_int(e.required);
    w.write_int(e.alive);
    return Outcome{std::move(m), std::nullopt};
  } catch (const cql::ProtocolError& e) {
    return Outcome{ErrorMsg{ErrorCode::kProtocolError, e.what(), {}}, std::nullopt};
  } catch (const std::out_of_range& e) {
    return Outcome{ErrorMsg{ErrorCode::kInvalid, std::string("Invalid request: ") + e.what(), {}},
                   std::nullopt};
  }
}

void apply_skip_metadata(Outcome& out, const cql::QueryParameters& params) {
  if (!(params.flags & cql::query_flag::kSkipMetadata)) return;
  auto* result = std::get_if<ResultMsg>(&out.response);
  if (!result) return;
  if (auto* rows = std::get_if<cql::RowsResult>(&result->body)) {
    rows->metadata.flags |= cql::rows_flag::kNoMetadata;
    rows->metadata.column_count = static_cast<int32_t>(rows->metadata.columns.size());
  }
}

// The v5 result metadata id (native_protocol_v5.spec §4.2.5.4): a digest of the result columns,
// so a client holding an older id learns that the columns changed.
Bytes result_metadata_id(const cql::RowsMetadata& m) {
  std::string spec;
  for (const auto& c : m.columns)
    spec += c.keyspace + "." + c.table + "." + c.name + ":" + cql::cql_type_name(c.type) + ";";
  return md5(spec);
}

bool has_result_metadata_id(uint8_t version) {
  return version >= 5 && version != 0x41;  // v5 and DSE_V2; not DSE_V1
}

}  // namespace

Store::Store(ClusterInfo info) : state_(std::make_unique<State>(std::move(info))) {}
Store::~Store() = default;

const ClusterInfo& Store::info() const {
  return state_->info;
}

void Store::set_node_up(std::size_t node, bool up) {
  std::lock_guard lock(state_->mu);
  state_->up.at(node) = up;
}

bool Store::node_up(std::size_t node) const {
  std::lock_guard lock(state_->mu);
  return state_->up.at(node);
}

namespace {

uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

uint64_t fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

}  // namespace

// Cassandra's MurmurHash.hash3_x64_128 (seed 0), first half as the token.
int64_t murmur3_token(cql::BytesView key) {
  constexpr uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  const std::size_t n = key.size(), nblocks = n / 16;
  auto u8 = [&](std::size_t i) { return static_cast<uint64_t>(std::to_integer<uint8_t>(key[i])); };
  // The tail's bytes are sign-extended: Cassandra reads them as Java bytes.
  auto s8 = [&](std::size_t i) {
    return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(u8(i))));
  };
  auto block = [&](std::size_t at) {
    uint64_t v = 0;
    for (int b = 7; b >= 0; --b) v = (v << 8) | u8(at + static_cast<std::size_t>(b));
    return v;
  };
  uint64_t h1 = 0, h2 = 0;
  for (std::size_t i = 0; i < nblocks; ++i) {
    uint64_t k1 = block(i * 16), k2 = block(i * 16 + 8);
    k1 *= c1, k1 = rotl(k1, 31), k1 *= c2, h1 ^= k1;
    h1 = rotl(h1, 27), h1 += h2, h1 = h1 * 5 + 0x52dce729;
    k2 *= c2, k2 = rotl(k2, 33), k2 *= c1, h2 ^= k2;
    h2 = rotl(h2, 31), h2 += h1, h2 = h2 * 5 + 0x38495ab5;
  }
  const std::size_t tail = nblocks * 16, rest = n & 15;
  uint64_t k1 = 0, k2 = 0;
  for (std::size_t i = rest; i > 8; --i) k2 ^= s8(tail + i - 1) << (8 * (i - 9));
  if (rest > 8) k2 *= c2, k2 = rotl(k2, 33), k2 *= c1, h2 ^= k2;
  for (std::size_t i = std::min<std::size_t>(rest, 8); i > 0; --i)
    k1 ^= s8(tail + i - 1) << (8 * (i - 1));
  if (rest > 0) k1 *= c1, k1 = rotl(k1, 31), k1 *= c2, h1 ^= k1;
  h1 ^= n, h2 ^= n;
  h1 += h2, h2 += h1;
  h1 = fmix(h1), h2 = fmix(h2);
  h1 += h2;
  int64_t token = static_cast<int64_t>(h1);
  return token == INT64_MIN ? INT64_MAX : token;
}

Bytes partition_key_bytes(const std::vector<Bytes>& components) {
  if (components.size() == 1) return components[0];
  Bytes out;
  for (const auto& c : components) {
    out.push_back(static_cast<std::byte>((c.size() >> 8) & 0xff));
    out.push_back(static_cast<std::byte>(c.size() & 0xff));
    out.insert(out.end(), c.begin(), c.end());
    out.push_back(std::byte{0});
  }
  return out;
}

Outcome Store::query(std::size_t node, Session& session, const cql::QueryMsg& msg) {
  std::lock_guard lock(state_->mu);
  return guarded([&] {
    Statement st = parse_statement(msg.query);
    Binds binds{&msg.params.values, &msg.params.names, &st};
    state_->consistency = msg.params.consistency;
    return state_->run(st, session, binds, node, msg.params);
  });
}

void Store::forget_prepared(std::size_t node) {
  std::lock_guard lock(state_->mu);
  state_->prepared(node).clear();
}

Outcome Store::prepare(std::size_t node, Session& session, const cql::PrepareMsg& msg) {
  std::lock_guard lock(state_->mu);
  return guarded([&] {
    auto st = std::make_shared<Statement>(parse_statement(msg.query));
    Session s = session;
    if (!msg.keyspace.empty()) s.keyspace = msg.keyspace;
    cql::PreparedResult p;
    state_->bind_specs(*st, s, p.metadata);
    p.result_metadata = state_->result_metadata(*st, s);
    p.result_metadata_id = result_metadata_id(p.result_metadata);
    p.id = md5(s.keyspace + msg.query);
    state_->prepared(node)[p.id] = Prepared{msg.query, s.keyspace, st};
    return Outcome{ResultMsg{std::move(p)}, std::nullopt};
  });
}

Outcome Store::execute(std::size_t node, Session& session, const cql::ExecuteMsg& msg) {
  std::lock_guard lock(state_->mu);
  return guarded([&] {
    auto& prepared = state_->prepared(node);
    auto it = prepared.find(msg.id);
    if (it == prepared.end()) throw Unprepared{msg.id};
    Session s = session;
    if (!it->second.keyspace.empty()) s.keyspace = it->second.keyspace;
    Binds binds{&msg.params.values, &msg.params.names, it->second.statement.get()};
    state_->consistency = msg.params.consistency;
    Outcome out = state_->run(*it->second.statement, s, binds, node, msg.params);
    if (std::holds_alternative<Use>(it->second.statement->body)) session.keyspace = s.keyspace;
    auto* result = std::get_if<ResultMsg>(&out.response);
    auto* rows = result ? std::get_if<cql::RowsResult>(&result->body) : nullptr;
    if (rows && has_result_metadata_id(session.version)) {
      // v5: metadata is skipped while the client's id is current; otherwise sent with the new id.
      Bytes id = result_metadata_id(rows->metadata);
      if (id != msg.result_metadata_id) {
        rows->metadata.flags |= cql::rows_flag::kMetadataChanged;
        rows->metadata.new_metadata_id = id;
        return out;
      }
    }
    apply_skip_metadata(out, msg.params);
    return out;
  });
}

Outcome Store::batch(std::size_t node, Session& session, const cql::BatchMsg& msg) {
  std::lock_guard lock(state_->mu);
  return guarded([&] {
    // Resolve and parse every child first so that an error applies nothing.
    struct Child {
      std::shared_ptr<const Statement> st;
      std::string keyspace;
      const std::vector<Value>* values;
    };
    std::vector<Child> children;
    for (const auto& c : msg.children) {
      if (c.prepared) {
        auto& prepared = state_->prepared(node);
        auto it = prepared.find(c.id);
        if (it == prepared.end()) throw Unprepared{c.id};
        children.push_back(Child{it->second.statement, it->second.keyspace, &c.values});
      } else {
        children.push_back(Child{std::make_shared<Statement>(parse_statement(c.query)),
                                 session.keyspace, &c.values});
      }
    }
    state_->consistency = msg.consistency;
    for (const auto& c : children) {
      Binds binds{c.values, nullptr, c.st.get()};
      binds.check();
      Session s = session;
      if (!c.keyspace.empty()) s.keyspace = c.keyspace;
      state_->run_child(*c.st, s, binds);
    }
    return Outcome{void_result(), std::nullopt};
  });
}

}  // namespace zdm::testcluster
