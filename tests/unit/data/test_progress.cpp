#include <doctest/doctest.h>

#include "data/progress.h"

using namespace zdm::data;
using namespace std::chrono_literals;

TEST_CASE("the rate limit") {
  SUBCASE("no limit: never wait") {
    RateLimiter r(0, 0);
    CHECK(r.take(1'000'000, 1'000'000'000, RateLimiter::Clock::now()) == 0ns);
  }
  SUBCASE("rows/s: pages wait their turn, so the average stays at the limit") {
    RateLimiter r(1000, 0);
    auto t0 = RateLimiter::Clock::now();
    CHECK(r.take(500, 0, t0) == 0ns);
    CHECK(r.take(500, 0, t0) == 400ms);  // 0.5 s of budget, less 0.1 s of burst
    CHECK(r.take(500, 0, t0) == 900ms);
    // After a long pause, only a tenth of a second of credit.
    auto later = t0 + 10s;
    CHECK(r.take(100, 0, later) == 0ns);
    CHECK(r.take(100, 0, later) == 0ns);
    CHECK(r.take(100, 0, later) == 100ms);
  }
  SUBCASE("bytes/s: the stricter of the two limits wins") {
    RateLimiter r(1'000'000, 1000);
    auto t0 = RateLimiter::Clock::now();
    CHECK(r.take(1, 2000, t0) == 0ns);
    CHECK(r.take(1, 0, t0) == 1900ms);
  }
}

TEST_CASE("progress lines") {
  ProgressSnapshot s;
  s.rows = 1234567;
  s.bytes = 12'300'000;
  s.ranges_done = 64;
  s.ranges_total = 256;
  s.seconds = 30;
  SUBCASE("plain lines for logs") {
    CHECK(progress_line(s, false) ==
          "progress: 25% rows=1234567 MB=12.3 ranges=64/256 rows/s=41152 MB/s=0.41 retries=0 "
          "eta=90s");
  }
  SUBCASE("a bar for terminals") {
    CHECK(progress_line(s, true, 8) ==
          "[##......]  25% 1,234,567 rows 12.3 MB 64/256 ranges 41,152 rows/s 0.4 MB/s ETA 1:30");
  }
  SUBCASE("replay: writes applied of those to replay") {
    ProgressSnapshot r;
    r.replay = true;
    r.rows = r.ranges_done = 1000;
    r.ranges_total = 4000;
    r.bytes = 150'000;
    r.seconds = 2;
    CHECK(progress_line(r, false) ==
          "progress: 25% writes=1000/4000 MB=0.1 writes/s=500 retries=0 eta=6s");
    CHECK(progress_line(r, true, 8) ==
          "[##......]  25% 1,000/4,000 writes 0.1 MB 500 writes/s ETA 0:06");
  }
  SUBCASE("thousands separators") {
    CHECK(thousands(0) == "0");
    CHECK(thousands(999) == "999");
    CHECK(thousands(1000) == "1,000");
  }
}
