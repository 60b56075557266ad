#include <doctest/doctest.h>

#include "data/ring.h"

using namespace zdm::data;

TEST_CASE("the token ring") {
  SUBCASE("a token belongs to the first node token at or after it, wrapping around") {
    Ring ring;
    ring.add(0, {"-100", "200"});
    ring.add(1, {"0"});
    CHECK(ring.owner(-150) == 0);
    CHECK(ring.owner(-100) == 0);
    CHECK(ring.owner(-99) == 1);
    CHECK(ring.owner(0) == 1);
    CHECK(ring.owner(1) == 0);
    CHECK(ring.owner(200) == 0);
    CHECK(ring.owner(201) == 0);  // wraps to -100
    CHECK(ring.owner(kMaxToken) == 0);
  }
  SUBCASE("a token that is not a 64-bit integer is refused by name") {
    Ring ring;
    CHECK_THROWS_WITH_AS(ring.add(0, {"12a"}), "token '12a' is not a Murmur3 token",
                         std::invalid_argument);
    CHECK_THROWS_AS(ring.add(0, {"9223372036854775808"}), std::invalid_argument);
  }
}

TEST_CASE("the ring cut into token ranges") {
  SUBCASE("one split and no node token: the whole ring, which no key can miss") {
    auto r = split_ring(Ring{}, 1);
    REQUIRE(r.size() == 1);
    CHECK(r[0] == TokenRange{kMinToken, kMaxToken});
  }
  SUBCASE("equal pieces, cut again at every node token, covering the ring once") {
    Ring ring;
    ring.add(0, {"-5"});
    ring.add(1, {"4611686018427387903"});  // exactly the third quarter cut: not duplicated
    auto r = split_ring(ring, 4);
    REQUIRE(r.size() == 5);
    CHECK(r[0] == TokenRange{kMinToken, -4611686018427387905});
    CHECK(r[1] == TokenRange{-4611686018427387905, -5});
    CHECK(r[2] == TokenRange{-5, -1});
    CHECK(r[3] == TokenRange{-1, 4611686018427387903});
    CHECK(r[4] == TokenRange{4611686018427387903, kMaxToken});
    for (std::size_t i = 1; i < r.size(); ++i) CHECK(r[i].start == r[i - 1].end);
  }
  SUBCASE("each range lies within one node's ownership") {
    Ring ring;
    ring.add(0, {"-3000000000000000000", "1000"});
    ring.add(1, {"-20", "5000000000000000000"});
    for (const auto& range : split_ring(ring, 7))
      CHECK(ring.owner(range.start + 1) == ring.owner(range.end));
  }
  SUBCASE("to_string names a range as the scan bounds it") {
    CHECK(to_string(TokenRange{-1, 5}) == "(-1, 5]");
  }
}

TEST_CASE("a set of done ranges") {
  SUBCASE("adjacent and overlapping ranges merge") {
    RangeSet s;
    s.add({10, 20});
    s.add({30, 40});
    s.add({20, 30});
    REQUIRE(s.ranges().size() == 1);
    CHECK(s.ranges()[0] == TokenRange{10, 40});
    s.add({0, 5});
    s.add({3, 12});
    REQUIRE(s.ranges().size() == 1);
    CHECK(s.ranges()[0] == TokenRange{0, 40});
  }
  SUBCASE("what is missing of a range: the gaps, in order") {
    RangeSet s;
    s.add({10, 20});
    s.add({30, 40});
    auto m = s.missing({0, 50});
    REQUIRE(m.size() == 3);
    CHECK(m[0] == TokenRange{0, 10});
    CHECK(m[1] == TokenRange{20, 30});
    CHECK(m[2] == TokenRange{40, 50});
    CHECK(s.covers({12, 18}));
    CHECK(s.missing({15, 35}) == std::vector<TokenRange>{{20, 30}});
    CHECK(s.missing({40, 45}) == std::vector<TokenRange>{{40, 45}});
  }
  SUBCASE("ranges recorded with other splits still skip what they cover") {
    RangeSet s;
    s.add({kMinToken, 0});
    CHECK(s.covers({kMinToken, -7}));
    CHECK(s.missing({-7, 9}) == std::vector<TokenRange>{{0, 9}});
  }
}
