// The catalog of zdm-testcluster: keyspaces and tables, the system tables each node describes
// itself with (system.local, system.peers, system_schema.*), the CQL text of the schema
// (DESCRIBE, and the snapshots of --data-dir) and server-side DESCRIBE (Cassandra 4.0+).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/cql/messages.h"
#include "testcluster/parser.h"
#include "testcluster/store.h"
#include "testcluster/table.h"

namespace zdm::testcluster {

struct Keyspace {
  std::string name;
  std::vector<std::pair<std::string, std::string>> replication;
  bool durable_writes = true;
  bool system = false;  // system_traces: readable, not user-modifiable
  std::map<std::string, std::unique_ptr<Table>> tables;
};
using Catalog = std::map<std::string, Keyspace>;

/// Keyspaces whose tables are generated per request (system, system_schema).
bool is_virtual_keyspace(const std::string& ks);

/// A column of `type_text` ("int", "frozen<set<text>>"); throws std::invalid_argument on an
/// unknown type.
Column make_column(const std::string& name, const std::string& type_text, ColumnKind kind,
                   int position = -1);

/// A read-only table holding `rows` (each a value per column, in column order).
std::unique_ptr<Table> virtual_table(const std::string& ks, const std::string& name,
                                     std::vector<Column> columns,
                                     const std::vector<std::vector<Cell>>& rows);

/// The system table `ks.name` as node `node` answers it; null when there is no such table.
std::unique_ptr<Table> system_table(const ClusterInfo& info, const Catalog& catalog,
                                    const Bytes& schema_version, const std::string& ks,
                                    const std::string& name, std::size_t node);

/// CREATE statements as Cassandra 4's DESCRIBE prints them (parseable by parse_statement).
std::string keyspace_cql(const Keyspace& k);
std::string table_cql(const Table& t);

/// The rows of a server-side DESCRIBE (keyspace_name, type, name[, create_statement]).
/// Throws InvalidRequest for unknown names, as Cassandra does.
cql::RowsResult describe(const Describe& d, const ClusterInfo& info, const Catalog& catalog,
                         const std::string& session_keyspace);

}  // namespace zdm::testcluster
