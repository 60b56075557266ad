// Non-deterministic CQL functions in write statements (now(), uuid(), currentTimestamp(), …): found
// in the statement text so the proxy can give origin and target one value for each (ZDM does the
// same for now() only, with replace_cql_functions: datastax/zdm-proxy
// proxy/pkg/zdmproxy/querymodifier.go). Pure: text in, positions and text out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/cql/frame.h"

namespace zdm::cql {

/// What a replaced call evaluates to, by CQL type.
enum class Generated : uint8_t {
  kTimeUuid,    // now(), currentTimeUUID()                        → timeuuid
  kUuid,        // uuid()                                           → uuid
  kTimestamp,   // currentTimestamp(), toTimestamp(now()), dateOf(now()) → timestamp
  kDate,        // currentDate(), toDate(now())                     → date
  kTime,        // currentTime()                                    → time
  kUnixMillis,  // toUnixTimestamp(now()), unixTimestampOf(now())   → bigint
};

/// One call in the text: bytes [begin, end) (the whole expression, wrapper included) and the
/// index it takes among the statement's bind markers when it is replaced by one.
struct FunctionCall {
  std::size_t begin = 0, end = 0;
  Generated value = Generated::kTimeUuid;
  int marker_index = 0;
};

/// What the proxy needs to know of a statement's text before it forwards it.
struct StatementScan {
  std::vector<FunctionCall> calls;
  int markers = 0;             // bind markers (? and :name) in the text, calls not counted
  bool named_markers = false;  // the statement uses :name markers
  bool conditional = false;    // IF NOT EXISTS / IF EXISTS / IF col … (a lightweight transaction)
  bool counter_update = false;  // SET c = c ± <integer> (Cassandra forbids timestamps there)
};

/// Scans one statement (comments, string literals, $$ strings and quoted identifiers skipped;
/// names case-insensitive). Never throws.
StatementScan scan_statement(std::string_view cql);

/// A fresh value for `g` at `now_us` (microseconds since the epoch), serialized as the CQL type
/// of `g` (timeuuid/uuid: 16 bytes, version 1/4; timestamp and bigint: 8-byte milliseconds;
/// date: 4-byte days with 2^31 at the epoch; time: 8-byte nanoseconds since midnight).
Bytes generate(Generated g, int64_t now_us);

/// The CQL literal of a value made by generate() (a uuid, an integer, a quoted date/time).
std::string literal(Generated g, BytesView value);

/// `cql` with each call replaced by the matching literal of `values` (one per call).
std::string replace_calls(std::string_view cql, const std::vector<FunctionCall>& calls,
                          const std::vector<std::string>& literals);

/// `cql` with each call replaced by a bind marker: "?" or, when the statement uses named
/// markers, ":zdm_generated_N".
std::string calls_to_markers(std::string_view cql, const StatementScan& scan);

}  // namespace zdm::cql
