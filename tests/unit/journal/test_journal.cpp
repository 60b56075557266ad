#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/journal/journal.h"

namespace fs = std::filesystem;
using namespace zdm::journal;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/zdm-journal-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

Write sample(std::string body, std::string table = "ks.t") {
  Write w;
  w.reason = Reason::kTargetDisabled;
  w.version = 4;
  w.opcode = 0x07;
  w.journaled_at_ms = 1700000000000;
  w.keyspace = "ks";
  w.table = std::move(table);
  w.body = std::move(body);
  return w;
}

}  // namespace

TEST_CASE("journal: writes and settlements read back in order, unsettled ones counted") {
  TempDir d;
  auto budget = std::make_shared<Budget>(1 << 20);
  {
    Writer w(d.path, 1, 0, budget, 1 << 16);
    Write a = sample("first"), b = sample(std::string(300, 'x')), c = sample("third", "ks.u");
    CHECK(w.append(a) == 1);
    CHECK(w.append(b) == 2);
    CHECK(w.append(c) == 3);
    w.settle(2, Settlement::kTargetApplied);
    CHECK(w.open_writes() == 2);
    w.sync();
  }
  auto segs = list_segments(d.path);
  REQUIRE(segs.size() == 1);
  CHECK(writer_of(segs[0]) == "0000000000001-w0");
  auto scan = read_segment(segs[0]);
  CHECK_FALSE(scan.torn);
  REQUIRE(scan.writes.size() == 3);
  CHECK(scan.writes[0].body == "first");
  CHECK(scan.writes[1].body.size() == 300);
  CHECK(scan.writes[2].table == "ks.u");
  CHECK(scan.writes[2].reason == Reason::kTargetDisabled);
  CHECK(scan.writes[2].journaled_at_ms == 1700000000000);
  CHECK(scan.settled == std::vector<uint64_t>{2});
  CHECK(scan.valid_bytes == fs::file_size(segs[0]));
  auto sum = summarize(d.path);
  CHECK(sum.unsettled == 2);
  CHECK(sum.torn == 0);
}

TEST_CASE("journal: a torn tail is reported and what precedes it is intact") {
  TempDir d;
  auto budget = std::make_shared<Budget>(1 << 20);
  {
    Writer w(d.path, 1, 0, budget, 1 << 16);
    Write a = sample("kept"), b = sample("torn away");
    w.append(a);
    w.append(b);
  }
  auto seg = list_segments(d.path).at(0);
  const auto size = fs::file_size(seg);
  SUBCASE("cut short") {
    fs::resize_file(seg, size - 3);
  }
  SUBCASE("a flipped byte") {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 2));
    f.put('\x7f');
  }
  auto scan = read_segment(seg);
  REQUIRE(scan.torn);
  REQUIRE(scan.writes.size() == 1);
  CHECK(scan.writes[0].body == "kept");
  // Reading on from the last intact record finds nothing more.
  auto again = read_segment(seg, scan.valid_bytes);
  CHECK(again.writes.empty());
  CHECK(summarize(d.path).torn == 1);
}

TEST_CASE("journal: not a segment is an error naming the file") {
  TempDir d;
  std::ofstream(d.path / "x.zdmj") << "hello";
  CHECK_THROWS_WITH_AS(read_segment(d.path / "x.zdmj"), doctest::Contains("x.zdmj"),
                       std::runtime_error);
}

TEST_CASE("journal: the budget bounds it, settled segments are deleted") {
  TempDir d;
  auto budget = std::make_shared<Budget>(8192);
  Writer w(d.path, 7, 1, budget, 4096);
  std::vector<uint64_t> seqs;
  for (;;) {
    Write x = sample(std::string(500, 'y'));
    auto s = w.append(x);
    if (!s) break;
    seqs.push_back(*s);
  }
  CHECK(seqs.size() >= 10);
  CHECK(budget->bytes.load() <= 8192);
  w.flush();
  const auto segments_full = list_segments(d.path).size();
  CHECK(segments_full >= 2);
  for (auto s : seqs) w.settle(s, Settlement::kTargetApplied);
  w.flush();
  // Every closed segment went; the one appended to stays.
  CHECK(list_segments(d.path).size() == 1);
  CHECK(w.open_writes() == 0);
  Write more = sample("room again");
  CHECK(w.append(more));
}

TEST_CASE("journal: prune drops an earlier run with nothing to replay, keeps one with writes") {
  TempDir d;
  auto budget = std::make_shared<Budget>(1 << 20);
  {
    Writer done(d.path, 1, 0, budget, 1 << 16);
    Write a = sample("a");
    done.settle(*done.append(a), Settlement::kOriginFailed);
    Writer pending(d.path, 2, 0, budget, 1 << 16);
    Write b = sample("b");
    pending.append(b);
  }
  auto left = prune(d.path);
  CHECK(left.unsettled == 1);
  auto segs = list_segments(d.path);
  REQUIRE(segs.size() == 1);
  CHECK(writer_of(segs[0]) == "0000000000002-w0");
}
