#include "tests/bench/histogram.h"

#include <doctest/doctest.h>

using zdm::bench::Histogram;

TEST_CASE("Histogram") {
  SUBCASE("values below 128 ns are kept exactly") {
    for (uint64_t v = 0; v < 128; ++v) {
      CHECK(Histogram::index(v) == v);
      CHECK(Histogram::upper(Histogram::index(v)) == v);
    }
  }
  SUBCASE("every value lies in its bucket, and a bucket is at most 1/64 of its values wide") {
    for (uint64_t v = 1; v < (uint64_t{1} << 39); v = v * 3 / 2 + 1) {
      std::size_t i = Histogram::index(v);
      CHECK(Histogram::upper(i) >= v);
      CHECK(i < Histogram::kBuckets);
      if (i > 0) CHECK(Histogram::upper(i - 1) < v);
      CHECK(static_cast<double>(Histogram::upper(i) - v) <= static_cast<double>(v) / 64.0);
    }
  }
  SUBCASE("buckets are contiguous: each starts right after the previous one ends") {
    for (std::size_t i = 1; i + 1 < Histogram::kBuckets; ++i)
      CHECK(Histogram::index(Histogram::upper(i - 1) + 1) == i);
  }
  SUBCASE("values past 2^40 ns land in the last bucket") {
    CHECK(Histogram::index(uint64_t{1} << 45) == Histogram::kBuckets - 1);
  }
  SUBCASE("quantiles of 1..1000 us") {
    Histogram h;
    for (uint64_t us = 1; us <= 1000; ++us) h.record(us * 1000);
    CHECK(h.count() == 1000);
    CHECK(h.max() == 1000000);
    auto near = [](uint64_t got, double want) {
      return static_cast<double>(got) >= want && static_cast<double>(got) <= want * 1.016;
    };
    CHECK(near(h.quantile(0.5), 500000));
    CHECK(near(h.quantile(0.99), 990000));
    CHECK(near(h.quantile(0.999), 999000));
    CHECK(h.quantile(1.0) == 1000000);  // capped at the largest value recorded
    CHECK(h.mean() == doctest::Approx(500500.0));
  }
  SUBCASE("an empty histogram answers 0; add() merges counts") {
    Histogram a, b;
    CHECK(a.quantile(0.99) == 0);
    a.record(10);
    b.record(20);
    a.add(b);
    CHECK(a.count() == 2);
    CHECK(a.quantile(0.5) == 10);
    CHECK(a.quantile(1) == 20);
  }
}
