#include "testcluster/store.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "testcluster/journal.h"
#include "testcluster/parser.h"
#include "testcluster/schema.h"
#include "testcluster/selection.h"
#include "testcluster/table.h"
#include "testcluster/values.h"

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
struct Unavailable {
  cql::Consistency consistency;
  int required, alive;
};

const char* kNeedsFiltering =
    "Cannot execute this query as it might involve data filtering and thus may have "
    "unpredictable performance. If you want to execute this query despite the performance "
    "unpredictability, use ALLOW FILTERING";

constexpr int32_t kMaxTtl = 630720000;  // 20 years, Attributes.MAX_TTL
constexpr int32_t kTraceTtl = 86400;    // system_traces rows live a day

using Row = std::vector<Cell>;

struct Prepared {
  std::string query;
  std::string keyspace;
  std::shared_ptr<const Statement> statement;
  cql::StatementInfo info;  // kind and keyspace, for the fault admin's filters
};

cql::StatementKind kind_of(const Statement& st) {
  return std::visit(
      [](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Select>) return cql::StatementKind::kSelect;
        if constexpr (std::is_same_v<T, Insert>) return cql::StatementKind::kInsert;
        if constexpr (std::is_same_v<T, Update>) return cql::StatementKind::kUpdate;
        if constexpr (std::is_same_v<T, Delete>) return cql::StatementKind::kDelete;
        if constexpr (std::is_same_v<T, Batch>) return cql::StatementKind::kBatch;
        if constexpr (std::is_same_v<T, Use>) return cql::StatementKind::kUse;
        if constexpr (std::is_same_v<T, Describe>) return cql::StatementKind::kOther;
        return cql::StatementKind::kDdl;
      },
      st.body);
}

// The write time Cassandra's ClientState gives a statement without one: microseconds, strictly
// increasing within the process.
int64_t next_write_timestamp() {
  static std::atomic<int64_t> last{0};
  int64_t now = now_micros();
  int64_t prev = last.load();
  int64_t v;
  do {
    v = std::max(now, prev + 1);
  } while (!last.compare_exchange_weak(prev, v));
  return v;
}

int32_t now_seconds() {
  return static_cast<int32_t>(now_ms() / 1000);
}

DataType list_of(const DataType& t) {
  DataType lt;
  lt.id = TypeId::kList;
  lt.params.push_back(t);
  return lt;
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

// A non-null, set value (key columns, IN lists, conditions).
Bytes eval_required(const Term& t, const Column& c, const Binds& binds) {
  auto v = eval(t, c.type, c.name, binds);
  if (!v) throw InvalidRequest("Invalid unset value for column " + c.name);
  if (!*v) throw InvalidRequest("Invalid null value in condition for column " + c.name);
  return std::move(**v);
}

// The values of `col = t` or `col IN (...)` / `col IN ?`.
std::vector<Bytes> eval_values(const Relation& r, const Column& c, const Binds& binds) {
  std::vector<Bytes> out;
  if (r.op == Relation::Op::kIn && r.terms.size() == 1 && r.terms[0].kind == Term::Kind::kBind) {
    auto v = eval(r.terms[0], list_of(c.type), c.name, binds);
    if (!v || !*v) throw InvalidRequest("Invalid null value for IN restriction on " + c.name);
    return collection_elements(**v);
  }
  for (const auto& t : r.terms) out.push_back(eval_required(t, c, binds));
  return out;
}

// An optional integer parameter ([ttl], [limit], ...); nullopt when unset.
std::optional<int64_t> eval_number(const Term& t, const Binds& binds, const std::string& what,
                                   TypeId id) {
  auto c = eval(t, DataType::of(id), what, binds);
  if (!c) return std::nullopt;
  if (!*c) throw InvalidRequest("Invalid null value of " + what);
  if ((*c)->empty()) throw InvalidRequest("Invalid empty value of " + what);
  return read_be(**c);
}

ResultMsg void_result() {
  return ResultMsg{cql::VoidResult{}};
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

struct Store::State {
  // What one request runs with.
  struct Ctx {
    Session& session;
    std::size_t node = 0;
    cql::Consistency cl = cql::Consistency::kOne;
    std::optional<int64_t> default_ts;  // the protocol's timestamp, or the batch's
    int32_t now = 0;
    const cql::QueryParameters* params = nullptr;
    const std::string* query = nullptr;  // the statement's text (DDL is journaled as text)
    bool cas_checked = false;            // a conditional batch checked its conditions already
    std::optional<int64_t> cas_ts;       // the ballot time of a conditional batch
  };
  // A partition header or row changed by the current request (journaled at its end).
  struct Touch {
    Table* table;
    PartitionPos pos;
    std::optional<Key> ck;  // nullopt: the partition's header (deletion, statics, ranges)
  };

  ClusterInfo info;
  mutable std::mutex mu;
  Catalog keyspaces;
  std::vector<std::map<Bytes, Prepared>> prepared_by_node;  // one map when not per node
  std::vector<bool> up;                                     // per node (fault admin)
  std::vector<std::pair<int64_t, std::size_t>> ring;        // (token, node), sorted
  Bytes schema_version;
  uint64_t schema_generation = 0;
  std::unique_ptr<Journal> journal;
  bool replaying = false;
  std::vector<Touch> touched;
  std::vector<std::pair<std::string, std::string>> ddl_log;  // keyspace, statement

  explicit State(ClusterInfo i) : info(std::move(i)) {
    prepared_by_node.resize(info.prepared_per_node ? info.nodes.size() : 1);
    up.assign(info.nodes.size(), true);
    for (std::size_t n = 0; n < info.nodes.size(); ++n)
      for (const auto& t : info.nodes[n].tokens) ring.emplace_back(std::stoll(t), n);
    std::sort(ring.begin(), ring.end());
    create_system_traces();
    bump_schema();
  }

  std::map<Bytes, Prepared>& prepared(std::size_t node) {
    return prepared_by_node[info.prepared_per_node ? node : 0];
  }

  void bump_schema() {
    ++schema_generation;
    schema_version =
        uuid_from_seed("schema " + info.name + " " + std::to_string(schema_generation));
  }

  // system_traces as Cassandra 4 defines it: real tables, readable, written by tracing only.
  void create_system_traces() {
    Keyspace k;
    k.name = "system_traces";
    k.system = true;
    k.replication = {{"class", "org.apache.cassandra.locator.SimpleStrategy"},
                     {"replication_factor", "2"}};
    auto make = [&](const std::string& name, std::vector<Column> cols) {
      auto t = std::make_unique<Table>();
      t->keyspace = k.name;
      t->name = name;
      t->id = uuid_from_seed("table system_traces." + name);
      t->options["comment"] = name == "sessions" ? "tracing sessions" : "tracing events";
      for (const auto& c : cols) {
        if (c.kind == ColumnKind::kPartitionKey) ++t->pk_count;
        if (c.kind == ColumnKind::kClustering) {
          ++t->ck_count;
          t->clustering.emplace_back(c.type, false);
        }
      }
      t->columns = std::move(cols);
      k.tables.emplace(name, std::move(t));
    };
    using K = ColumnKind;
    make("sessions",
         {make_column("session_id", "uuid", K::kPartitionKey, 0),
          make_column("client", "inet", K::kRegular), make_column("command", "text", K::kRegular),
          make_column("coordinator", "inet", K::kRegular),
          make_column("coordinator_port", "int", K::kRegular),
          make_column("duration", "int", K::kRegular),
          make_column("parameters", "map<text, text>", K::kRegular),
          make_column("request", "text", K::kRegular),
          make_column("started_at", "timestamp", K::kRegular)});
    make("events",
         {make_column("session_id", "uuid", K::kPartitionKey, 0),
          make_column("event_id", "timeuuid", K::kClustering, 0),
          make_column("activity", "text", K::kRegular), make_column("source", "inet", K::kRegular),
          make_column("source_elapsed", "int", K::kRegular),
          make_column("source_port", "int", K::kRegular),
          make_column("thread", "text", K::kRegular)});
    keyspaces.emplace(k.name, std::move(k));
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

  bool all_up() const {
    return std::all_of(up.begin(), up.end(), [](bool u) { return u; });
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

  void check_alive(cql::Consistency cl, int alive, int rf) const {
    int need = required(cl, rf);
    if (alive < need) throw Unavailable{cl, need, alive};
  }

  std::size_t ring_index(int64_t token) const {
    auto it = std::lower_bound(ring.begin(), ring.end(), std::make_pair(token, std::size_t{0}));
    return it == ring.end() ? 0 : static_cast<std::size_t>(it - ring.begin());
  }

  // The partition at `token` must have enough live replicas for the request's consistency.
  void require_replicas(const Ctx& c, const Table& t, int64_t token) const {
    if (ring.empty() || all_up() || is_virtual_keyspace(t.keyspace)) return;
    int rf = replication_factor(t.keyspace);
    check_alive(c.cl, alive_replicas(ring_index(token), rf), rf);
  }

  // A scan over tokens (lo, hi] reads every range that overlaps it.
  void require_range(const Ctx& c, const Table& t, int64_t lo, int64_t hi) const {
    if (ring.empty() || all_up() || is_virtual_keyspace(t.keyspace)) return;
    int rf = replication_factor(t.keyspace);
    for (std::size_t i = 0; i < ring.size(); ++i) {
      int64_t end = ring[i].first;
      int64_t start = i == 0 ? ring.back().first : ring[i - 1].first;
      bool overlaps = i == 0 ? (lo < end || hi > start) : (start < hi && end > lo);
      if (overlaps) check_alive(c.cl, alive_replicas(i, rf), rf);
    }
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

  // A table a statement may write.
  Table& table(const QualifiedName& q, const Session& s) {
    std::string ks = keyspace_of(q, s);
    if (is_virtual_keyspace(ks)) throw InvalidRequest(ks + " keyspace is not user-modifiable.");
    Keyspace& k = keyspace(ks);
    if (k.system) throw InvalidRequest(ks + " keyspace is not user-modifiable.");
    auto it = k.tables.find(q.name);
    if (it == k.tables.end()) throw InvalidRequest("unconfigured table " + q.name);
    return *it->second;
  }

  // A table a SELECT may read: a stored one, or a system table built for `node` into `holder`.
  const Table& readable(const QualifiedName& q, const Session& s, std::size_t node,
                        std::unique_ptr<Table>& holder) {
    std::string ks = keyspace_of(q, s);
    if (is_virtual_keyspace(ks)) {
      holder = system_table(info, keyspaces, schema_version, ks, q.name, node);
      if (!holder) throw InvalidRequest("unconfigured table " + q.name);
      return *holder;
    }
    Keyspace& k = keyspace(ks);
    auto it = k.tables.find(q.name);
    if (it == k.tables.end()) throw InvalidRequest("unconfigured table " + q.name);
    return *it->second;
  }

  // ---- DDL ----

  ResultMsg create_keyspace(const CreateKeyspace& c, std::optional<cql::SchemaChange>& event) {
    if (is_virtual_keyspace(c.name) || keyspaces.contains(c.name)) {
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
    return ResultMsg{*event};
  }

  ResultMsg create_table(const CreateTable& c, const Session& s,
                         std::optional<cql::SchemaChange>& event) {
    std::string ks = keyspace_of(c.table, s);
    if (is_virtual_keyspace(ks)) throw InvalidRequest(ks + " keyspace is not user-modifiable.");
    Keyspace& k = keyspace(ks);
    if (k.system) throw InvalidRequest(ks + " keyspace is not user-modifiable.");
    if (k.tables.contains(c.table.name)) {
      if (c.if_not_exists) return void_result();
      throw AlreadyExists{
          "Cannot add already existing table \"" + c.table.name + "\" to keyspace \"" + ks + "\"",
          ks, c.table.name};
    }
    if (c.partition_key.empty())
      throw InvalidRequest("No PRIMARY KEY specifed (exactly one required)");
    std::map<std::string, ColumnDef> defs;
    for (const auto& d : c.columns) {
      if (defs.contains(d.name))
        throw InvalidRequest("Multiple definition of identifier " + d.name);
      defs.emplace(d.name, d);
    }
    auto table = std::make_unique<Table>();
    table->keyspace = ks;
    table->name = c.table.name;
    table->id = uuid_from_seed("table " + ks + "." + c.table.name + " " +
                               std::to_string(schema_generation));
    std::set<std::string> used;
    auto column_of = [&](const ColumnDef& d, ColumnKind kind, int position) {
      try {
        return make_column(d.name, d.type, kind, position);
      } catch (const std::invalid_argument&) {
        throw InvalidRequest("Unknown type " + ks + "." + d.type);
      }
    };
    auto take = [&](const std::string& name, ColumnKind kind, int position) {
      auto it = defs.find(name);
      if (it == defs.end())
        throw InvalidRequest("Unknown definition " + name + " referenced in PRIMARY KEY");
      if (!used.insert(name).second)
        throw InvalidRequest("Multiple definition of identifier " + name);
      Column column = column_of(it->second, kind, position);
      if (column.type.id == TypeId::kCounter)
        throw InvalidRequest("counter type is not supported for PRIMARY KEY column '" + name + "'");
      if (kind == ColumnKind::kClustering) {
        auto o = c.clustering_order.find(name);
        column.order = o == c.clustering_order.end() ? "asc" : o->second;
        table->clustering.emplace_back(column.type, column.order == "desc");
      }
      table->columns.push_back(column);
    };
    for (std::size_t i = 0; i < c.partition_key.size(); ++i)
      take(c.partition_key[i], ColumnKind::kPartitionKey, static_cast<int>(i));
    for (std::size_t i = 0; i < c.clustering_key.size(); ++i)
      take(c.clustering_key[i], ColumnKind::kClustering, static_cast<int>(i));
    table->pk_count = c.partition_key.size();
    table->ck_count = c.clustering_key.size();
    int counters = 0, others = 0;
    // SELECT * order, as Cassandra's allColumnsInSelectOrder: key columns, then the static
    // columns, then the regular ones, each by name.
    std::vector<const ColumnDef*> rest;
    for (bool statics : {true, false})
      for (const auto& [name, d] : defs)
        if (!used.contains(name) && d.is_static == statics) rest.push_back(&d);
    for (const ColumnDef* dp : rest) {
      const ColumnDef& d = *dp;
      Column column = column_of(d, d.is_static ? ColumnKind::kStatic : ColumnKind::kRegular, -1);
      if (d.is_static && table->ck_count == 0)
        throw InvalidRequest(
            "Static columns are only useful (and thus allowed) if the table has "
            "at least one clustering column");
      (column.type.id == TypeId::kCounter ? counters : others)++;
      table->columns.push_back(std::move(column));
    }
    if (counters > 0 && others > 0)
      throw InvalidRequest("Cannot mix counter and non counter columns in the same table");
    table->counter = counters > 0;
    set_options(*table, c.options);
    k.tables.emplace(c.table.name, std::move(table));
    bump_schema();
    event = cql::SchemaChange{"CREATED", "TABLE", ks, c.table.name, {}};
    return ResultMsg{*event};
  }

  // WITH options: the ones that change behaviour (default_time_to_live) or show (comment);
  // the others (compaction, caching, ...) are accepted, as they change nothing here.
  static void set_options(Table& t, const std::map<std::string, Term>& options) {
    for (const auto& [name, term] : options) {
      if (name == "default_time_to_live") {
        int64_t ttl = -1;
        if (term.kind == Term::Kind::kInteger) ttl = std::strtoll(term.text.c_str(), nullptr, 10);
        if (ttl < 0 || ttl > kMaxTtl)
          throw InvalidRequest("Invalid value for default_time_to_live: " + term.text);
        if (t.counter && ttl != 0)
          throw InvalidRequest("Cannot set default_time_to_live on a table with counters");
        t.default_ttl = static_cast<int32_t>(ttl);
      } else if (name == "comment") {
        t.options["comment"] = term.text;
      }
    }
  }

  // Inserts or removes slot `at` (a non-key column's position) in every row of `t`.
  static void reshape_rows(Table& t, std::size_t at, bool insert) {
    auto reshape = [&](RowData& row) {
      auto pos = row.slots.begin() + static_cast<std::ptrdiff_t>(at - t.key_size());
      if (insert) {
        row.slots.insert(pos, Slot{});
      } else {
        row.slots.erase(pos);
      }
    };
    for (auto& [pos, p] : t.partitions) {
      reshape(p.statics);
      for (auto& [ck, row] : p.rows) reshape(row);
    }
  }

  ResultMsg alter_table(const AlterTable& a, const Session& s,
                        std::optional<cql::SchemaChange>& event) {
    Table& t = table(a.table, s);
    for (const auto& d : a.add) {
      if (t.index(d.name) >= 0)
        throw InvalidRequest("Column with name '" + d.name + "' already exists");
      Column column;
      try {
        column =
            make_column(d.name, d.type, d.is_static ? ColumnKind::kStatic : ColumnKind::kRegular);
      } catch (const std::invalid_argument&) {
        throw InvalidRequest("Unknown type " + t.keyspace + "." + d.type);
      }
      if (d.is_static && t.ck_count == 0)
        throw InvalidRequest(
            "Static columns are only useful (and thus allowed) if the table has "
            "at least one clustering column");
      bool is_counter = column.type.id == TypeId::kCounter;
      if (is_counter && !t.counter && t.slot_count() > 0)
        throw InvalidRequest("Cannot add a counter column (" + d.name +
                             ") in a non counter column family");
      if (!is_counter && t.counter)
        throw InvalidRequest("Cannot add a non counter column (" + d.name +
                             ") in a counter column family");
      // SELECT * order: statics, then regulars, each by name.
      auto sorts_before = [&](const Column& c) {
        bool c_static = c.kind == ColumnKind::kStatic;
        return c_static != d.is_static ? c_static : c.name < d.name;
      };
      std::size_t at = t.key_size();
      while (at < t.columns.size() && sorts_before(t.columns[at])) ++at;
      t.columns.insert(t.columns.begin() + static_cast<std::ptrdiff_t>(at), column);
      reshape_rows(t, at, true);
      t.counter = t.counter || is_counter;
    }
    for (const auto& name : a.drop) {
      int idx = t.index(name);
      if (idx < 0) throw InvalidRequest("Column " + name + " was not found in table " + t.name);
      if (static_cast<std::size_t>(idx) < t.key_size())
        throw InvalidRequest("Cannot drop PRIMARY KEY column " + name);
      reshape_rows(t, static_cast<std::size_t>(idx), false);
      t.columns.erase(t.columns.begin() + idx);
    }
    set_options(t, a.options);
    bump_schema();
    event = cql::SchemaChange{"UPDATED", "TABLE", t.keyspace, t.name, {}};
    return ResultMsg{*event};
  }

  ResultMsg drop_keyspace(const DropKeyspace& d, std::optional<cql::SchemaChange>& event) {
    auto it = keyspaces.find(d.name);
    if (is_virtual_keyspace(d.name) || (it != keyspaces.end() && it->second.system))
      throw InvalidRequest(d.name + " keyspace is not user-modifiable.");
    if (it == keyspaces.end()) {
      if (d.if_exists) return void_result();
      throw InvalidRequest("Cannot drop non existing keyspace '" + d.name + "'.");
    }
    keyspaces.erase(it);
    bump_schema();
    event = cql::SchemaChange{"DROPPED", "KEYSPACE", d.name, "", {}};
    return ResultMsg{*event};
  }

  ResultMsg drop_table(const DropTable& d, const Session& s,
                       std::optional<cql::SchemaChange>& event) {
    std::string ks = keyspace_of(d.table, s);
    auto it = keyspaces.find(ks);
    if (it != keyspaces.end() && it->second.system)
      throw InvalidRequest(ks + " keyspace is not user-modifiable.");
    if (it == keyspaces.end() || !it->second.tables.contains(d.table.name)) {
      if (d.if_exists) return void_result();
      if (it == keyspaces.end()) throw InvalidRequest("Keyspace " + ks + " does not exist");
      throw InvalidRequest("unconfigured table " + d.table.name);
    }
    it->second.tables.erase(d.table.name);
    touched.clear();  // DDL runs alone: nothing of this request refers to the table
    bump_schema();
    event = cql::SchemaChange{"DROPPED", "TABLE", ks, d.table.name, {}};
    return ResultMsg{*event};
  }

  // ---- writes ----

  // A conditional write (`cas`) is stamped with its Paxos ballot's time, as Cassandra's: the
  // client's default timestamp does not apply (USING TIMESTAMP is refused before this).
  WriteTime write_time(const Using& u, const Table& t, const Ctx& c, const Binds& binds,
                       bool cas = false) {
    WriteTime wt;
    wt.now = c.now;
    std::optional<int64_t> ts;
    if (u.timestamp) ts = eval_number(*u.timestamp, binds, "timestamp", TypeId::kBigint);
    if (cas) {
      wt.ts = c.cas_ts ? *c.cas_ts : next_write_timestamp();
    } else {
      wt.ts = ts ? *ts : (c.default_ts ? *c.default_ts : next_write_timestamp());
    }
    wt.ttl = t.default_ttl;
    if (u.ttl) {
      if (auto ttl = eval_number(*u.ttl, binds, "ttl", TypeId::kInt)) {
        if (*ttl < 0)
          throw InvalidRequest("A TTL must be greater or equal to 0, but was " +
                               std::to_string(*ttl));
        if (*ttl > kMaxTtl)
          throw InvalidRequest("ttl is too large. requested (" + std::to_string(*ttl) +
                               ") maximum (" + std::to_string(kMaxTtl) + ")");
        wt.ttl = static_cast<int32_t>(*ttl);
      }
    }
    return wt;
  }

  void touch(Table& t, const PartitionPos& pos, std::optional<Key> ck) {
    if (journal && !replaying) touched.push_back(Touch{&t, pos, std::move(ck)});
  }

  // The keys an UPDATE or DELETE names: partitions (= / IN on every partition key column),
  // clustering keys (= / IN on a prefix of the clustering columns) and, for DELETE, a slice on
  // the next clustering column.
  struct ModKeys {
    std::vector<std::vector<Bytes>> pks;
    std::vector<Key> cks{Key{}};
    bool ck_full = false;
    bool in = false;  // some key column restricted by IN
    std::optional<RangeTombstone> slice;
  };

  ModKeys mod_keys(const Table& t, const std::vector<Relation>& where, const Binds& binds,
                   const char* statement) {
    ModKeys mk;
    std::vector<const Relation*> by_col(t.key_size(), nullptr);
    std::vector<std::vector<const Relation*>> slices(t.key_size());
    for (const auto& r : where) {
      if (r.is_token())
        throw InvalidRequest(
            std::string("The token function cannot be used in WHERE clauses for ") + statement +
            " statements");
      int idx = t.index(r.column);
      if (idx < 0) throw InvalidRequest("Undefined column name " + r.column);
      if (static_cast<std::size_t>(idx) >= t.key_size())
        throw InvalidRequest("Non PRIMARY KEY columns found in where clause: " + r.column);
      auto i = static_cast<std::size_t>(idx);
      if (r.op == Relation::Op::kEq || r.op == Relation::Op::kIn) {
        by_col[i] = &r;
        mk.in = mk.in || r.op == Relation::Op::kIn;
      } else if (r.op == Relation::Op::kLt || r.op == Relation::Op::kLe ||
                 r.op == Relation::Op::kGt || r.op == Relation::Op::kGe) {
        if (i < t.pk_count)
          throw InvalidRequest(
              "Only EQ and IN relation are supported on the partition key "
              "(unless you use the token() function)");
        slices[i].push_back(&r);
      } else {
        throw InvalidRequest(std::string("Unsupported \"") + op_text(r.op) +
                             "\" relation: " + r.column + " " + op_text(r.op) + " ...");
      }
    }
    std::vector<std::vector<Bytes>> pks{{}};
    for (std::size_t i = 0; i < t.pk_count; ++i) {
      if (!by_col[i])
        throw InvalidRequest("Some partition key parts are missing: " + t.columns[i].name);
      std::vector<std::vector<Bytes>> next;
      for (const auto& v : eval_values(*by_col[i], t.columns[i], binds))
        for (const auto& k : pks) {
          auto nk = k;
          nk.push_back(v);
          next.push_back(std::move(nk));
        }
      pks = std::move(next);
    }
    for (const auto& pk : pks)
      if (t.pk_count == 1 && pk[0].empty()) throw InvalidRequest("Key may not be empty");
    mk.pks = std::move(pks);
    std::size_t i = t.pk_count;
    for (; i < t.key_size() && by_col[i]; ++i) {
      std::vector<Key> next;
      for (const auto& v : eval_values(*by_col[i], t.columns[i], binds))
        for (const auto& k : mk.cks) {
          Key nk = k;
          nk.push_back(v);
          next.push_back(std::move(nk));
        }
      mk.cks = std::move(next);
    }
    mk.ck_full = i == t.key_size();
    if (i < t.key_size() && !slices[i].empty()) {
      if (std::string(statement) != "DELETE")
        throw InvalidRequest("Slice restrictions are not supported on the clustering columns in " +
                             std::string(statement) + " statements");
      RangeTombstone r;
      const Key& prefix = mk.cks.front();
      r.from = r.to = prefix;
      for (const Relation* rel : slices[i]) {
        Bytes v = eval_required(rel->terms.at(0), t.columns[i], binds);
        bool desc = t.columns[i].order == "desc";
        bool lower = (rel->op == Relation::Op::kGt || rel->op == Relation::Op::kGe) != desc;
        bool inclusive = rel->op == Relation::Op::kGe || rel->op == Relation::Op::kLe;
        Key& bound = lower ? r.from : r.to;
        bound = prefix;
        bound.push_back(std::move(v));
        (lower ? r.from_inclusive : r.to_inclusive) = inclusive;
      }
      if (mk.cks.size() != 1)
        throw InvalidRequest("IN restrictions are not supported with range deletions");
      mk.slice = std::move(r);
      ++i;
    }
    for (std::size_t j = i; j < t.key_size(); ++j) {
      if (by_col[j] || !slices[j].empty()) {
        std::size_t gap = i < t.key_size() ? i : j;
        throw InvalidRequest("PRIMARY KEY column \"" + t.columns[j].name +
                             "\" cannot be restricted as preceding column \"" +
                             t.columns[gap].name + "\" is not restricted");
      }
    }
    return mk;
  }

  // ---- lightweight transactions ----

  cql::RowsResult applied_result(const Table& t, bool applied) {
    cql::RowsResult r;
    r.metadata.columns.push_back(
        ColumnSpec{t.keyspace, t.name, "[applied]", DataType::of(TypeId::kBoolean)});
    r.metadata.column_count = 1;
    r.rows.push_back(Row{be_int(applied ? 1 : 0, 1)});
    return r;
  }

  // The current row `pk`/`ck` as a conditional statement reads it.
  struct Current {
    const PartitionData* p = nullptr;
    const RowData* row = nullptr;
    RowView view;
    bool exists = false;
  };

  Current current(const Table& t, const std::vector<Bytes>& pk, const Key& ck, int32_t now) {
    Current c;
    c.view.t = &t;
    c.view.now = now;
    PartitionPos pos = Table::position_of(pk);
    c.view.token = pos.token;
    auto pit = t.find(pos);
    if (pit == t.partitions.end()) return c;
    c.p = &pit->second;
    c.view.p = c.p;
    c.view.ck = &ck;
    auto rit = c.p->rows.find(ck);
    if (rit != c.p->rows.end()) {
      c.row = &rit->second;
      c.view.row = c.row;
      c.view.deleted = shadowing(t, *c.p, ck, *c.row);
      c.exists = row_live(t, *c.row, c.view.deleted, now);
    }
    return c;
  }

  // The value a condition's `col[element]` designates.
  Cell condition_value(const Condition& cond, const Column& col, int idx, const Current& cur,
                       const Binds& binds, DataType& type) {
    type = col.type;
    if (!cur.p) return std::nullopt;
    Cell whole = cur.view.value(static_cast<std::size_t>(idx));
    if (!cond.element) return whole;
    if (!whole) return std::nullopt;
    auto elems = collection_elements(*whole);
    if (col.type.id == TypeId::kMap) {
      Column key_col = col;
      key_col.type = col.type.params[0];
      Bytes key = eval_required(*cond.element, key_col, binds);
      type = col.type.params[1];
      for (std::size_t i = 0; i + 1 < elems.size(); i += 2)
        if (compare_values(elems[i], key, col.type.params[0]) == 0) return elems[i + 1];
      return std::nullopt;
    }
    if (col.type.id == TypeId::kList) {
      Column idx_col = col;
      idx_col.type = DataType::of(TypeId::kInt);
      Bytes index = eval_required(*cond.element, idx_col, binds);
      type = col.type.params[0];
      int64_t i = read_be(index);
      if (i >= 0 && static_cast<std::size_t>(i) < elems.size())
        return elems[static_cast<std::size_t>(i)];
      return std::nullopt;
    }
    throw InvalidRequest("Invalid element access syntax for set column " + col.name);
  }

  // Checks IF EXISTS / IF NOT EXISTS / IF conditions; the RESULT when they do not apply.
  std::optional<cql::RowsResult> check_conditions(const Table& t, const std::vector<Bytes>& pk,
                                                  const Key& ck, bool if_exists, bool if_not_exists,
                                                  const std::vector<Condition>& conds,
                                                  const Binds& binds, int32_t now) {
    Current cur = current(t, pk, ck, now);
    if (if_exists) {
      if (cur.exists) return std::nullopt;
      return applied_result(t, false);
    }
    if (if_not_exists) {
      if (!cur.exists) return std::nullopt;
      cql::RowsResult r = applied_result(t, false);
      for (std::size_t i = 0; i < t.columns.size(); ++i) {
        r.metadata.columns.push_back(
            ColumnSpec{t.keyspace, t.name, t.columns[i].name, t.columns[i].type});
        r.rows[0].push_back(cur.view.value(i));
      }
      r.metadata.column_count = static_cast<int32_t>(r.metadata.columns.size());
      return r;
    }
    bool applied = true;
    std::vector<int> shown;
    for (const auto& cond : conds) {
      int idx = t.index(cond.column);
      if (idx < 0) throw InvalidRequest("Undefined column name " + cond.column);
      if (static_cast<std::size_t>(idx) < t.key_size())
        throw InvalidRequest("PRIMARY KEY column '" + cond.column + "' cannot have IF conditions");
      const Column& col = t.columns[static_cast<std::size_t>(idx)];
      if (std::find(shown.begin(), shown.end(), idx) == shown.end()) shown.push_back(idx);
      DataType type;
      Cell have = condition_value(cond, col, idx, cur, binds, type);
      bool ok = false;
      if (cond.op == Relation::Op::kIn) {
        for (const auto& term : cond.terms) {
          auto v = eval(term, type, col.name, binds);
          Cell want = v ? *v : Cell{};
          if (compare_cells(have, want, type) == 0) ok = true;
        }
      } else {
        auto v = eval(cond.terms.at(0), type, col.name, binds);
        Cell want = v ? *v : Cell{};
        if (cond.op == Relation::Op::kEq || cond.op == Relation::Op::kNeq) {
          ok = compare_op(compare_cells(have, want, type), cond.op);
        } else {
          if (!want)
            throw InvalidRequest(std::string("Invalid comparison with null for operator \"") +
                                 op_text(cond.op) + "\"");
          ok = have && compare_op(compare_values(*have, *want, type), cond.op);
        }
      }
      applied = applied && ok;
    }
    if (applied) return std::nullopt;
    cql::RowsResult r = applied_result(t, false);
    if (!cur.exists) return r;
    for (int idx : shown) {
      const Column& col = t.columns[static_cast<std::size_t>(idx)];
      r.metadata.columns.push_back(ColumnSpec{t.keyspace, t.name, col.name, col.type});
      r.rows[0].push_back(cur.view.value(static_cast<std::size_t>(idx)));
    }
    r.metadata.column_count = static_cast<int32_t>(r.metadata.columns.size());
    return r;
  }

  void lwt_checks(const Table& t, const Using& u, const ModKeys* mk) {
    if (u.timestamp)
      throw InvalidRequest("Cannot provide custom timestamp for conditional updates");
    if (t.counter) throw InvalidRequest("Conditional updates are not supported on counter tables");
    if (mk && mk->in) {
      if (mk->pks.size() > 1)
        throw InvalidRequest("IN on the partition key is not supported with conditional updates");
      throw InvalidRequest(
          "IN on the clustering key columns is not supported with conditional "
          "updates");
    }
  }

  // ---- INSERT ----

  // Writes a non-key column's value (a whole value: INSERT, or UPDATE's `c = v`).
  void set_column(Table& t, RowData& row, std::size_t idx, const Cell& value, const WriteTime& wt) {
    const Column& col = t.columns[idx];
    Slot& slot = t.slot(row, idx);
    if (!col.multi_cell) {
      write_cell(slot.cell, value, wt);
      return;
    }
    if (!value) {
      delete_collection(slot, col, wt.ts);
      return;
    }
    write_collection(slot, col, collection_pairs(col, *value), wt, true);
  }

  // A serialized collection value as stored elements (key, value).
  static std::vector<std::pair<Bytes, Bytes>> collection_pairs(const Column& col, const Bytes& v) {
    std::vector<std::pair<Bytes, Bytes>> out;
    auto elems = collection_elements(v);
    switch (col.type.id) {
      case TypeId::kList:
        for (auto& e : elems) out.emplace_back(list_key(false), std::move(e));
        break;
      case TypeId::kSet:
        for (auto& e : elems) out.emplace_back(std::move(e), Bytes{});
        break;
      default:
        for (std::size_t i = 0; i + 1 < elems.size(); i += 2)
          out.emplace_back(std::move(elems[i]), std::move(elems[i + 1]));
    }
    return out;
  }

  ResultMsg insert(const Insert& ins, Ctx& c, const Binds& binds) {
    Table& t = table(ins.table, c.session);
    if (t.counter)
      throw InvalidRequest(
          "INSERT statements are not allowed on counter tables, use UPDATE "
          "instead");
    std::vector<Bytes> pk(t.pk_count);
    Key ck(t.ck_count);
    std::vector<bool> have(t.key_size(), false);
    std::vector<std::pair<std::size_t, std::optional<Cell>>> sets;
    bool regular = false;
    for (std::size_t i = 0; i < ins.columns.size(); ++i) {
      int idx = t.index(ins.columns[i]);
      if (idx < 0) throw InvalidRequest("Undefined column name " + ins.columns[i]);
      auto ui = static_cast<std::size_t>(idx);
      const Column& col = t.columns[ui];
      for (std::size_t j = 0; j < i; ++j)
        if (ins.columns[j] == ins.columns[i])
          throw InvalidRequest("Multiple definitions found for column " + col.name);
      if (ui < t.key_size()) {
        Bytes v = eval_required(ins.values[i], col, binds);
        (ui < t.pk_count ? pk[ui] : ck[ui - t.pk_count]) = std::move(v);
        have[ui] = true;
      } else {
        sets.emplace_back(ui, eval(ins.values[i], col.type, col.name, binds));
        regular = regular || col.kind != ColumnKind::kStatic;
      }
    }
    for (std::size_t i = 0; i < t.pk_count; ++i)
      if (!have[i])
        throw InvalidRequest("Some partition key parts are missing: " + t.columns[i].name);
    if (t.pk_count == 1 && pk[0].empty()) throw InvalidRequest("Key may not be empty");
    bool statics_only = !sets.empty() && !regular && !have[t.pk_count];
    for (std::size_t i = t.pk_count; i < t.key_size() && !statics_only; ++i)
      if (!have[i]) throw InvalidRequest("Some clustering keys are missing: " + t.columns[i].name);
    if (ins.if_not_exists) lwt_checks(t, ins.using_, nullptr);
    WriteTime wt = write_time(ins.using_, t, c, binds, ins.if_not_exists);
    PartitionPos pos = Table::position_of(pk);
    require_replicas(c, t, pos.token);
    if (ins.if_not_exists && !c.cas_checked) {
      if (auto r = check_conditions(t, pk, ck, false, true, {}, binds, c.now)) return ResultMsg{*r};
    }
    PartitionData& p = t.partition(pk);
    RowData* row = nullptr;
    if (!statics_only) {
      row = &t.row(p, ck);
      write_marker(*row, wt);
      touch(t, pos, ck);
    }
    for (auto& [idx, v] : sets) {
      if (!v) continue;  // unset: left alone
      bool is_static = t.columns[idx].kind == ColumnKind::kStatic;
      set_column(t, is_static ? p.statics : *row, idx, *v, wt);
      if (is_static) touch(t, pos, std::nullopt);
    }
    if (ins.if_not_exists) return ResultMsg{applied_result(t, true)};
    return void_result();
  }

  // ---- UPDATE ----

  // The n-th live element key of a list (`l[n]`).
  Bytes list_element_key(const Table& t, const RowData& row, std::size_t idx, int64_t deleted,
                         int64_t n, int32_t now) {
    auto elems = live_elements(t, idx, row, deleted, now);
    if (elems.empty()) throw InvalidRequest("Attempted to set an element on a list which is null");
    if (n < 0 || static_cast<std::size_t>(n) >= elems.size())
      throw InvalidRequest("List index " + std::to_string(n) + " out of bound, list has size " +
                           std::to_string(elems.size()));
    return elems[static_cast<std::size_t>(n)].first;
  }

  void apply_assignment(Table& t, PartitionData& p, const Key& ck, RowData& row,
                        const Assignment& a, std::size_t idx, const WriteTime& wt,
                        const Binds& binds) {
    const Column& col = t.columns[idx];
    Slot& slot = t.slot(row, idx);
    auto bad = [&](const char* what) {
      throw InvalidRequest(std::string("Invalid operation (") + col.name + " = " +
                           (a.kind == Assignment::Kind::kPrepend ? "? + " + col.name
                                                                 : col.name + " " + what + " ?") +
                           ") for non " + (col.type.id == TypeId::kList ? "list" : "counter") +
                           " column " + col.name);
    };
    bool is_collection =
        col.type.id == TypeId::kList || col.type.id == TypeId::kSet || col.type.id == TypeId::kMap;
    switch (a.kind) {
      case Assignment::Kind::kSet: {
        if (col.type.id == TypeId::kCounter)
          throw InvalidRequest("Cannot set the value of counter column " + col.name +
                               " (counters can only be incremented/decremented, not set)");
        auto v = eval(a.value, col.type, col.name, binds);
        if (v) set_column(t, row, idx, *v, wt);
        return;
      }
      case Assignment::Kind::kAdd:
      case Assignment::Kind::kSubtract: {
        bool add = a.kind == Assignment::Kind::kAdd;
        if (col.type.id == TypeId::kCounter) {
          auto v = eval(a.value, DataType::of(TypeId::kBigint), col.name, binds);
          if (!v) return;
          if (!*v) throw InvalidRequest("Invalid null value for counter increment");
          int64_t delta = read_be(**v);
          add_counter(slot.cell, add ? delta : -delta, wt);
          return;
        }
        if (!is_collection) bad(add ? "+" : "-");
        if (!col.multi_cell)
          throw InvalidRequest("Invalid operation (" + col.name + " = " + col.name +
                               (add ? " + " : " - ") + "?) for frozen collection column " +
                               col.name);
        DataType vt = col.type;
        if (!add && col.type.id == TypeId::kMap) {  // m - {keys}
          vt.id = TypeId::kSet;
          vt.params = {col.type.params[0]};
        }
        auto v = eval(a.value, vt, col.name, binds);
        if (!v || !*v) return;
        auto elems = collection_elements(**v);
        if (add) {
          write_collection(slot, col, collection_pairs(col, **v), wt, false);
          return;
        }
        int64_t deleted = shadowing(t, p, ck, row);
        if (col.type.id == TypeId::kList) {
          for (const auto& [key, value] : live_elements(t, idx, row, deleted, wt.now))
            for (const auto& e : elems)
              if (compare_values(value, e, col.type.params[0]) == 0)
                delete_element(slot, col, key, wt);
        } else {
          for (const auto& e : elems) delete_element(slot, col, e, wt);
        }
        return;
      }
      case Assignment::Kind::kPrepend: {
        if (col.type.id != TypeId::kList) bad("+");
        auto v = eval(a.value, col.type, col.name, binds);
        if (!v || !*v) return;
        auto elems = collection_elements(**v);
        std::vector<std::pair<Bytes, Bytes>> pairs;
        for (auto it = elems.rbegin(); it != elems.rend(); ++it)
          pairs.emplace_back(list_key(true), std::move(*it));
        write_collection(slot, col, pairs, wt, false);
        return;
      }
      case Assignment::Kind::kSetElement: {
        if (col.type.id == TypeId::kMap) {
          Column key_col = col;
          key_col.type = col.type.params[0];
          Bytes key = eval_required(*a.key, key_col, binds);
          auto v = eval(a.value, col.type.params[1], col.name, binds);
          if (!v) return;
          if (!*v) {
            delete_element(slot, col, key, wt);
          } else {
            write_collection(slot, col, {{key, **v}}, wt, false);
          }
          return;
        }
        if (col.type.id == TypeId::kList) {
          Column idx_col = col;
          idx_col.type = DataType::of(TypeId::kInt);
          int64_t n = read_be(eval_required(*a.key, idx_col, binds));
          Bytes key = list_element_key(t, row, idx, shadowing(t, p, ck, row), n, wt.now);
          auto v = eval(a.value, col.type.params[0], col.name, binds);
          if (!v) return;
          if (!*v) {
            delete_element(slot, col, key, wt);
          } else {
            write_collection(slot, col, {{key, **v}}, wt, false);
          }
          return;
        }
        throw InvalidRequest("Invalid operation (" + col.name +
                             "[?] = ?) for non list/map column " + col.name);
      }
    }
  }

  ResultMsg update(const Update& u, Ctx& c, const Binds& binds) {
    Table& t = table(u.table, c.session);
    std::vector<std::size_t> idxs;
    bool regular = false;
    for (const auto& a : u.assignments) {
      int idx = t.index(a.column);
      if (idx < 0) throw InvalidRequest("Undefined column name " + a.column);
      if (static_cast<std::size_t>(idx) < t.key_size())
        throw InvalidRequest("PRIMARY KEY part " + a.column + " found in SET part");
      idxs.push_back(static_cast<std::size_t>(idx));
      regular = regular || t.columns[static_cast<std::size_t>(idx)].kind != ColumnKind::kStatic;
    }
    if (t.counter && u.using_.timestamp)
      throw InvalidRequest("Cannot provide custom timestamp for counter updates");
    if (t.counter && u.using_.ttl)
      throw InvalidRequest("Cannot provide custom TTL for counter updates");
    ModKeys mk = mod_keys(t, u.where, binds, "UPDATE");
    if (!mk.ck_full && (regular || mk.cks.front().size() > 0))
      throw InvalidRequest("Some clustering keys are missing: " +
                           t.columns[t.pk_count + mk.cks.front().size()].name);
    bool conditional = u.if_exists || !u.conditions.empty();
    if (conditional) lwt_checks(t, u.using_, &mk);
    WriteTime wt = write_time(u.using_, t, c, binds, conditional);
    for (const auto& pk : mk.pks) require_replicas(c, t, Table::position_of(pk).token);
    if (conditional && !c.cas_checked) {
      if (auto r = check_conditions(t, mk.pks[0], mk.cks[0], u.if_exists, false, u.conditions,
                                    binds, c.now))
        return ResultMsg{*r};
    }
    for (const auto& pk : mk.pks) {
      PartitionPos pos = Table::position_of(pk);
      PartitionData& p = t.partition(pk);
      for (const auto& ck : mk.cks) {
        RowData* row = regular ? &t.row(p, ck) : nullptr;
        if (row) touch(t, pos, ck);
        for (std::size_t i = 0; i < u.assignments.size(); ++i) {
          bool is_static = t.columns[idxs[i]].kind == ColumnKind::kStatic;
          if (is_static) touch(t, pos, std::nullopt);
          apply_assignment(t, p, ck, is_static ? p.statics : *row, u.assignments[i], idxs[i], wt,
                           binds);
        }
      }
    }
    if (conditional) return ResultMsg{applied_result(t, true)};
    return void_result();
  }

  // ---- DELETE ----

  ResultMsg delete_(const Delete& d, Ctx& c, const Binds& binds) {
    Table& t = table(d.table, c.session);
    if (t.counter && d.using_.timestamp)
      throw InvalidRequest("Cannot provide custom timestamp for counter updates");
    if (d.using_.ttl) throw InvalidRequest("TTL is not supported on DELETE statements");
    ModKeys mk = mod_keys(t, d.where, binds, "DELETE");
    std::vector<std::size_t> idxs;
    bool regular = false;
    for (const auto& target : d.columns) {
      int idx = t.index(target.column);
      if (idx < 0) throw InvalidRequest("Undefined column name " + target.column);
      if (static_cast<std::size_t>(idx) < t.key_size())
        throw InvalidRequest("Invalid identifier " + target.column +
                             " for deletion (should not be a PRIMARY KEY part)");
      idxs.push_back(static_cast<std::size_t>(idx));
      regular = regular || t.columns[static_cast<std::size_t>(idx)].kind != ColumnKind::kStatic;
    }
    if (!d.columns.empty() && regular && !mk.ck_full)
      throw InvalidRequest("Some clustering keys are missing: " +
                           t.columns[t.pk_count + mk.cks.front().size()].name);
    bool conditional = d.if_exists || !d.conditions.empty();
    if (conditional) {
      lwt_checks(t, d.using_, &mk);
      if (!mk.ck_full && t.ck_count > 0)
        throw InvalidRequest(
            "DELETE statements must restrict all PRIMARY KEY columns with "
            "equality relations in order to use IF conditions");
    }
    WriteTime wt = write_time(d.using_, t, c, binds, conditional);
    for (const auto& pk : mk.pks) require_replicas(c, t, Table::position_of(pk).token);
    if (conditional && !c.cas_checked) {
      if (auto r = check_conditions(t, mk.pks[0], mk.cks[0], d.if_exists, false, d.conditions,
                                    binds, c.now))
        return ResultMsg{*r};
    }
    for (const auto& pk : mk.pks) {
      PartitionPos pos = Table::position_of(pk);
      PartitionData& p = t.partition(pk);
      if (d.columns.empty()) {
        touch(t, pos, std::nullopt);
        if (mk.slice) {
          RangeTombstone r = *mk.slice;
          r.ts = wt.ts;
          delete_range(t, p, std::move(r));
          for (const auto& [ck, row] : p.rows) touch(t, pos, ck);
        } else if (mk.cks.front().empty()) {
          delete_partition(t, p, wt.ts);
        } else if (!mk.ck_full) {
          for (const auto& prefix : mk.cks) {
            RangeTombstone r;
            r.from = r.to = prefix;
            r.ts = wt.ts;
            delete_range(t, p, std::move(r));
          }
          for (const auto& [ck, row] : p.rows) touch(t, pos, ck);
        } else {
          for (const auto& ck : mk.cks) {
            delete_row(t.row(p, ck), wt.ts);
            touch(t, pos, ck);
          }
        }
        continue;
      }
      for (const auto& ck : mk.cks) {
        RowData* row = regular ? &t.row(p, ck) : nullptr;
        if (row) touch(t, pos, ck);
        for (std::size_t i = 0; i < d.columns.size(); ++i) {
          std::size_t idx = idxs[i];
          const Column& col = t.columns[idx];
          bool is_static = col.kind == ColumnKind::kStatic;
          if (is_static) touch(t, pos, std::nullopt);
          RowData& target = is_static ? p.statics : *row;
          Slot& slot = t.slot(target, idx);
          const auto& element = d.columns[i].element;
          if (!element) {
            if (col.multi_cell) {
              delete_collection(slot, col, wt.ts);
            } else {
              write_cell(slot.cell, std::nullopt, wt);
            }
            continue;
          }
          if (!col.multi_cell)
            throw InvalidRequest("Invalid deletion operation for frozen collection column " +
                                 col.name);
          if (col.type.id == TypeId::kMap) {
            Column key_col = col;
            key_col.type = col.type.params[0];
            delete_element(slot, col, eval_required(*element, key_col, binds), wt);
          } else if (col.type.id == TypeId::kList) {
            Column idx_col = col;
            idx_col.type = DataType::of(TypeId::kInt);
            int64_t n = read_be(eval_required(*element, idx_col, binds));
            delete_element(slot, col,
                           list_element_key(t, target, idx, shadowing(t, p, ck, target), n, wt.now),
                           wt);
          } else {
            throw InvalidRequest("Invalid element access syntax for set column " + col.name);
          }
        }
      }
    }
    if (conditional) return ResultMsg{applied_result(t, true)};
    return void_result();
  }

  // ---- SELECT ----

  // What a WHERE clause selects: which partitions (all, a token range, or listed keys) and the
  // checks each row must pass.
  struct Plan {
    bool exact = false;                          // = / IN on every partition key column
    std::vector<std::vector<Bytes>> partitions;  // exact: sorted by key, distinct
    int64_t lo = INT64_MIN, hi = INT64_MAX;      // token bounds
    bool lo_incl = true, hi_incl = true;
    std::vector<Cond> filters;  // checked on every row
    bool ck_restricted = false;
    std::optional<Key> ck_exact;  // one clustering key named by = on every clustering column
    bool token_empty = false;     // token bounds that select nothing
  };

  int64_t eval_token(const Term& term, const Table& t, const Binds& binds) {
    if (term.kind == Term::Kind::kFunction && term.text == "token") {
      if (term.elems.size() != t.pk_count)
        throw InvalidRequest("Invalid number of arguments in call to function system.token: " +
                             std::to_string(t.pk_count) + " required but " +
                             std::to_string(term.elems.size()) + " provided");
      std::vector<Bytes> pk;
      for (std::size_t i = 0; i < t.pk_count; ++i)
        pk.push_back(eval_required(term.elems[i], t.columns[i], binds));
      return murmur3_token(partition_key_bytes(pk));
    }
    auto v = eval_number(term, binds, "partition key token", TypeId::kBigint);
    if (!v) throw InvalidRequest("Invalid unset value for partition key token");
    return *v;
  }

  Plan plan(const Table& t, const Select& sel, const Binds& binds) {
    Plan pl;
    bool filtering = false;  // what the query needs ALLOW FILTERING for
    std::vector<std::vector<const Relation*>> by_col(t.columns.size());
    for (const auto& r : sel.where) {
      if (r.is_token()) {
        bool ok = r.token_of.size() == t.pk_count;
        for (std::size_t i = 0; ok && i < t.pk_count; ++i) ok = r.token_of[i] == t.columns[i].name;
        if (!ok) {
          std::string names;
          for (std::size_t i = 0; i < t.pk_count; ++i) names += (i ? ", " : "") + t.columns[i].name;
          throw InvalidRequest("The token function arguments must be in the partition key order: " +
                               names);
        }
        int64_t v = eval_token(r.terms.at(0), t, binds);
        switch (r.op) {
          case Relation::Op::kEq:
            pl.lo = std::max(pl.lo, v), pl.hi = std::min(pl.hi, v);
            break;
          case Relation::Op::kGt:
          case Relation::Op::kGe:
            if (v > pl.lo || (v == pl.lo && r.op == Relation::Op::kGt)) {
              pl.lo = v;
              pl.lo_incl = r.op == Relation::Op::kGe;
            }
            break;
          case Relation::Op::kLt:
          case Relation::Op::kLe:
            if (v < pl.hi || (v == pl.hi && r.op == Relation::Op::kLt)) {
              pl.hi = v;
              pl.hi_incl = r.op == Relation::Op::kLe;
            }
            break;
          default:
            throw InvalidRequest("Unsupported operator on token()");
        }
        continue;
      }
      int idx = t.index(r.column);
      if (idx < 0) throw InvalidRequest("Undefined column name " + r.column);
      const Column& col = t.columns[static_cast<std::size_t>(idx)];
      if (r.op == Relation::Op::kNeq)
        throw InvalidRequest("Unsupported \"!=\" relation: " + r.column + " != ...");
      if (r.op == Relation::Op::kLike)
        throw InvalidRequest("LIKE restriction is only supported on properly indexed columns. " +
                             r.column + " LIKE '" + (r.terms.at(0).text) + "' is not valid.");
      if ((r.op == Relation::Op::kContains || r.op == Relation::Op::kContainsKey) &&
          !(col.type.id == TypeId::kList || col.type.id == TypeId::kSet ||
            col.type.id == TypeId::kMap))
        throw InvalidRequest("Cannot use CONTAINS on non-collection column " + col.name);
      if (r.op == Relation::Op::kContainsKey && col.type.id != TypeId::kMap)
        throw InvalidRequest("Cannot use CONTAINS KEY on non-map column " + col.name);
      by_col[static_cast<std::size_t>(idx)].push_back(&r);
    }
    if (pl.lo != INT64_MIN || pl.hi != INT64_MAX || !pl.lo_incl || !pl.hi_incl)
      pl.token_empty = pl.lo > pl.hi || (pl.lo == pl.hi && !(pl.lo_incl && pl.hi_incl));

    auto cond_of = [&](const Relation& r, std::size_t idx) {
      const Column& col = t.columns[idx];
      Cond c;
      c.column = static_cast<int>(idx);
      c.op = r.op;
      if (r.op == Relation::Op::kIn) {
        c.values = eval_values(r, col, binds);
      } else if (r.op == Relation::Op::kContains) {
        const DataType& et =
            col.type.id == TypeId::kMap ? col.type.params.at(1) : col.type.params.at(0);
        Column ec = col;
        ec.type = et;
        c.values.push_back(eval_required(r.terms.at(0), ec, binds));
      } else if (r.op == Relation::Op::kContainsKey) {
        Column ec = col;
        ec.type = col.type.params.at(0);
        c.values.push_back(eval_required(r.terms.at(0), ec, binds));
      } else {
        c.values.push_back(eval_required(r.terms.at(0), col, binds));
      }
      return c;
    };

    // Partition key: = / IN on every column names partitions; anything else filters.
    std::size_t pk_eq = 0;
    bool pk_slice = false;
    for (std::size_t i = 0; i < t.pk_count; ++i) {
      bool eq = false;
      for (const Relation* r : by_col[i]) {
        if (r->op == Relation::Op::kEq || r->op == Relation::Op::kIn) {
          eq = true;
        } else {
          pk_slice = true;
        }
      }
      if (eq) ++pk_eq;
    }
    if (pk_slice && !sel.allow_filtering)
      throw InvalidRequest(
          "Only EQ and IN relation are supported on the partition key (unless "
          "you use the token() function or allow filtering)");
    pl.exact = pk_eq == t.pk_count && !pk_slice && t.pk_count > 0;
    if (pk_eq > 0 && !pl.exact) filtering = true;
    if (pl.exact) {
      std::vector<std::vector<Bytes>> keys{{}};
      for (std::size_t i = 0; i < t.pk_count; ++i) {
        Cond c = cond_of(*by_col[i].front(), i);
        for (std::size_t j = 1; j < by_col[i].size(); ++j) {  // k = 1 AND k IN (1, 2)
          Cond more = cond_of(*by_col[i][j], i);
          std::erase_if(c.values, [&](const Bytes& v) {
            return std::none_of(more.values.begin(), more.values.end(), [&](const Bytes& m) {
              return compare_values(v, m, t.columns[i].type) == 0;
            });
          });
        }
        std::vector<std::vector<Bytes>> next;
        for (const auto& k : keys)
          for (const auto& v : c.values) {
            auto nk = k;
            nk.push_back(v);
            next.push_back(std::move(nk));
          }
        keys = std::move(next);
      }
      auto less = [&](const std::vector<Bytes>& a, const std::vector<Bytes>& b) {
        for (std::size_t i = 0; i < a.size(); ++i) {
          int c = compare_values(a[i], b[i], t.columns[i].type);
          if (c != 0) return c < 0;
        }
        return false;
      };
      std::sort(keys.begin(), keys.end(), less);
      keys.erase(
          std::unique(keys.begin(), keys.end(),
                      [&](const auto& a, const auto& b) { return !less(a, b) && !less(b, a); }),
          keys.end());
      pl.partitions = std::move(keys);
    } else {
      for (std::size_t i = 0; i < t.pk_count; ++i)
        for (const Relation* r : by_col[i]) pl.filters.push_back(cond_of(*r, i));
    }

    // Clustering columns: a prefix of = / IN, then at most one slice; anything else filters.
    bool ck_any = false;
    for (std::size_t i = t.pk_count; i < t.key_size(); ++i) ck_any = ck_any || !by_col[i].empty();
    pl.ck_restricted = ck_any;
    if (ck_any && !pl.exact) filtering = true;
    if (ck_any && pl.exact && !sel.allow_filtering) {
      std::optional<std::size_t> gap, slice;
      for (std::size_t i = t.pk_count; i < t.key_size(); ++i) {
        bool restricted = !by_col[i].empty();
        bool eq =
            restricted && std::all_of(by_col[i].begin(), by_col[i].end(), [](const Relation* r) {
              return r->op == Relation::Op::kEq || r->op == Relation::Op::kIn;
            });
        if (!restricted) {
          if (!gap) gap = i;
          continue;
        }
        if (gap)
          throw InvalidRequest("PRIMARY KEY column \"" + t.columns[i].name +
                               "\" cannot be restricted as preceding column \"" +
                               t.columns[*gap].name + "\" is not restricted");
        if (slice)
          throw InvalidRequest("Clustering column \"" + t.columns[i].name +
                               "\" cannot be restricted (preceding column \"" +
                               t.columns[*slice].name + "\" is restricted by a non-EQ relation)");
        bool contains = std::any_of(by_col[i].begin(), by_col[i].end(), [](const Relation* r) {
          return r->op == Relation::Op::kContains || r->op == Relation::Op::kContainsKey;
        });
        if (contains) filtering = true;
        if (!eq) slice = i;
      }
    }
    Key exact_ck;
    for (std::size_t i = t.pk_count; i < t.key_size(); ++i) {
      for (const Relation* r : by_col[i]) {
        Cond c = cond_of(*r, i);
        if (r->op == Relation::Op::kEq && by_col[i].size() == 1 &&
            exact_ck.size() == i - t.pk_count)
          exact_ck.push_back(c.values[0]);
        pl.filters.push_back(std::move(c));
      }
    }
    if (pl.exact && t.ck_count > 0 && exact_ck.size() == t.ck_count) pl.ck_exact = exact_ck;

    // Other columns filter, and need ALLOW FILTERING.
    for (std::size_t i = t.key_size(); i < t.columns.size(); ++i) {
      for (const Relation* r : by_col[i]) {
        filtering = true;
        pl.filters.push_back(cond_of(*r, i));
      }
    }
    if (filtering && !sel.allow_filtering) throw InvalidRequest(kNeedsFiltering);
    return pl;
  }

  struct Projection {
    std::vector<Proj> items;
    std::vector<ColumnSpec> specs;
    bool aggregate = false;
  };

  Projection project(const Select& sel, const Table& t) {
    Projection p;
    if (sel.star) {
      for (std::size_t i = 0; i < t.columns.size(); ++i) {
        Proj x;
        x.column = static_cast<int>(i);
        x.type = t.columns[i].type;
        x.name = t.columns[i].name;
        p.items.push_back(std::move(x));
      }
    } else {
      for (const auto& s : sel.selectors) {
        Proj x = compile_selector(s, t);
        if (!s.alias.empty()) x.name = s.alias;
        p.aggregate =
            p.aggregate || x.kind == Proj::Kind::kCount || x.kind == Proj::Kind::kAggregate;
        p.items.push_back(std::move(x));
      }
    }
    for (const auto& x : p.items) p.specs.push_back(ColumnSpec{t.keyspace, t.name, x.name, x.type});
    if (sel.distinct) {
      for (const auto& x : p.items) {
        if (x.kind == Proj::Kind::kColumn && static_cast<std::size_t>(x.column) >= t.pk_count &&
            t.columns[static_cast<std::size_t>(x.column)].kind != ColumnKind::kStatic)
          throw InvalidRequest(
              "SELECT DISTINCT queries must only request partition key columns "
              "and/or static columns (not " +
              x.name + ")");
      }
    }
    return p;
  }

  ResultMsg select(const Select& sel, Ctx& c, const Binds& binds) {
    if (sel.json) throw InvalidRequest("SELECT JSON is not supported by zdm-testcluster");
    std::unique_ptr<Table> holder;
    const Table& t = readable(sel.table, c.session, c.node, holder);
    int64_t limit = INT64_MAX, per_partition = INT64_MAX;
    if (sel.limit) {
      if (auto v = eval_number(*sel.limit, binds, "[limit]", TypeId::kInt)) limit = *v;
      if (limit <= 0) throw InvalidRequest("LIMIT must be strictly positive");
    }
    if (sel.per_partition_limit) {
      if (auto v =
              eval_number(*sel.per_partition_limit, binds, "[per_partition_limit]", TypeId::kInt))
        per_partition = *v;
      if (per_partition <= 0) throw InvalidRequest("PER PARTITION LIMIT must be strictly positive");
    }
    Projection proj = project(sel, t);
    Plan pl = plan(t, sel, binds);
    bool reversed = false;
    if (!sel.order_by.empty()) {
      if (!pl.exact)
        throw InvalidRequest(
            "ORDER BY is only supported when the partition key is restricted by "
            "an EQ or an IN.");
      for (std::size_t i = 0; i < sel.order_by.size(); ++i) {
        const auto& [name, desc] = sel.order_by[i];
        int idx = t.index(name);
        if (idx < 0) throw InvalidRequest("Undefined column name " + name);
        if (static_cast<std::size_t>(idx) < t.pk_count ||
            static_cast<std::size_t>(idx) >= t.key_size())
          throw InvalidRequest(
              "Order by is currently only supported on the clustered columns of "
              "the PRIMARY KEY, got " +
              name);
        bool col_desc = t.columns[static_cast<std::size_t>(idx)].order == "desc";
        if (i == 0) reversed = desc != col_desc;
        if ((desc != col_desc) != reversed) throw InvalidRequest("Unsupported order by relation");
      }
    }

    // Replicas: the partitions read, or the token ranges scanned.
    if (pl.exact) {
      for (const auto& pk : pl.partitions) require_replicas(c, t, Table::position_of(pk).token);
    } else if (!pl.token_empty) {
      require_range(c, t, pl.lo_incl && pl.lo != INT64_MIN ? pl.lo - 1 : pl.lo, pl.hi);
    }

    cql::RowsResult result;
    result.metadata.columns = proj.specs;
    result.metadata.column_count = static_cast<int32_t>(proj.specs.size());

    const cql::QueryParameters* params = c.params;
    std::optional<PagingState> resume;
    if (params && params->paging_state && !proj.aggregate)
      resume = decode_paging(*params->paging_state);
    int64_t page =
        params && params->page_size > 0 && !proj.aggregate ? params->page_size : INT64_MAX;
    int64_t returned = resume ? resume->returned : 0;
    std::vector<Aggregate> aggs(proj.items.size());
    std::optional<Row> first;
    bool more = false;
    PagingState last;

    enum class Next : uint8_t { kRow, kPartition, kStop };
    int64_t in_partition = 0;
    const PartitionPos* cur_pos = nullptr;
    // Emits one row (ck null: the static row alone); says what to do next.
    auto emit = [&](const RowView& v) -> Next {
      for (const auto& f : pl.filters)
        if (!matches(f, v)) return Next::kRow;
      if (proj.aggregate) {
        for (std::size_t i = 0; i < proj.items.size(); ++i) aggs[i].add(proj.items[i], v);
        if (!first) {
          Row r;
          for (const auto& x : proj.items) r.push_back(eval_proj(x, v));
          first = std::move(r);
        }
        return Next::kRow;
      }
      if (in_partition >= per_partition) return Next::kPartition;
      if (returned >= limit) return Next::kStop;
      if (static_cast<int64_t>(result.rows.size()) >= page) {
        more = true;
        return Next::kStop;
      }
      Row r;
      r.reserve(proj.items.size());
      for (const auto& x : proj.items) r.push_back(eval_proj(x, v));
      result.rows.push_back(std::move(r));
      ++returned;
      ++in_partition;
      last.returned = static_cast<int32_t>(returned);
      last.in_partition = static_cast<int32_t>(in_partition);
      last.partition = *cur_pos;
      last.has_row = v.ck != nullptr;
      last.ck = v.ck ? *v.ck : Key{};
      return Next::kRow;
    };

    ClusteringLess less = t.clustering_less();
    // Visits one partition's rows in query order, after the resume point; false: stop.
    auto visit = [&](const PartitionPos& pos, const PartitionData& p) -> bool {
      bool resuming = resume && resume->partition == pos;
      in_partition = resuming ? resume->in_partition : 0;
      cur_pos = &pos;
      RowView v;
      v.t = &t;
      v.p = &p;
      v.token = pos.token;
      v.now = c.now;
      if (resuming && !resume->has_row) return true;  // the static row was the last
      if (sel.distinct) {
        bool live = statics_live(t, p, c.now);
        for (auto it = p.rows.begin(); !live && it != p.rows.end(); ++it)
          live = row_live(t, it->second, shadowing(t, p, it->first, it->second), c.now);
        if (!live) return true;
        return emit(v) != Next::kStop;
      }
      bool any = false;
      auto one = [&](const Key& ck, const RowData& row) -> Next {
        v.ck = &ck;
        v.row = &row;
        v.deleted = shadowing(t, p, ck, row);
        if (!row_live(t, row, v.deleted, c.now)) return Next::kRow;
        any = true;
        return emit(v);
      };
      Next next = Next::kRow;
      if (pl.ck_exact) {
        auto it = p.rows.find(*pl.ck_exact);
        if (it != p.rows.end() && !(resuming && !less(resume->ck, it->first)))
          next = one(it->first, it->second);
      } else if (!reversed) {
        auto it = resuming ? p.rows.upper_bound(resume->ck) : p.rows.begin();
        for (; it != p.rows.end() && next == Next::kRow; ++it) next = one(it->first, it->second);
      } else {
        auto it = resuming ? p.rows.lower_bound(resume->ck) : p.rows.end();
        while (it != p.rows.begin() && next == Next::kRow) {
          --it;
          next = one(it->first, it->second);
        }
      }
      if (next == Next::kStop) return false;
      if (!any && !resuming && !pl.ck_restricted && t.ck_count > 0 && statics_live(t, p, c.now)) {
        v.ck = nullptr;
        v.row = nullptr;
        v.deleted = p.deleted_at;
        return emit(v) != Next::kStop;
      }
      return true;
    };

    if (!pl.token_empty) {
      if (pl.exact) {
        bool skipping = resume.has_value();
        for (const auto& pk : pl.partitions) {
          PartitionPos pos = Table::position_of(pk);
          if (pos.token < pl.lo || (pos.token == pl.lo && !pl.lo_incl) || pos.token > pl.hi ||
              (pos.token == pl.hi && !pl.hi_incl))
            continue;
          if (skipping) {
            if (!(pos == resume->partition)) continue;
            skipping = false;
          }
          auto it = t.find(pos);
          if (it == t.partitions.end()) continue;
          if (!visit(it->first, it->second)) break;
        }
      } else {
        auto it = t.partitions.lower_bound(PartitionPos{pl.lo, {}});
        if (resume) it = t.partitions.lower_bound(resume->partition);
        for (; it != t.partitions.end(); ++it) {
          int64_t tok = it->first.token;
          if (tok == pl.lo && !pl.lo_incl) continue;
          if (tok > pl.hi || (tok == pl.hi && !pl.hi_incl)) break;
          if (!visit(it->first, it->second)) break;
        }
      }
    }
    if (proj.aggregate) {
      Row r = first ? *first : Row(proj.items.size());
      for (std::size_t i = 0; i < proj.items.size(); ++i) {
        auto kind = proj.items[i].kind;
        if (kind == Proj::Kind::kCount || kind == Proj::Kind::kAggregate)
          r[i] = aggs[i].result(proj.items[i]);
      }
      result.rows.push_back(std::move(r));
    } else if (more) {
      result.metadata.paging_state = encode_paging(last);
    }
    return ResultMsg{std::move(result)};
  }

  // ---- BATCH ----

  struct Child {
    const Statement* st;
    std::string keyspace;
    Binds binds;
  };

  static const Using& using_of(const Statement& st) {
    if (const auto* i = std::get_if<Insert>(&st.body)) return i->using_;
    if (const auto* u = std::get_if<Update>(&st.body)) return u->using_;
    if (const auto* d = std::get_if<Delete>(&st.body)) return d->using_;
    throw InvalidRequest("Only INSERT, UPDATE and DELETE statements are allowed in a batch");
  }
  static const QualifiedName& table_of(const Statement& st) {
    if (const auto* i = std::get_if<Insert>(&st.body)) return i->table;
    if (const auto* u = std::get_if<Update>(&st.body)) return u->table;
    return std::get<Delete>(st.body).table;
  }
  static bool conditional(const Statement& st) {
    if (const auto* i = std::get_if<Insert>(&st.body)) return i->if_not_exists;
    if (const auto* u = std::get_if<Update>(&st.body))
      return u->if_exists || !u->conditions.empty();
    if (const auto* d = std::get_if<Delete>(&st.body))
      return d->if_exists || !d->conditions.empty();
    return false;
  }

  // The row a conditional batch's child writes: its table and primary key.
  struct Target {
    Table* table;
    std::vector<Bytes> pk;
    Key ck;
  };

  Target target_of(const Child& ch, Ctx& c) {
    Session s = c.session;
    if (!ch.keyspace.empty()) s.keyspace = ch.keyspace;
    Target tg{&table(table_of(*ch.st), s), {}, {}};
    Table& t = *tg.table;
    if (const auto* ins = std::get_if<Insert>(&ch.st->body)) {
      tg.pk.resize(t.pk_count);
      tg.ck.resize(t.ck_count);
      for (std::size_t i = 0; i < ins->columns.size(); ++i) {
        int idx = t.index(ins->columns[i]);
        if (idx < 0 || static_cast<std::size_t>(idx) >= t.key_size()) continue;
        auto ui = static_cast<std::size_t>(idx);
        Bytes v = eval_required(ins->values[i], t.columns[ui], ch.binds);
        (ui < t.pk_count ? tg.pk[ui] : tg.ck[ui - t.pk_count]) = std::move(v);
      }
      if (conditional(*ch.st)) lwt_checks(t, ins->using_, nullptr);
      return tg;
    }
    bool is_update = std::holds_alternative<Update>(ch.st->body);
    const auto& where =
        is_update ? std::get<Update>(ch.st->body).where : std::get<Delete>(ch.st->body).where;
    ModKeys mk = mod_keys(t, where, ch.binds, is_update ? "UPDATE" : "DELETE");
    lwt_checks(t, using_of(*ch.st), &mk);
    tg.pk = mk.pks[0];
    tg.ck = mk.cks[0];
    return tg;
  }

  // Checks one conditional child of a batch; the RESULT when it does not apply.
  std::optional<cql::RowsResult> check_child(const Child& ch, const Target& tg, Ctx& c) {
    Table& t = *tg.table;
    require_replicas(c, t, Table::position_of(tg.pk).token);
    if (const auto* ins = std::get_if<Insert>(&ch.st->body))
      return check_conditions(t, tg.pk, tg.ck, false, ins->if_not_exists, {}, ch.binds, c.now);
    if (const auto* u = std::get_if<Update>(&ch.st->body))
      return check_conditions(t, tg.pk, tg.ck, u->if_exists, false, u->conditions, ch.binds, c.now);
    const auto& d = std::get<Delete>(ch.st->body);
    return check_conditions(t, tg.pk, tg.ck, d.if_exists, false, d.conditions, ch.binds, c.now);
  }

  // A conditional batch that did not apply, as Cassandra answers it: [applied] false, then
  // the primary key and the condition columns (every column when a statement says IF EXISTS or
  // IF NOT EXISTS) of each row the conditions read that exists.
  cql::RowsResult batch_cas_failure(const std::vector<Child>& children,
                                    const std::vector<Target>& targets, int32_t now) {
    const Table& t = *targets.front().table;
    bool wildcard = false;
    std::vector<int> cols;
    for (std::size_t i = 0; i < t.key_size(); ++i) cols.push_back(static_cast<int>(i));
    for (const auto& ch : children) {
      const std::vector<Condition>* conds = nullptr;
      if (const auto* ins = std::get_if<Insert>(&ch.st->body)) {
        wildcard = wildcard || ins->if_not_exists;
      } else if (const auto* u = std::get_if<Update>(&ch.st->body)) {
        wildcard = wildcard || u->if_exists;
        conds = &u->conditions;
      } else if (const auto* d = std::get_if<Delete>(&ch.st->body)) {
        wildcard = wildcard || d->if_exists;
        conds = &d->conditions;
      }
      for (const auto& c : conds ? *conds : std::vector<Condition>{}) {
        int idx = t.index(c.column);
        if (idx >= 0 && std::find(cols.begin(), cols.end(), idx) == cols.end()) cols.push_back(idx);
      }
    }
    if (wildcard) {
      cols.clear();
      for (std::size_t i = 0; i < t.columns.size(); ++i) cols.push_back(static_cast<int>(i));
    }
    cql::RowsResult r = applied_result(t, false);
    r.rows.clear();
    for (int idx : cols) {
      const Column& c = t.columns[static_cast<std::size_t>(idx)];
      r.metadata.columns.push_back(ColumnSpec{t.keyspace, t.name, c.name, c.type});
    }
    r.metadata.column_count = static_cast<int32_t>(r.metadata.columns.size());
    std::set<Key> seen;
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (!conditional(*children[i].st) || !seen.insert(targets[i].ck).second) continue;
      Current cur = current(t, targets[i].pk, targets[i].ck, now);
      if (!cur.exists) continue;
      Row row{be_int(0, 1)};
      for (int idx : cols) row.push_back(cur.view.value(static_cast<std::size_t>(idx)));
      r.rows.push_back(std::move(row));
    }
    if (r.rows.empty()) return applied_result(t, false);
    return r;
  }

  ResultMsg run_batch(const std::vector<Child>& children, Batch::Type type,
                      const std::optional<int64_t>& batch_ts, Ctx& c) {
    bool counters = false, others = false, cas = false;
    for (const auto& ch : children) {
      Session s = c.session;
      if (!ch.keyspace.empty()) s.keyspace = ch.keyspace;
      Table& t = table(table_of(*ch.st), s);
      const Using& u = using_of(*ch.st);
      if (batch_ts && u.timestamp)
        throw InvalidRequest("Timestamp must be set either on BATCH or individual statements");
      if (type == Batch::Type::kCounter && !t.counter)
        throw InvalidRequest("Cannot include non-counter statement in a counter batch");
      if (type == Batch::Type::kLogged && t.counter)
        throw InvalidRequest("Cannot include a counter statement in a logged batch");
      (t.counter ? counters : others) = true;
      cas = cas || conditional(*ch.st);
    }
    if (counters && batch_ts)
      throw InvalidRequest("Cannot provide custom timestamp for a BATCH containing counters");
    if (counters && others)
      throw InvalidRequest("Counter and non-counter mutations cannot exist in the same batch");
    if (cas && batch_ts)
      throw InvalidRequest("Cannot provide custom timestamp for conditional BATCH");
    Ctx bc = c;
    bc.default_ts = batch_ts ? batch_ts : (c.default_ts ? c.default_ts : next_write_timestamp());
    if (cas) {
      // Every statement of a conditional batch writes one partition of one table (checked
      // before any condition is read, as Cassandra's BatchStatement does).
      std::vector<Target> targets;
      for (const auto& ch : children) {
        targets.push_back(target_of(ch, bc));
        const Target& first = targets.front();
        const Target& t = targets.back();
        if (t.table != first.table)
          throw InvalidRequest("Batch with conditions cannot span multiple tables");
        if (partition_key_bytes(t.pk) != partition_key_bytes(first.pk))
          throw InvalidRequest("Batch with conditions cannot span multiple partitions");
      }
      bool applied = true;
      for (std::size_t i = 0; i < children.size(); ++i)
        if (conditional(*children[i].st) && check_child(children[i], targets[i], bc))
          applied = false;
      if (!applied) return ResultMsg{batch_cas_failure(children, targets, bc.now)};
      bc.cas_checked = true;
      bc.cas_ts = next_write_timestamp();  // every write of a conditional batch: the ballot's
      bc.default_ts = bc.cas_ts;
    }
    ResultMsg out = void_result();
    for (const auto& ch : children) {
      Session s = c.session;
      if (!ch.keyspace.empty()) s.keyspace = ch.keyspace;
      Ctx child{s,       bc.node, bc.cl,          bc.default_ts, bc.now,
                nullptr, nullptr, bc.cas_checked, bc.cas_ts};
      ResultMsg r = run_child(*ch.st, child, ch.binds);
      if (cas && std::holds_alternative<cql::RowsResult>(r.body)) out = r;
    }
    return out;
  }

  // A child of a batch: INSERT, UPDATE or DELETE.
  ResultMsg run_child(const Statement& child, Ctx& c, const Binds& binds) {
    if (const auto* i = std::get_if<Insert>(&child.body)) return insert(*i, c, binds);
    if (const auto* u = std::get_if<Update>(&child.body)) return update(*u, c, binds);
    if (const auto* d = std::get_if<Delete>(&child.body)) return delete_(*d, c, binds);
    throw InvalidRequest("Only INSERT, UPDATE and DELETE statements are allowed in a batch");
  }

  // ---- dispatch ----

  Outcome run(const Statement& st, Ctx& c, const Binds& binds) {
    Outcome out;
    std::optional<cql::SchemaChange> event;
    binds.check();
    out.response = std::visit(
        [&](const auto& body) -> ResultMsg {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<T, CreateKeyspace>) {
            return create_keyspace(body, event);
          } else if constexpr (std::is_same_v<T, CreateTable>) {
            return create_table(body, c.session, event);
          } else if constexpr (std::is_same_v<T, AlterTable>) {
            return alter_table(body, c.session, event);
          } else if constexpr (std::is_same_v<T, DropKeyspace>) {
            return drop_keyspace(body, event);
          } else if constexpr (std::is_same_v<T, DropTable>) {
            return drop_table(body, c.session, event);
          } else if constexpr (std::is_same_v<T, Truncate>) {
            Table& t = table(body.table, c.session);
            if (!all_up())
              throw Unavailable{cql::Consistency::kAll, static_cast<int>(info.nodes.size()),
                                static_cast<int>(std::count(up.begin(), up.end(), true))};
            t.clear();
            touched.clear();
            return void_result();
          } else if constexpr (std::is_same_v<T, Use>) {
            keyspace_exists_or_throw(body.keyspace);
            c.session.keyspace = body.keyspace;
            return ResultMsg{cql::SetKeyspaceResult{body.keyspace}};
          } else if constexpr (std::is_same_v<T, Insert>) {
            return insert(body, c, binds);
          } else if constexpr (std::is_same_v<T, Update>) {
            return update(body, c, binds);
          } else if constexpr (std::is_same_v<T, Delete>) {
            return delete_(body, c, binds);
          } else if constexpr (std::is_same_v<T, Select>) {
            return select(body, c, binds);
          } else if constexpr (std::is_same_v<T, Describe>) {
            return ResultMsg{describe(body, info, keyspaces, c.session.keyspace)};
          } else {
            std::vector<Child> children;
            for (const auto& child : body.children) children.push_back(Child{&child, "", binds});
            std::optional<int64_t> ts;
            if (body.using_.timestamp)
              ts = eval_number(*body.using_.timestamp, binds, "timestamp", TypeId::kBigint);
            if (body.using_.ttl)
              throw InvalidRequest("Global TTL on the BATCH statement is not supported.");
            return run_batch(children, body.type, ts, c);
          }
        },
        st.body);
    bool ddl = std::holds_alternative<CreateKeyspace>(st.body) ||
               std::holds_alternative<CreateTable>(st.body) ||
               std::holds_alternative<AlterTable>(st.body) ||
               std::holds_alternative<DropKeyspace>(st.body) ||
               std::holds_alternative<DropTable>(st.body) ||
               std::holds_alternative<Truncate>(st.body);
    if (ddl && journal && !replaying && c.query) ddl_log.emplace_back(c.session.keyspace, *c.query);
    out.event = std::move(event);
    return out;
  }

  void keyspace_exists_or_throw(const std::string& ks) {
    if (!is_virtual_keyspace(ks) && !keyspaces.contains(ks))
      throw InvalidRequest("Keyspace '" + ks + "' does not exist");
  }

  // ---- prepared metadata ----

  void bind_specs(const Statement& st, const Session& s, cql::PreparedMetadata& meta) {
    meta.columns.assign(static_cast<std::size_t>(st.bind_count),
                        ColumnSpec{"", "", "", DataType::of(TypeId::kBlob)});
    auto set = [&](const Term& term, const ColumnSpec& spec) {
      if (term.kind == Term::Kind::kFunction) return;
      if (term.kind != Term::Kind::kBind) return;
      ColumnSpec& out = meta.columns[static_cast<std::size_t>(term.bind_index)];
      out = spec;
      if (!term.bind_name.empty()) out.name = term.bind_name;  // :name markers keep their name
    };
    auto spec = [](const Table& t, const std::string& name, const DataType& type) {
      return ColumnSpec{t.keyspace, t.name, name, type};
    };
    auto using_specs = [&](const Using& u, const Table& t) {
      if (u.ttl) set(*u.ttl, spec(t, "[ttl]", DataType::of(TypeId::kInt)));
      if (u.timestamp) set(*u.timestamp, spec(t, "[timestamp]", DataType::of(TypeId::kBigint)));
    };
    auto column = [&](const Table& t, const std::string& name) -> const Column& {
      int idx = t.index(name);
      if (idx < 0) throw InvalidRequest("Undefined column name " + name);
      return t.columns[static_cast<std::size_t>(idx)];
    };
    auto where_specs = [&](const std::vector<Relation>& where, const Table& t) {
      for (const auto& r : where) {
        if (r.is_token()) {
          const Term& term = r.terms.at(0);
          if (term.kind == Term::Kind::kFunction) {
            for (std::size_t i = 0; i < term.elems.size() && i < t.pk_count; ++i)
              set(term.elems[i], spec(t, t.columns[i].name, t.columns[i].type));
          } else {
            set(term, spec(t, "partition key token", DataType::of(TypeId::kBigint)));
          }
          continue;
        }
        const Column& c = column(t, r.column);
        if (r.op == Relation::Op::kIn && r.terms.size() == 1 &&
            r.terms[0].kind == Term::Kind::kBind) {
          set(r.terms[0], spec(t, "in(" + c.name + ")", list_of(c.type)));
        } else if (r.op == Relation::Op::kContains) {
          set(r.terms.at(0),
              spec(t, c.name,
                   c.type.id == TypeId::kMap ? c.type.params.at(1) : c.type.params.at(0)));
        } else if (r.op == Relation::Op::kContainsKey) {
          set(r.terms.at(0), spec(t, c.name, c.type.params.at(0)));
        } else {
          for (const auto& term : r.terms) set(term, spec(t, c.name, c.type));
        }
      }
    };
    auto element_specs = [&](const Table& t, const Column& c, const std::optional<Term>& key,
                             const Term* value) {
      if (c.type.id == TypeId::kMap) {
        if (key) set(*key, spec(t, "key(" + c.name + ")", c.type.params[0]));
        if (value) set(*value, spec(t, "value(" + c.name + ")", c.type.params[1]));
      } else if (c.type.id == TypeId::kList) {
        if (key) set(*key, spec(t, "idx(" + c.name + ")", DataType::of(TypeId::kInt)));
        if (value) set(*value, spec(t, "value(" + c.name + ")", c.type.params[0]));
      }
    };
    auto condition_specs = [&](const std::vector<Condition>& conds, const Table& t) {
      for (const auto& cond : conds) {
        const Column& c = column(t, cond.column);
        if (cond.element) {
          for (const auto& term : cond.terms) element_specs(t, c, cond.element, &term);
        } else if (cond.op == Relation::Op::kIn && cond.terms.size() == 1 &&
                   cond.terms[0].kind == Term::Kind::kBind) {
          set(cond.terms[0], spec(t, "in(" + c.name + ")", list_of(c.type)));
        } else {
          for (const auto& term : cond.terms) set(term, spec(t, c.name, c.type));
        }
      }
    };
    auto pk_from_where = [&](const std::vector<Relation>& where, const Table& t) {
      std::vector<uint16_t> pk;
      for (std::size_t i = 0; i < t.pk_count; ++i) {
        bool found = false;
        for (const auto& r : where)
          if (!r.is_token() && r.column == t.columns[i].name && r.op == Relation::Op::kEq &&
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
          const Column& c = column(t, ins->columns[i]);
          set(ins->values[i], spec(t, c.name, c.type));
          auto idx = static_cast<std::size_t>(t.index(c.name));
          if (idx < t.pk_count && ins->values[i].kind == Term::Kind::kBind)
            pk[idx] = static_cast<uint16_t>(ins->values[i].bind_index);
        }
        using_specs(ins->using_, t);
        if (top && std::none_of(pk.begin(), pk.end(), [](uint16_t v) { return v == UINT16_MAX; }))
          meta.pk_indices = pk;
      } else if (const auto* u = std::get_if<Update>(&node.body)) {
        Table& t = table(u->table, s);
        using_specs(u->using_, t);
        for (const auto& a : u->assignments) {
          const Column& c = column(t, a.column);
          if (a.kind == Assignment::Kind::kSetElement) {
            element_specs(t, c, a.key, &a.value);
          } else if (a.kind == Assignment::Kind::kSubtract && c.type.id == TypeId::kMap) {
            DataType keys;
            keys.id = TypeId::kSet;
            keys.params = {c.type.params[0]};
            set(a.value, spec(t, c.name, keys));
          } else {
            set(a.value, spec(t, c.name, c.type));
          }
        }
        where_specs(u->where, t);
        condition_specs(u->conditions, t);
        if (top) meta.pk_indices = pk_from_where(u->where, t);
      } else if (const auto* d = std::get_if<Delete>(&node.body)) {
        Table& t = table(d->table, s);
        for (const auto& target : d->columns)
          if (target.element) element_specs(t, column(t, target.column), target.element, nullptr);
        using_specs(d->using_, t);
        where_specs(d->where, t);
        condition_specs(d->conditions, t);
        if (top) meta.pk_indices = pk_from_where(d->where, t);
      } else if (const auto* sel = std::get_if<Select>(&node.body)) {
        std::unique_ptr<Table> holder;
        const Table& t = readable(sel->table, s, 0, holder);
        where_specs(sel->where, t);
        if (sel->per_partition_limit)
          set(*sel->per_partition_limit,
              spec(t, "[per_partition_limit]", DataType::of(TypeId::kInt)));
        if (sel->limit) set(*sel->limit, spec(t, "[limit]", DataType::of(TypeId::kInt)));
        if (top && !is_virtual_keyspace(t.keyspace)) meta.pk_indices = pk_from_where(sel->where, t);
      } else if (const auto* b = std::get_if<Batch>(&node.body)) {
        for (const auto& child : b->children) walk(child, false);
        if (b->using_.timestamp)
          set(*b->using_.timestamp,
              ColumnSpec{"", "", "[timestamp]", DataType::of(TypeId::kBigint)});
      }
    };
    walk(st, true);
  }

  cql::RowsResult describe_shape(const Describe& d) {
    Catalog none;
    Describe probe = d;
    probe.what = d.what == Describe::What::kCluster ? d.what : Describe::What::kSchema;
    return describe(probe, info, none, "");
  }

  cql::RowsMetadata result_metadata(const Statement& st, const Session& s) {
    cql::RowsMetadata m;
    if (const auto* d = std::get_if<Describe>(&st.body)) {
      m.columns = describe_shape(*d).metadata.columns;
      if (d->what == Describe::What::kKeyspaces || d->what == Describe::What::kTables)
        m.columns.resize(3);
      m.column_count = static_cast<int32_t>(m.columns.size());
      return m;
    }
    const auto* sel = std::get_if<Select>(&st.body);
    if (!sel) {
      m.flags = cql::rows_flag::kNoMetadata;
      return m;
    }
    std::unique_ptr<Table> holder;
    const Table& t = readable(sel->table, s, 0, holder);
    m.columns = project(*sel, t).specs;
    m.column_count = static_cast<int32_t>(m.columns.size());
    return m;
  }

  // ---- persistence ----

  Table* find_table(const std::string& ks, const std::string& name) {
    auto k = keyspaces.find(ks);
    if (k == keyspaces.end()) return nullptr;
    auto t = k->second.tables.find(name);
    return t == k->second.tables.end() ? nullptr : t->second.get();
  }

  void apply_record(cql::BytesView record) {
    cql::Reader r(record);
    uint8_t kind = r.read_byte();
    if (kind == 'D') {
      Session s;
      s.keyspace = r.read_string();
      std::string query = r.read_long_string();
      Statement st = parse_statement(query);
      Binds binds{nullptr, nullptr, &st};
      std::vector<Value> none;
      binds.values = &none;
      Ctx c{
          s,     0,           cql::Consistency::kOne, std::nullopt, now_seconds(), nullptr, nullptr,
          false, std::nullopt};
      run(st, c, binds);
      return;
    }
    std::string ks = r.read_string(), name = r.read_string();
    Table* t = find_table(ks, name);
    if (!t) return;
    std::vector<Bytes> pk = decode_key(r);
    PartitionData& p = t->partition(pk);
    if (kind == 'P') {
      int64_t deleted = r.read_long();
      if (deleted != kNoTimestamp) delete_partition(*t, p, deleted);
      decode_row(r, *t, p.statics);
      int32_t n = r.read_int();
      p.ranges.clear();
      for (int32_t i = 0; i < n; ++i) {
        RangeTombstone range;
        range.from = decode_key(r);
        range.from_inclusive = r.read_byte() != 0;
        range.to = decode_key(r);
        range.to_inclusive = r.read_byte() != 0;
        range.ts = r.read_long();
        delete_range(*t, p, std::move(range));
      }
    } else if (kind == 'R') {
      Key ck = decode_key(r);
      if (r.read_byte() == 0) {
        p.rows.erase(ck);
      } else {
        decode_row(r, *t, t->row(p, ck));
      }
    }
  }

  // Journals what the request changed: DDL as text, then partition headers and row images.
  void commit() {
    if (!journal || replaying) return;
    if (ddl_log.empty() && touched.empty()) return;
    for (const auto& [ks, cql] : ddl_log) journal->append(cql::BytesView(ddl_record(ks, cql)));
    ddl_log.clear();
    std::set<std::tuple<Table*, PartitionPos, bool, Key>> seen;
    for (const auto& t : touched) {
      if (!seen.emplace(t.table, t.pos, t.ck.has_value(), t.ck ? *t.ck : Key{}).second) continue;
      auto pit = t.table->find(t.pos);
      if (pit == t.table->partitions.end()) continue;
      const PartitionData& p = pit->second;
      if (!t.ck) {
        journal->append(cql::BytesView(partition_record(*t.table, p)));
        continue;
      }
      auto rit = p.rows.find(*t.ck);
      journal->append(cql::BytesView(
          row_record(*t.table, p.pk, *t.ck, rit == p.rows.end() ? nullptr : &rit->second)));
    }
    touched.clear();
    journal->flush();
  }

  void write_snapshot() {
    journal->snapshot([&](const std::function<void(cql::BytesView)>& emit) {
      for (const auto& [kn, k] : keyspaces) {
        if (k.system) continue;
        emit(cql::BytesView(ddl_record("", keyspace_cql(k))));
        for (const auto& [tn, t] : k.tables) emit(cql::BytesView(ddl_record("", table_cql(*t))));
      }
      for (const auto& [kn, k] : keyspaces) {
        if (k.system) continue;
        for (const auto& [tn, t] : k.tables) {
          for (const auto& [pos, p] : t->partitions) {
            emit(cql::BytesView(partition_record(*t, p)));
            for (const auto& [ck, row] : p.rows)
              emit(cql::BytesView(row_record(*t, p.pk, ck, &row)));
          }
        }
      }
    });
  }

  // ---- tracing ----

  void record_trace(const Trace& tr) {
    Keyspace& k = keyspaces.at("system_traces");
    Table& sessions = *k.tables.at("sessions");
    Table& events = *k.tables.at("events");
    WriteTime wt{next_write_timestamp(), kTraceTtl, now_seconds()};
    const NodeInfo& node = info.nodes.at(tr.node);
    auto put = [&](Table& t, RowData& row, const char* col, const Cell& v) {
      int idx = t.index(col);
      set_column(t, row, static_cast<std::size_t>(idx), v, wt);
    };
    PartitionData& sp = sessions.partition({tr.session_id});
    RowData& s = sessions.row(sp, {});
    write_marker(s, wt);
    put(sessions, s, "client", tr.client.empty() ? Cell{} : Cell{tr.client});
    put(sessions, s, "command", text_bytes(tr.command));
    put(sessions, s, "coordinator", node.address_bytes);
    put(sessions, s, "coordinator_port", be_int(info.native_port, 4));
    put(sessions, s, "duration", be_int(tr.duration_us, 4));
    put(sessions, s, "parameters", text_map(tr.parameters));
    put(sessions, s, "request", text_bytes(tr.request));
    put(sessions, s, "started_at", be_int(tr.started_at_ms, 8));
    PartitionData& ep = events.partition({tr.session_id});
    for (const auto& [activity, elapsed] : tr.events) {
      RowData& e = events.row(ep, {timeuuid_now()});
      write_marker(e, wt);
      put(events, e, "activity", text_bytes(activity));
      put(events, e, "source", node.address_bytes);
      put(events, e, "source_elapsed", be_int(elapsed, 4));
      put(events, e, "source_port", be_int(7000, 4));
      put(events, e, "thread", text_bytes("Native-Transport-Requests-1"));
    }
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

// v5's now_in_seconds (flag 0x100): the clock TTLs are counted from, when the client sets it.
int32_t now_of(uint32_t flags, int32_t now_in_seconds) {
  return flags & cql::query_flag::kNowInSeconds ? now_in_seconds : now_seconds();
}

std::optional<int64_t> default_timestamp(const cql::QueryParameters& p) {
  if (p.flags & cql::query_flag::kDefaultTimestamp) return p.timestamp;
  return std::nullopt;
}

}  // namespace

Store::Store(ClusterInfo info) : state_(std::make_unique<State>(std::move(info))) {}

Store::~Store() {
  if (state_->journal) {
    try {
      checkpoint();
    } catch (const std::exception& e) {
      spdlog::error("data dir: final snapshot failed: {}", e.what());
    }
  }
}

const ClusterInfo& Store::info() const {
  return state_->info;
}

Outcome Store::query(std::size_t node, Session& session, const cql::QueryMsg& msg) {
  std::lock_guard lock(state_->mu);
  Outcome out = guarded([&] {
    Statement st = parse_statement(msg.query);
    Binds binds{&msg.params.values, &msg.params.names, &st};
    // v5's per-query keyspace (flag 0x80) applies to this statement only.
    Session scoped = session;
    bool per_query =
        (msg.params.flags & cql::query_flag::kKeyspace) && !msg.params.keyspace.empty();
    if (per_query) scoped.keyspace = msg.params.keyspace;
    State::Ctx c{per_query ? scoped : session,
                 node,
                 msg.params.consistency,
                 default_timestamp(msg.params),
                 now_of(msg.params.flags, msg.params.now_in_seconds),
                 &msg.params,
                 &msg.query,
                 false,
                 std::nullopt};
    return state_->run(st, c, binds);
  });
  state_->commit();
  return out;
}

void Store::forget_prepared(std::size_t node) {
  std::lock_guard lock(state_->mu);
  if (state_->info.prepared_per_node) state_->prepared(node).clear();
}

std::size_t Store::prepared_count(std::size_t node) const {
  std::lock_guard lock(state_->mu);
  return state_->prepared_by_node[state_->info.prepared_per_node ? node : 0].size();
}

std::optional<cql::StatementInfo> Store::prepared_info(std::size_t node, const Bytes& id) const {
  std::lock_guard lock(state_->mu);
  const auto& cache = state_->prepared_by_node[state_->info.prepared_per_node ? node : 0];
  auto it = cache.find(id);
  if (it == cache.end()) return std::nullopt;
  return it->second.info;
}

void Store::set_node_up(std::size_t node, bool up) {
  std::lock_guard lock(state_->mu);
  state_->up.at(node) = up;
}

bool Store::node_up(std::size_t node) const {
  std::lock_guard lock(state_->mu);
  return state_->up.at(node);
}

void Store::record_trace(const Trace& trace) {
  std::lock_guard lock(state_->mu);
  state_->record_trace(trace);
}

void Store::open_data_dir(const std::string& dir) {
  std::lock_guard lock(state_->mu);
  state_->journal = std::make_unique<Journal>(dir);
  state_->replaying = true;
  std::size_t records = 0;
  try {
    state_->journal->replay([&](cql::BytesView record) {
      ++records;
      try {
        state_->apply_record(record);
      } catch (const std::exception& e) {  // InvalidRequest, SyntaxError, ProtocolError
        spdlog::warn("data dir {}: record {} skipped: {}", dir, records, e.what());
      } catch (const AlreadyExists&) {
      }
    });
  } catch (...) {
    state_->replaying = false;
    throw;
  }
  state_->replaying = false;
  state_->bump_schema();
  state_->write_snapshot();
  spdlog::info("data dir {}: {} records replayed", dir, records);
}

void Store::checkpoint() {
  std::lock_guard lock(state_->mu);
  if (state_->journal) state_->write_snapshot();
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
    cql::StatementInfo info = cql::classify(msg.query);
    info.kind = kind_of(*st);
    if (info.keyspace.empty()) info.keyspace = s.keyspace;
    state_->prepared(node)[p.id] = Prepared{msg.query, s.keyspace, st, std::move(info)};
    return Outcome{ResultMsg{std::move(p)}, std::nullopt};
  });
}

Outcome Store::execute(std::size_t node, Session& session, const cql::ExecuteMsg& msg) {
  std::lock_guard lock(state_->mu);
  Outcome result = guarded([&] {
    auto& prepared = state_->prepared(node);
    auto it = prepared.find(msg.id);
    if (it == prepared.end()) throw Unprepared{msg.id};
    const Prepared& p = it->second;
    Session s = session;
    if (!p.keyspace.empty()) s.keyspace = p.keyspace;
    Binds binds{&msg.params.values, &msg.params.names, p.statement.get()};
    State::Ctx c{s,
                 node,
                 msg.params.consistency,
                 default_timestamp(msg.params),
                 now_of(msg.params.flags, msg.params.now_in_seconds),
                 &msg.params,
                 &p.query,
                 false,
                 std::nullopt};
    Outcome out = state_->run(*p.statement, c, binds);
    if (std::holds_alternative<Use>(p.statement->body)) session.keyspace = s.keyspace;
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
  state_->commit();
  return result;
}

Outcome Store::batch(std::size_t node, Session& session, const cql::BatchMsg& msg) {
  std::lock_guard lock(state_->mu);
  Outcome result = guarded([&] {
    // Resolve and parse every child first so that an error applies nothing.
    std::vector<std::shared_ptr<const Statement>> statements;
    std::vector<State::Child> children;
    for (const auto& c : msg.children) {
      if (c.prepared) {
        auto& prepared = state_->prepared(node);
        auto it = prepared.find(c.id);
        if (it == prepared.end()) throw Unprepared{c.id};
        statements.push_back(it->second.statement);
        children.push_back(State::Child{it->second.statement.get(), it->second.keyspace,
                                        Binds{&c.values, nullptr, it->second.statement.get()}});
      } else {
        statements.push_back(std::make_shared<Statement>(parse_statement(c.query)));
        children.push_back(State::Child{statements.back().get(), "",
                                        Binds{&c.values, nullptr, statements.back().get()}});
      }
    }
    for (const auto& c : children) c.binds.check();
    Batch::Type type = msg.type == cql::BatchType::kCounter    ? Batch::Type::kCounter
                       : msg.type == cql::BatchType::kUnlogged ? Batch::Type::kUnlogged
                                                               : Batch::Type::kLogged;
    Session scoped = session;
    if ((msg.flags & cql::query_flag::kKeyspace) && !msg.keyspace.empty())
      scoped.keyspace = msg.keyspace;
    State::Ctx c{
        scoped,  node,    msg.consistency, std::nullopt, now_of(msg.flags, msg.now_in_seconds),
        nullptr, nullptr, false,           std::nullopt};
    std::optional<int64_t> ts;
    if (msg.flags & cql::query_flag::kDefaultTimestamp) ts = msg.timestamp;
    // The protocol's timestamp is the batch's default, not a USING TIMESTAMP.
    c.default_ts = ts;
    return Outcome{state_->run_batch(children, type, std::nullopt, c), std::nullopt};
  });
  state_->commit();
  return result;
}

}  // namespace zdm::testcluster
