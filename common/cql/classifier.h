// Statement classifier: what a CQL statement does and which keyspace.table it touches, read
// from the text without a full grammar. Used for routing (reads to the primary, writes to both).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace zdm::cql {

enum class StatementKind {
  kSelect,
  kInsert,
  kUpdate,
  kDelete,
  kBatch,
  kUse,
  kDdl,    // CREATE/ALTER/DROP/TRUNCATE
  kOther,  // GRANT, LIST, CALL, anything unrecognised
};

/// "select", "insert", ...
const char* statement_kind_name(StatementKind k);

struct StatementInfo {
  StatementKind kind = StatementKind::kOther;
  std::string keyspace;  // as written (unquoted identifiers lower-cased); empty if none given
  std::string table;     // empty if none (USE, keyspace DDL, BATCH)
  /// For SELECT: the selected expressions as written ("*", "peer", "count(*)"), in order.
  std::vector<std::string> selectors;

  bool is_write() const {
    return kind == StatementKind::kInsert || kind == StatementKind::kUpdate ||
           kind == StatementKind::kDelete || kind == StatementKind::kBatch;
  }
};

/// Classifies one CQL statement. Comments (--, //, /* */) and leading whitespace are skipped.
/// Never throws: text it cannot read is kOther.
StatementInfo classify(std::string_view cql);

/// True for keyspaces whose reads ZDM sends to origin only: system, system_*, dse_*.
bool is_system_keyspace(std::string_view keyspace);

}  // namespace zdm::cql
