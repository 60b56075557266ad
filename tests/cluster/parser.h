// The CQL subset zdm-testcluster executes: a tokenizer and a recursive-descent parser producing
// one Statement per query string. Pure: no schema lookups here (the executor resolves names).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace zdm::testcluster {

/// A syntax error; the server answers SYNTAX_ERROR (0x2000) with this message.
class SyntaxError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value in a statement: a literal, a bind marker, a function call or a collection literal.
struct Term {
  enum class Kind : uint8_t {
    kInteger,  // text holds the digits (with sign)
    kFloat,    // text holds the literal
    kString,   // text holds the unescaped string
    kBoolean,  // text is "true" or "false"
    kUuid,     // text holds the canonical form
    kHex,      // text holds the hex digits without 0x
    kNull,
    kBind,      // bind_index; bind_name for :name
    kFunction,  // text is the lower-case function name, args
    kList,      // elems
    kSet,       // elems
    kMap,       // elems: key, value, key, value...
  };
  Kind kind = Kind::kNull;
  std::string text;
  int bind_index = -1;
  std::string bind_name;
  std::vector<Term> elems;  // collection elements or function arguments
};

/// A qualified name; keyspace is empty when the statement did not name one.
struct QualifiedName {
  std::string keyspace;
  std::string name;
};

/// `col op term` or `col IN (terms)` in a WHERE clause.
struct Relation {
  enum class Op : uint8_t { kEq, kLt, kLe, kGt, kGe, kIn };
  std::string column;
  Op op = Op::kEq;
  std::vector<Term> terms;  // one, or the IN list
};

struct CreateKeyspace {
  std::string name;
  bool if_not_exists = false;
  std::map<std::string, std::string> replication;
  bool durable_writes = true;
};

struct ColumnDef {
  std::string name;
  std::string type;  // CQL type text, parsed by the executor
  bool is_static = false;
};

struct CreateTable {
  QualifiedName table;
  bool if_not_exists = false;
  std::vector<ColumnDef> columns;
  std::vector<std::string> partition_key;
  std::vector<std::string> clustering_key;
  std::map<std::string, std::string> clustering_order;  // column -> "asc"/"desc"
};

struct DropKeyspace {
  std::string name;
  bool if_exists = false;
};

struct DropTable {
  QualifiedName table;
  bool if_exists = false;
};

struct Truncate {
  QualifiedName table;
};

struct Use {
  std::string keyspace;
};

/// USING TTL / TIMESTAMP (accepted; TTL is not enforced).
struct Using {
  std::optional<Term> ttl;
  std::optional<Term> timestamp;
};

struct Insert {
  QualifiedName table;
  std::vector<std::string> columns;
  std::vector<Term> values;
  bool if_not_exists = false;
  Using using_;
};

struct Update {
  QualifiedName table;
  std::vector<std::pair<std::string, Term>> assignments;
  std::vector<Relation> where;
  bool if_exists = false;
  Using using_;
};

struct Delete {
  QualifiedName table;
  std::vector<std::string> columns;  // empty: the whole row
  std::vector<Relation> where;
  bool if_exists = false;
  Using using_;
};

struct Selector {
  std::string column;  // empty for count(*)
  std::string alias;
  bool count = false;
};

struct Select {
  QualifiedName table;
  bool star = false;
  std::vector<Selector> selectors;
  std::vector<Relation> where;
  std::optional<Term> limit;
  bool allow_filtering = false;
};

struct Statement;
struct Batch {
  bool logged = true;
  std::vector<Statement> children;
};

struct Statement {
  std::variant<CreateKeyspace, CreateTable, DropKeyspace, DropTable, Truncate, Use, Insert, Update,
               Delete, Select, Batch>
      body;
  int bind_count = 0;                   // number of bind markers
  std::vector<std::string> bind_names;  // per marker: its :name, or ""
};

/// Parses one statement (a trailing ';' is allowed). Throws SyntaxError.
Statement parse_statement(std::string_view query);

/// Lower-cases an unquoted identifier; keeps quoted ones verbatim.
std::string lower(std::string_view s);

}  // namespace zdm::testcluster
