// --bench-backend: a key-value fast path for benchmarks (tests/bench/run). The stand-in's full
// path (decode the EXECUTE, run it against the table model, encode the RESULT) costs 1.4-2 us of
// CPU per request, as much as the proxy being measured, so the benchmark would measure the
// stand-in. In this mode prepared statements of the shapes
//     SELECT v FROM ks.t WHERE k = ?          INSERT INTO ks.t (k, v) VALUES (?, ?)
// are answered from a hash map (key bytes -> value bytes per ks.t.v), with no CQL parsing per
// request: the EXECUTE body is read only as far as the id and the bound values. Everything else
// (handshake, TLS, compression, system tables, DDL, the PREPARE itself) goes the normal way.
// Rows written on the fast path are not visible to other statements, and faults do not apply
// to them: this mode is for benchmarks only.
#pragma once

#include <string>
#include <unordered_map>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "common/cql/messages.h"

namespace zdm::testcluster {

class BenchBackend {
 public:
  /// Called after the store answered a PREPARE of `query` with `result`: remembers the id when
  /// the statement has one of the served shapes (checked once here, by a pattern).
  void learn(const std::string& query, const cql::ResultMsg& result, uint8_t version);
  /// Answers an EXECUTE (`body` uncompressed, without custom payload) when its id was learnt:
  /// appends the whole RESULT frame on `stream` to `out`, its body compressed with
  /// `compression` (v3/v4 frame compression) unless kNone, and returns true. False when the id
  /// is not served here or the body is not one the fast path reads (named values): the store
  /// answers it then.
  bool execute(uint8_t version, int16_t stream, cql::BytesView body, cql::Bytes& out,
               cql::Compression compression = cql::Compression::kNone);

  std::size_t statements() const { return statements_.size(); }

 private:
  using Rows = std::unordered_map<std::string, cql::Bytes>;
  struct Statement {
    bool write = false;
    Rows* rows = nullptr;
    int key_index = 0;    // bound value holding the key
    cql::Bytes metadata;  // SELECT: the encoded <metadata> of its Rows result
  };
  std::unordered_map<std::string, Statement> statements_;  // by prepared id
  std::unordered_map<std::string, Rows> tables_;           // by "ks.table.column"
  std::string key_;                                        // reused lookup key
  cql::Bytes plain_;                                       // an answer before compression, reused
};

}  // namespace zdm::testcluster
