#include <doctest/doctest.h>

#include "proxy/stream_ids.h"

using namespace zdm::proxy;

TEST_CASE("stream ids of a cluster connection") {
  SUBCASE("lowest ids first, each owned by its request until released") {
    StreamIds ids(3);
    CHECK(ids.acquire(7) == 0);
    CHECK(ids.acquire(8) == 1);
    CHECK(ids.owner(1) == 8);
    CHECK(ids.release(0) == 7);
    CHECK(ids.release(0) == 0);  // already free
    CHECK(ids.acquire(9) == 0);
    CHECK(ids.acquire(10) == 2);
    CHECK(!ids.acquire(11));  // all three in use
    CHECK(ids.in_use() == 3);
  }
  SUBCASE("out-of-range and negative ids are not ours") {
    StreamIds ids(2);
    CHECK(ids.release(-1) == 0);
    CHECK(ids.release(2) == 0);
    CHECK(ids.owner(5) == 0);
  }
  SUBCASE("up to 32768 ids, as the spec allows from v3 on") {
    StreamIds ids(40000);
    CHECK(ids.capacity() == 32768);
    int16_t last = 0;
    for (int i = 0; i < 32768; ++i) last = *ids.acquire(static_cast<uint64_t>(i) + 1);
    CHECK(last == 32767);
    CHECK(!ids.acquire(1));
  }
}
