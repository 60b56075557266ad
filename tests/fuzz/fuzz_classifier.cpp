// Harness: the statement classifier (common/cql/classifier.h), which reads every QUERY, PREPARE
// and BATCH statement a client sends.
//
// Input: CQL text.
// Properties: classify never throws; a write has a write kind; leading whitespace and a comment
// change nothing.
#include <string>

#include "common/cql/classifier.h"
#include "tests/fuzz/fuzz_util.h"

using namespace zdm::cql;

namespace {

bool same(const StatementInfo& a, const StatementInfo& b) {
  return a.kind == b.kind && a.keyspace == b.keyspace && a.table == b.table &&
         a.selectors == b.selectors;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = zdm::fuzz::text_of(data, size);
  const StatementInfo info = classify(text);
  FUZZ_CHECK(statement_kind_name(info.kind) != nullptr);
  FUZZ_CHECK(info.is_write() ==
             (info.kind == StatementKind::kInsert || info.kind == StatementKind::kUpdate ||
              info.kind == StatementKind::kDelete || info.kind == StatementKind::kBatch));
  (void)is_system_keyspace(info.keyspace);
  FUZZ_CHECK(same(classify(" \n\t/* zdm */ -- fuzz\n" + std::string(text)), info));
  return 0;
}
