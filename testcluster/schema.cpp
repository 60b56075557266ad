#include "testcluster/schema.h"

#include <algorithm>
#include <bit>

namespace zdm::testcluster {

namespace {

Cell text(const std::string& s) {
  return text_bytes(s);
}

Column col(const std::string& name, const char* type, ColumnKind kind = ColumnKind::kRegular,
           int position = -1) {
  return make_column(name, type, kind, position);
}

// A system table's columns and rows before they become a Table.
struct VT {
  std::string keyspace, name;
  std::vector<Column> columns;
  std::vector<std::vector<Cell>> rows;
};

const char* kind_text(ColumnKind k) {
  switch (k) {
    case ColumnKind::kPartitionKey:
      return "partition_key";
    case ColumnKind::kClustering:
      return "clustering";
    case ColumnKind::kStatic:
      return "static";
    default:
      return "regular";
  }
}

std::string option_text(const Table& t, const std::string& name) {
  auto it = t.options.find(name);
  return it == t.options.end() ? "" : it->second;
}

// The system tables of one node, built per request from the catalog.
struct Builder {
  const ClusterInfo& info;
  const Catalog& catalog;
  const Bytes& schema_version;

  static std::unique_ptr<Table> finish(VT& v) {
    return virtual_table(v.keyspace, v.name, std::move(v.columns), v.rows);
  }

  // The columns DSE 6.x adds to system.local/peers that drivers read: dse_version (which picks
  // DSE protocol versions and schema parsers), native_transport_address/_port (where clients
  // connect), workloads, graph. Appends them to row `row` (and once to the columns).
  void append_dse_columns(VT& v, const NodeInfo& n, std::size_t row = 0) {
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

  std::unique_ptr<Table> build(const std::string& ks, const std::string& name, std::size_t node) {
    VT v;
    v.keyspace = ks;
    v.name = name;
    const NodeInfo& self = info.nodes.at(node);
    if (ks == "system" && name == "local") {
      v.columns = {col("key", "text", ColumnKind::kPartitionKey, 0),
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
      return finish(v);
    }
    if (ks == "system" && name == "peers") {
      v.columns = {col("peer", "inet", ColumnKind::kPartitionKey, 0),
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
      return finish(v);
    }
    if (ks == "system_virtual_schema") {
      // Cassandra 4.0 and later list their virtual keyspaces here; drivers read these three
      // tables at every schema refresh. The keyspaces are listed, their tables not modelled.
      if (info.release_version.empty() || info.release_version[0] < '4') return nullptr;
      if (name == "keyspaces") {
        v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0)};
        for (const char* k : {"system_views", "system_virtual_schema"}) v.rows.push_back({text(k)});
        return finish(v);
      }
      if (name == "tables") {
        v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                     col("table_name", "text", ColumnKind::kClustering, 0), col("comment", "text")};
        return finish(v);
      }
      if (name == "columns") {
        v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                     col("table_name", "text", ColumnKind::kClustering, 0),
                     col("column_name", "text", ColumnKind::kClustering, 1),
                     col("clustering_order", "text"),
                     col("column_name_bytes", "blob"),
                     col("kind", "text"),
                     col("position", "int"),
                     col("type", "text")};
        return finish(v);
      }
      return nullptr;
    }
    if (ks != "system_schema") return nullptr;
    const std::string kLocal = "org.apache.cassandra.locator.LocalStrategy";
    if (name == "keyspaces") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("durable_writes", "boolean"), col("replication", "map<text, text>")};
      std::map<std::string, std::vector<Cell>> rows;
      for (const char* sys : {"system", "system_schema", "system_auth", "system_distributed"})
        rows[sys] = {text(sys), be_int(1, 1), text_map({{"class", kLocal}})};
      for (const auto& [n, k] : catalog)
        rows[n] = {text(n), be_int(k.durable_writes ? 1 : 0, 1), text_map(k.replication)};
      for (auto& [n, r] : rows) v.rows.push_back(std::move(r));
      return finish(v);
    }
    if (name == "tables") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("table_name", "text", ColumnKind::kClustering, 0),
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
      for (const auto& [kn, k] : catalog) {
        for (const auto& [tn, t] : k.tables) {
          v.rows.push_back(
              {text(kn),
               text(tn),
               dbl(0.01),
               text_map({{"keys", "ALL"}, {"rows_per_partition", "NONE"}}),
               std::nullopt,
               text(option_text(*t, "comment")),
               text_map(
                   {{"class", "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy"},
                    {"max_threshold", "32"},
                    {"min_threshold", "4"}}),
               text_map({{"chunk_length_in_kb", "64"},
                         {"class", "org.apache.cassandra.io.compress.LZ4Compressor"}}),
               dbl(1.0),
               dbl(0.1),
               be_int(t->default_ttl, 4),
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
      return finish(v);
    }
    if (name == "columns") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("table_name", "text", ColumnKind::kClustering, 0),
                   col("column_name", "text", ColumnKind::kClustering, 1),
                   col("clustering_order", "text"),
                   col("column_name_bytes", "blob"),
                   col("kind", "text"),
                   col("position", "int"),
                   col("type", "text")};
      for (const auto& [kn, k] : catalog) {
        for (const auto& [tn, t] : k.tables) {
          std::vector<const Column*> sorted;
          for (const auto& c : t->columns) sorted.push_back(&c);
          std::sort(sorted.begin(), sorted.end(),
                    [](const Column* a, const Column* b) { return a->name < b->name; });
          for (const Column* c : sorted)
            v.rows.push_back({text(kn), text(tn), text(c->name), text(c->order), text(c->name),
                              text(kind_text(c->kind)), be_int(c->position, 4),
                              text(c->type_text)});
        }
      }
      return finish(v);
    }
    // Empty tables with Cassandra 3.11's columns.
    if (name == "types") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("type_name", "text", ColumnKind::kClustering, 0),
                   col("field_names", "list<text>"), col("field_types", "list<text>")};
      return finish(v);
    }
    if (name == "functions") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("function_name", "text", ColumnKind::kClustering, 0),
                   col("argument_types", "list<text>", ColumnKind::kClustering, 1),
                   col("argument_names", "list<text>"),
                   col("body", "text"),
                   col("called_on_null_input", "boolean"),
                   col("language", "text"),
                   col("return_type", "text")};
      return finish(v);
    }
    if (name == "aggregates") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("aggregate_name", "text", ColumnKind::kClustering, 0),
                   col("argument_types", "list<text>", ColumnKind::kClustering, 1),
                   col("final_func", "text"),
                   col("initcond", "text"),
                   col("return_type", "text"),
                   col("state_func", "text"),
                   col("state_type", "text")};
      return finish(v);
    }
    if (name == "triggers") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("table_name", "text", ColumnKind::kClustering, 0),
                   col("trigger_name", "text", ColumnKind::kClustering, 1),
                   col("options", "map<text, text>")};
      return finish(v);
    }
    if (!info.dse_version.empty() && (name == "vertices" || name == "edges")) {
      // DSE Graph's schema tables (DSE 6.8): drivers read them; no table here is a graph.
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("table_name", "text", ColumnKind::kClustering, 0),
                   col("label_name", "text")};
      if (name == "edges")
        for (const char* c : {"from_table", "from_label", "to_table", "to_label"})
          v.columns.push_back(col(c, "text"));
      if (name == "edges")
        for (const char* c : {"from_partition_key_columns", "from_clustering_columns",
                              "to_partition_key_columns", "to_clustering_columns"})
          v.columns.push_back(col(c, "list<text>"));
      return finish(v);
    }
    if (name == "indexes") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("table_name", "text", ColumnKind::kClustering, 0),
                   col("index_name", "text", ColumnKind::kClustering, 1), col("kind", "text"),
                   col("options", "map<text, text>")};
      return finish(v);
    }
    if (name == "views") {
      v.columns = {col("keyspace_name", "text", ColumnKind::kPartitionKey, 0),
                   col("view_name", "text", ColumnKind::kClustering, 0),
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
      return finish(v);
    }
    return nullptr;
  }
};

std::string quote_name(const std::string& n) {
  bool plain = !n.empty() && (std::islower(static_cast<unsigned char>(n[0])) != 0);
  for (char c : n)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
      plain = false;
  if (plain) return n;
  std::string out = "\"";
  for (char c : n) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string quote_string(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

cql::ColumnSpec describe_spec(const char* name) {
  return cql::ColumnSpec{"system", "describe", name, cql::DataType::of(cql::TypeId::kVarchar)};
}

const Keyspace& find_keyspace(const Catalog& catalog, const std::string& ks) {
  auto it = catalog.find(ks);
  if (it == catalog.end()) throw InvalidRequest("'" + ks + "' not found in keyspaces");
  return it->second;
}

}  // namespace

bool is_virtual_keyspace(const std::string& ks) {
  return ks == "system" || ks == "system_schema" || ks == "system_virtual_schema";
}

Column make_column(const std::string& name, const std::string& type_text, ColumnKind kind,
                   int position) {
  Column c;
  c.name = name;
  std::string t = lower(type_text);
  t.erase(std::remove(t.begin(), t.end(), ' '), t.end());
  if (t == "varchar") t = "text";
  bool frozen = t.rfind("frozen<", 0) == 0;
  c.type = cql::parse_cql_type(t);
  bool collection = c.type.id == cql::TypeId::kList || c.type.id == cql::TypeId::kSet ||
                    c.type.id == cql::TypeId::kMap;
  c.multi_cell =
      collection && !frozen && kind != ColumnKind::kPartitionKey && kind != ColumnKind::kClustering;
  c.type_text = cql::cql_type_name(c.type);
  if (collection && !c.multi_cell) c.type_text = "frozen<" + c.type_text + ">";
  c.kind = kind;
  c.position = position;
  return c;
}

std::unique_ptr<Table> virtual_table(const std::string& ks, const std::string& name,
                                     std::vector<Column> columns,
                                     const std::vector<std::vector<Cell>>& rows) {
  auto t = std::make_unique<Table>();
  t->keyspace = ks;
  t->name = name;
  for (const auto& c : columns) {
    if (c.kind == ColumnKind::kPartitionKey) ++t->pk_count;
    if (c.kind == ColumnKind::kClustering) {
      ++t->ck_count;
      t->clustering.emplace_back(c.type, false);
    }
  }
  t->columns = std::move(columns);
  // System collections are stored frozen-like: one cell holding the serialized value.
  for (auto& c : t->columns) c.multi_cell = false;
  WriteTime wt{1, 0, 0};
  for (const auto& r : rows) {
    std::vector<Bytes> pk, ck;
    for (std::size_t i = 0; i < t->key_size(); ++i)
      (i < t->pk_count ? pk : ck).push_back(r.at(i).value_or(Bytes{}));
    PartitionData& p = t->partition(pk);
    RowData& row = t->row(p, ck);
    write_marker(row, wt);
    for (std::size_t i = t->key_size(); i < t->columns.size() && i < r.size(); ++i)
      if (r[i]) write_cell(t->slot(row, i).cell, r[i], wt);
  }
  return t;
}

std::unique_ptr<Table> system_table(const ClusterInfo& info, const Catalog& catalog,
                                    const Bytes& schema_version, const std::string& ks,
                                    const std::string& name, std::size_t node) {
  return Builder{info, catalog, schema_version}.build(ks, name, node);
}

std::string keyspace_cql(const Keyspace& k) {
  std::string repl;
  for (const auto& [key, value] : k.replication)
    repl += (repl.empty() ? "" : ", ") + quote_string(key) + ": " + quote_string(value);
  return "CREATE KEYSPACE " + quote_name(k.name) + " WITH replication = {" + repl +
         "}  AND durable_writes = " + (k.durable_writes ? "true" : "false") + ";";
}

std::string table_cql(const Table& t) {
  std::string out = "CREATE TABLE " + quote_name(t.keyspace) + "." + quote_name(t.name) + " (\n";
  for (const auto& c : t.columns)
    out += "    " + quote_name(c.name) + " " + c.type_text +
           (c.kind == ColumnKind::kStatic ? " static" : "") + ",\n";
  out += "    PRIMARY KEY (";
  std::string pk;
  for (std::size_t i = 0; i < t.pk_count; ++i)
    pk += (i ? ", " : "") + quote_name(t.columns[i].name);
  out += t.pk_count > 1 ? "(" + pk + ")" : pk;
  for (std::size_t i = t.pk_count; i < t.key_size(); ++i)
    out += ", " + quote_name(t.columns[i].name);
  out += ")\n) WITH ";
  if (t.ck_count > 0) {
    out += "CLUSTERING ORDER BY (";
    for (std::size_t i = t.pk_count; i < t.key_size(); ++i) {
      std::string dir = t.columns[i].order;
      std::transform(dir.begin(), dir.end(), dir.begin(), ::toupper);
      out += (i > t.pk_count ? ", " : "") + quote_name(t.columns[i].name) + " " + dir;
    }
    out += ")\n    AND ";
  }
  std::string comment = option_text(t, "comment");
  out +=
      "additional_write_policy = '99p'\n"
      "    AND bloom_filter_fp_chance = 0.01\n"
      "    AND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'}\n"
      "    AND cdc = false\n"
      "    AND comment = " +
      quote_string(comment) +
      "\n"
      "    AND compaction = {'class': "
      "'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', 'max_threshold': "
      "'32', 'min_threshold': '4'}\n"
      "    AND compression = {'chunk_length_in_kb': '16', 'class': "
      "'org.apache.cassandra.io.compress.LZ4Compressor'}\n"
      "    AND memtable = 'default'\n"
      "    AND crc_check_chance = 1.0\n"
      "    AND default_time_to_live = " +
      std::to_string(t.default_ttl) +
      "\n"
      "    AND extensions = {}\n"
      "    AND gc_grace_seconds = 864000\n"
      "    AND max_index_interval = 2048\n"
      "    AND memtable_flush_period_in_ms = 0\n"
      "    AND min_index_interval = 128\n"
      "    AND read_repair = 'BLOCKING'\n"
      "    AND speculative_retry = '99p';";
  return out;
}

cql::RowsResult describe(const Describe& d, const ClusterInfo& info, const Catalog& catalog,
                         const std::string& session_keyspace) {
  cql::RowsResult r;
  auto& cols = r.metadata.columns;
  for (const char* c : {"keyspace_name", "type", "name"}) cols.push_back(describe_spec(c));
  auto element = [&](const std::string& ks, const char* type, const std::string& name,
                     const std::string& stmt) {
    r.rows.push_back({text_bytes(ks), text_bytes(type), text_bytes(name), text_bytes(stmt)});
  };
  auto describe_keyspace = [&](const Keyspace& k) {
    element(k.name, "keyspace", k.name, keyspace_cql(k));
    for (const auto& [tn, t] : k.tables) element(k.name, "table", tn, table_cql(*t));
  };
  auto keyspace_or_session = [&]() -> const Keyspace& {
    std::string ks = d.keyspace.empty() ? session_keyspace : d.keyspace;
    if (ks.empty()) throw InvalidRequest("No keyspace specified and no current keyspace");
    return find_keyspace(catalog, ks);
  };
  switch (d.what) {
    case Describe::What::kKeyspaces:
      for (const char* sys : {"system", "system_schema"})
        r.rows.push_back({text_bytes(sys), text_bytes("keyspace"), text_bytes(sys)});
      for (const auto& [n, k] : catalog)
        r.rows.push_back({text_bytes(n), text_bytes("keyspace"), text_bytes(n)});
      break;
    case Describe::What::kTables:
      for (const auto& [n, k] : catalog) {
        if (!session_keyspace.empty() && n != session_keyspace) continue;
        for (const auto& [tn, t] : k.tables)
          r.rows.push_back({text_bytes(n), text_bytes("table"), text_bytes(tn)});
      }
      break;
    case Describe::What::kTypes:
    case Describe::What::kFunctions:
    case Describe::What::kAggregates:
      break;  // none exist here
    case Describe::What::kCluster: {
      cols.clear();
      for (const char* c : {"cluster", "partitioner", "snitch"}) cols.push_back(describe_spec(c));
      r.rows.push_back({text_bytes(info.name),
                        text_bytes("org.apache.cassandra.dht.Murmur3Partitioner"),
                        text_bytes("org.apache.cassandra.locator.SimpleSnitch")});
      break;
    }
    case Describe::What::kSchema:
      cols.push_back(describe_spec("create_statement"));
      for (const auto& [n, k] : catalog)
        if (d.full || !k.system) describe_keyspace(k);
      break;
    case Describe::What::kKeyspace:
      cols.push_back(describe_spec("create_statement"));
      describe_keyspace(keyspace_or_session());
      break;
    case Describe::What::kTable:
    case Describe::What::kName: {
      cols.push_back(describe_spec("create_statement"));
      if (d.what == Describe::What::kName && d.keyspace.empty() && catalog.contains(d.name)) {
        describe_keyspace(catalog.at(d.name));
        break;
      }
      const Keyspace& k = keyspace_or_session();
      auto it = k.tables.find(d.name);
      if (it == k.tables.end())
        throw InvalidRequest("'" + d.name + "' not found in keyspace '" + k.name + "'");
      element(k.name, "table", d.name, table_cql(*it->second));
      break;
    }
  }
  r.metadata.column_count = static_cast<int32_t>(cols.size());
  return r;
}

}  // namespace zdm::testcluster
