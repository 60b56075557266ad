#include <doctest/doctest.h>

#include "common/cql/version.h"

using namespace zdm::cql;

TEST_CASE("protocol version traits") {
  // Expected values: the python-driver's ProtocolVersion predicates (cassandra/__init__.py),
  // and the v3/v4/v5 specs for pk indices.
  struct Case {
    uint8_t version;
    bool int_query_flags, prepare_flags, keyspace_flag, result_metadata_id, pk_indices,
        error_code_map, segments, body_compression_flag;
  };
  const Case cases[] = {
      // v  int   prep   ks     md_id  pk     errmap segs   body flag
      {3, false, false, false, false, false, false, false, true},
      {4, false, false, false, false, true, false, false, true},
      {5, true, true, true, true, true, true, true, false},
      {kDseV1, true, false, false, false, true, true, false, true},
      {kDseV2, true, true, true, true, true, true, false, true},
  };
  for (const auto& c : cases) {
    CAPTURE(static_cast<int>(c.version));
    CHECK(uses_int_query_flags(c.version) == c.int_query_flags);
    CHECK(uses_prepare_flags(c.version) == c.prepare_flags);
    CHECK(uses_keyspace_flag(c.version) == c.keyspace_flag);
    CHECK(uses_result_metadata_id(c.version) == c.result_metadata_id);
    CHECK(uses_pk_indices(c.version) == c.pk_indices);
    CHECK(uses_error_code_map(c.version) == c.error_code_map);
    CHECK(uses_segments(c.version) == c.segments);
    CHECK(uses_body_compression_flag(c.version) == c.body_compression_flag);
  }
}
