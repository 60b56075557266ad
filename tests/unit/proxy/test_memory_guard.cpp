#include <doctest/doctest.h>

#include "proxy/memory_guard.h"

using namespace zdm::proxy;

TEST_CASE("resident memory from /proc/self/statm") {
  CHECK(rss_of_statm("1234 567 89 10 0 300 0\n", 4096) == 567u * 4096);
  CHECK(rss_of_statm("1234 567", 4096) == 567u * 4096);
  CHECK_FALSE(rss_of_statm("", 4096));
  CHECK_FALSE(rss_of_statm("1234", 4096));
  CHECK_FALSE(rss_of_statm("1234 x 1", 4096));
  auto own = resident_bytes();
  REQUIRE(own);
  CHECK(*own > (1u << 20));  // this test binary is resident
}

TEST_CASE("cgroup memory limits") {
  CHECK(memory_limit_of_cgroup("2147483648\n") == 2147483648u);
  CHECK_FALSE(memory_limit_of_cgroup("max\n"));
  CHECK_FALSE(memory_limit_of_cgroup("9223372036854771712\n"));  // v1 "unlimited"
  CHECK_FALSE(memory_limit_of_cgroup(""));
}

TEST_CASE("the memory ceiling: configured, else 75 % of the tighter limit") {
  CHECK(memory_ceiling(150LL << 20, 1u << 30, 8ULL << 30).bytes == 150u << 20);
  CHECK(memory_ceiling(150LL << 20, 1u << 30, 8ULL << 30).source == "proxy_max_memory_bytes");
  auto cg = memory_ceiling(0, 4ULL << 30, 16ULL << 30);
  CHECK(cg.bytes == (4ULL << 30) / 100 * 75);
  CHECK(cg.source.find("cgroup memory limit") != std::string::npos);
  auto phys = memory_ceiling(0, std::nullopt, 16ULL << 30);
  CHECK(phys.bytes == (16ULL << 30) / 100 * 75);
  CHECK(phys.source.find("physical memory") != std::string::npos);
  // A cgroup limit above physical memory (or none) leaves physical memory as the limit.
  CHECK(memory_ceiling(0, 64ULL << 30, 16ULL << 30).bytes == phys.bytes);
  CHECK(memory_ceiling(0, std::nullopt, 0).bytes == 4ULL << 30);
  CHECK(memory_ceiling(0).bytes > 0);
  CHECK(shed_above(1000) == 800);
  CHECK(shed_to(1000) == 650);
}

TEST_CASE("shedding closes the heaviest connections first, until their bytes cover the excess") {
  const std::size_t M = 1 << 20;
  const std::vector<std::size_t> held = {2 * M, 30 * M, 512 * 1024, 20 * M, 25 * M};
  CHECK(choose_victims(held, 10 * M) == std::vector<std::size_t>{1});
  CHECK(choose_victims(held, 30 * M) == std::vector<std::size_t>{1});
  CHECK(choose_victims(held, 31 * M) == std::vector<std::size_t>{1, 4});
  CHECK(choose_victims(held, 60 * M) == std::vector<std::size_t>{1, 4, 3});
  CHECK(choose_victims(held, 76 * M) == std::vector<std::size_t>{1, 4, 3, 0});
  // Under the floor (1 MiB) a connection is never closed for memory, however large the excess.
  CHECK(choose_victims(held, 1000 * M) == std::vector<std::size_t>{1, 4, 3, 0});
  CHECK(choose_victims(held, 0).empty());
  CHECK(choose_victims({}, 10 * M).empty());
  CHECK(choose_victims({M / 2, M / 4}, 10 * M).empty());
}
