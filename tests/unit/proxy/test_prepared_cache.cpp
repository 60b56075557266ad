#include <doctest/doctest.h>

#include <thread>

#include "proxy/prepared_cache.h"

using namespace zdm::proxy;
using zdm::cql::Bytes;

namespace {
Bytes id(int n) {
  return Bytes(16, static_cast<std::byte>(n));
}
void fill(PreparedEntry& e, int n) {
  e.origin_id = id(n);
  e.target_id = id(100 + n);
  e.query = "SELECT " + std::to_string(n);
}
}  // namespace

TEST_CASE("the prepared cache") {
  SUBCASE("maps origin ids to entries and target ids back to origin ids") {
    PreparedCache c(10);
    PreparedEntry e;
    fill(e, 1);
    CHECK(c.put(e) == 0);
    REQUIRE(c.by_origin_id(id(1)));
    CHECK(c.by_origin_id(id(1))->target_id == id(101));
    CHECK(c.origin_id_for_target(id(101)) == id(1));
    CHECK(!c.by_origin_id(id(2)));
  }
  SUBCASE("is bounded: the least recently used statement is evicted") {
    PreparedCache c(2);
    PreparedEntry a, b, d;
    fill(a, 1);
    fill(b, 2);
    fill(d, 3);
    c.put(a);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    c.put(b);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    CHECK(c.by_origin_id(id(1)));  // 1 is used again: 2 is now the least recently used
    CHECK(c.put(d) == 1);
    CHECK(c.size() == 2);
    CHECK(c.by_origin_id(id(1)));
    CHECK(!c.by_origin_id(id(2)));
    CHECK(!c.origin_id_for_target(id(102)));
    CHECK(c.by_origin_id(id(3)));
  }
  SUBCASE("replacing an entry evicts nothing") {
    PreparedCache c(1);
    PreparedEntry a, a2;
    fill(a, 1);
    fill(a2, 1);
    c.put(a);
    CHECK(c.put(a2) == 0);
    CHECK(c.size() == 1);
  }
}
