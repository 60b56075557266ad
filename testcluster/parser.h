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
#include "common/util/strings.h"

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

/// `col op term`, `col IN (terms)`, or `token(cols) op term` in a WHERE clause.
struct Relation {
  enum class Op : uint8_t { kEq, kNeq, kLt, kLe, kGt, kGe, kIn, kContains, kContainsKey, kLike };
  std::string column;                 // the column; for token(): the first argument
  std::vector<std::string> token_of;  // non-empty for token(c1, c2, ...) op term
  Op op = Op::kEq;
  std::vector<Term> terms;  // one, or the IN list
  bool is_token() const { return !token_of.empty(); }
};

/// "=", "<", ... as Cassandra prints them in messages.
const char* op_text(Relation::Op op);

struct CreateKeyspace {
  std::string name;
  bool if_not_exists = false;
  std::map<std::string, std::string> replication;
  bool durable_writes = true;
};

struct ColumnDef {
  std::string name;
  std::string type;  // CQL type text, parsed by the executor ("frozen<list<int>>" kept as is)
  bool is_static = false;
};

struct CreateTable {
  QualifiedName table;
  bool if_not_exists = false;
  std::vector<ColumnDef> columns;
  std::vector<std::string> partition_key;
  std::vector<std::string> clustering_key;
  std::map<std::string, std::string> clustering_order;  // column -> "asc"/"desc"
  std::map<std::string, Term> options;                  // WITH name = value (comment, ttl...)
};

/// ALTER TABLE: ADD columns, DROP columns, or WITH options.
struct AlterTable {
  QualifiedName table;
  std::vector<ColumnDef> add;
  std::vector<std::string> drop;
  std::map<std::string, Term> options;
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

/// USING TTL / TIMESTAMP.
struct Using {
  std::optional<Term> ttl;
  std::optional<Term> timestamp;
};

/// One `SET` item of an UPDATE.
struct Assignment {
  enum class Kind : uint8_t {
    kSet,         // c = t
    kAdd,         // c = c + t, c += t (counters, collection append/union)
    kPrepend,     // c = t + c (lists)
    kSubtract,    // c = c - t, c -= t
    kSetElement,  // c[key] = t (map key, list index)
  };
  std::string column;
  Kind kind = Kind::kSet;
  Term value;
  std::optional<Term> key;  // kSetElement
};

/// `IF col op term` (or `IF col[key] op term`) of a conditional UPDATE/DELETE.
struct Condition {
  std::string column;
  std::optional<Term> element;
  Relation::Op op = Relation::Op::kEq;
  std::vector<Term> terms;
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
  std::vector<Assignment> assignments;
  std::vector<Relation> where;
  bool if_exists = false;
  std::vector<Condition> conditions;
  Using using_;
};

/// A column to delete, or one element of it (`m['k']`, `l[0]`).
struct DeleteTarget {
  std::string column;
  std::optional<Term> element;
};

struct Delete {
  QualifiedName table;
  std::vector<DeleteTarget> columns;  // empty: the whole row (or partition/range)
  std::vector<Relation> where;
  bool if_exists = false;
  std::vector<Condition> conditions;
  Using using_;
};

/// One selected expression: a column, count(...), or a function of selectors
/// (writetime(c), ttl(c), token(k), totimestamp(now()), ...).
struct Selector {
  enum class Kind : uint8_t { kColumn, kCount, kFunction, kTerm };
  Kind kind = Kind::kColumn;
  std::string name;  // column name, or lower-case function name
  std::vector<Selector> args;
  std::optional<Term> term;  // kTerm: a literal argument
  std::string alias;
};

struct Select {
  QualifiedName table;
  bool star = false;
  bool distinct = false;
  bool json = false;
  std::vector<Selector> selectors;
  std::vector<Relation> where;
  std::vector<std::pair<std::string, bool>> order_by;  // column, descending
  std::optional<Term> limit;
  std::optional<Term> per_partition_limit;
  bool allow_filtering = false;
};

/// DESCRIBE / DESC (server-side since Cassandra 4.0, as cqlsh 6 sends it).
struct Describe {
  enum class What : uint8_t {
    kKeyspaces,
    kKeyspace,
    kTables,
    kTable,
    kSchema,
    kCluster,
    kTypes,
    kFunctions,
    kAggregates,
    kName,  // DESCRIBE <name>: a keyspace or a table
  };
  What what = What::kKeyspaces;
  bool full = false;
  std::string keyspace;  // empty: the session's
  std::string name;
};

struct Statement;
struct Batch {
  enum class Type : uint8_t { kLogged, kUnlogged, kCounter };
  Type type = Type::kLogged;
  Using using_;
  std::vector<Statement> children;
};

struct Statement {
  std::variant<CreateKeyspace, CreateTable, AlterTable, DropKeyspace, DropTable, Truncate, Use,
               Insert, Update, Delete, Select, Batch, Describe>
      body;
  int bind_count = 0;                   // number of bind markers
  std::vector<std::string> bind_names;  // per marker: its :name, or ""
};

/// Parses one statement (a trailing ';' is allowed). Throws SyntaxError.
Statement parse_statement(std::string_view query);

using util::lower;  // lower-cases an unquoted identifier (callers unquote quoted ones first)

}  // namespace zdm::testcluster
