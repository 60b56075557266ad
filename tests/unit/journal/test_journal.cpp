#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

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

// ---------------------------------------------------------------------------------------------
// Replay checkpoints and what is left to replay.

namespace {

// A segment file of the given encoded records, after the magic.
void segment_file(const fs::path& p, const std::string& records) {
  std::ofstream out(p, std::ios::binary);
  out << kMagic << records;
}

std::string writes(std::initializer_list<uint64_t> seqs, std::string table = "ks.t") {
  std::string out;
  for (auto s : seqs) {
    Write w = sample("body", table);
    w.seq = s;
    encode_write(w, out);
  }
  return out;
}

std::string settled(std::initializer_list<uint64_t> seqs) {
  std::string out;
  for (auto s : seqs) encode_settled(s, Settlement::kTargetApplied, out);
  return out;
}

}  // namespace

TEST_CASE("journal: the replay checkpoint side file") {
  SUBCASE("one line, read back") {
    Mark m{1234, 17};
    CHECK(mark_text(m) == "zdm-data replayed 1 1234 17\n");
    CHECK(parse_mark(mark_text(m), "f") == m);
    CHECK(mark_path("/j/1-w0-000001.zdmj") == fs::path("/j/1-w0-000001.zdmj.replayed"));
  }
  SUBCASE("anything else is refused, naming the file") {
    CHECK_THROWS_WITH_AS(parse_mark("zdm-data replayed 1 12", "f"),
                         "f is not a zdm-data replay checkpoint (expected 'zdm-data replayed 1 "
                         "<offset> <last seq>')",
                         std::runtime_error);
    CHECK_THROWS_AS(parse_mark("zdm-data replayed 2 1 1\n", "f"), std::runtime_error);
  }
  SUBCASE("written atomically next to the segment, removed with it") {
    TempDir d;
    const fs::path seg = d.path / "0000000000001-w0-000001.zdmj";
    segment_file(seg, "");
    CHECK(read_mark(seg) == Mark{});
    write_mark(seg, Mark{8, 3});
    CHECK(read_mark(seg) == Mark{8, 3});
    write_mark(seg, Mark{80, 9});
    CHECK(read_mark(seg) == Mark{80, 9});
    CHECK(!fs::exists(mark_path(seg).string() + ".tmp"));
    CHECK(start_offset(seg, Mark{80, 9}) == 0);  // longer than the file: read from the start
    CHECK(start_offset(seg, Mark{8, 9}) == 8);
    remove_segment(seg);
    CHECK(!fs::exists(seg));
    CHECK(!fs::exists(mark_path(seg)));
  }
  SUBCASE("a side file that cannot be read is an error naming it") {
    TempDir d;
    const fs::path seg = d.path / "0000000000001-w0-000001.zdmj";
    segment_file(seg, "");
    std::ofstream(mark_path(seg)) << "garbage\n";
    CHECK_THROWS_WITH_AS(read_mark(seg), doctest::Contains(mark_path(seg).c_str()),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(write_mark(d.path / "missing" / "x.zdmj", Mark{}),
                         doctest::Contains("cannot write"), std::runtime_error);
  }
  SUBCASE("side files of segments the proxy deleted go") {
    TempDir d;
    const fs::path a = d.path / "0000000000001-w0-000001.zdmj",
                   b = d.path / "0000000000001-w0-000002.zdmj";
    segment_file(a, "");
    segment_file(b, "");
    write_mark(a, Mark{8, 0});
    write_mark(b, Mark{8, 0});
    fs::remove(a);
    CHECK(remove_orphan_marks(d.path) == 1);
    CHECK(!fs::exists(mark_path(a)));
    CHECK(fs::exists(mark_path(b)));
  }
}

TEST_CASE("journal: what is left to replay") {
  SUBCASE("writes neither settled nor applied by an earlier replay, in file order") {
    SegmentScan scan;
    for (uint64_t s : {3, 4, 5, 6, 7}) {
      Write w = sample("b");
      w.seq = s;
      scan.writes.push_back(w);
    }
    auto sel = select(scan, Mark{0, 4}, {3, 6, 9});
    CHECK(sel.apply == std::vector<std::size_t>{2, 4});  // seqs 5 and 7
    CHECK(sel.settled == 2);
    CHECK(sel.replayed == 1);  // 4
  }
  SUBCASE("segments grouped by writer, in name order; an earlier run's writers known") {
    TempDir d;
    for (const char* n :
         {"0000000000002-w0-000001.zdmj", "0000000000001-w10-000001.zdmj",
          "0000000000001-w1-000002.zdmj", "0000000000001-w1-000001.zdmj", "notes.txt"})
      segment_file(d.path / n, "");
    auto ws = writers_of(d.path);
    REQUIRE(ws.size() == 3);
    CHECK(ws[0].writer == "0000000000001-w1");
    CHECK(ws[0].segments == std::vector<fs::path>{d.path / "0000000000001-w1-000001.zdmj",
                                                  d.path / "0000000000001-w1-000002.zdmj"});
    CHECK(ws[0].earlier_run);
    CHECK(ws[1].writer == "0000000000001-w10");
    CHECK(ws[2].writer == "0000000000002-w0");
    CHECK(!ws[2].earlier_run);
    CHECK(writers_of(d.path / "missing").empty());
  }
  SUBCASE("a writer's settlements count across its segments, marks keep applied writes out") {
    TempDir d;
    const fs::path a = d.path / "0000000000001-w0-000001.zdmj",
                   b = d.path / "0000000000001-w0-000002.zdmj";
    const std::string first = writes({1});
    segment_file(a, first + writes({2, 3}) + settled({3}));
    segment_file(b, settled({2}) + writes({4, 5}));
    write_mark(a, Mark{kMagic.size() + first.size(), 0});  // seq 1 handled
    write_mark(b, Mark{0, 4});                             // seq 4 applied
    const auto ws = writers_of(d.path);
    REQUIRE(ws.size() == 1);
    std::vector<std::vector<std::size_t>> apply;
    std::vector<uint64_t> replayed;
    const auto all_settled = survey_writer(ws[0], [&](const MarkedSegment& m) {
      apply.push_back(m.selection.apply);
      replayed.push_back(m.selection.replayed);
      CHECK(m.bytes == fs::file_size(m.path));
    });
    CHECK(all_settled == std::set<uint64_t>{2, 3});
    CHECK(apply == std::vector<std::vector<std::size_t>>{{}, {1}});  // seq 5
    CHECK(replayed == std::vector<uint64_t>{0, 1});
    CHECK(summarize(d.path).unsettled == 1);
  }
  SUBCASE("a bad side file: thrown, or (tolerated) ignored so every write counts") {
    TempDir d;
    const fs::path a = d.path / "0000000000001-w0-000001.zdmj";
    segment_file(a, writes({1, 2}));
    std::ofstream(mark_path(a)) << "zdm-data replayed 9\n";
    const auto w = writers_of(d.path).at(0);
    CHECK_THROWS_WITH_AS(survey_writer(w, [](const MarkedSegment&) {}),
                         doctest::Contains(mark_path(a).c_str()), std::runtime_error);
    std::optional<std::string> why;
    survey_writer(
        w, [&](const MarkedSegment& m) { why = m.mark_error; }, BadFiles::kTolerate);
    CHECK(why);
    const auto s = summarize(d.path);
    CHECK(s.unsettled == 2);
    CHECK(s.torn == 0);
  }
  SUBCASE("a file that is not a segment: thrown, or (tolerated) counted as torn") {
    TempDir d;
    std::ofstream(d.path / "0000000000001-w0-000001.zdmj") << "hello";
    const auto w = writers_of(d.path).at(0);
    CHECK_THROWS_AS(survey_writer(w, [](const MarkedSegment&) {}), std::runtime_error);
    CHECK(summarize(d.path).torn == 1);
  }
}

TEST_CASE("journal: summarize honours the replay marks") {
  // The proxy keeps appending to its newest segment; a replay marked it done up to its end.
  TempDir d;
  auto budget = std::make_shared<Budget>(1 << 20);
  Writer w(d.path, 1, 0, budget, 1 << 16);
  Write a = sample("a"), b = sample("b");
  w.append(a);
  w.append(b);
  w.flush();
  const fs::path seg = list_segments(d.path).at(0);
  CHECK(summarize(d.path).unsettled == 2);
  SUBCASE("every write covered by the mark: nothing to replay") {
    write_mark(seg, Mark{fs::file_size(seg), 2});
    CHECK(summarize(d.path).unsettled == 0);
    SUBCASE("one more write past the mark") {
      Write c = sample("c");
      w.append(c);
      w.flush();
      CHECK(summarize(d.path).unsettled == 1);
    }
  }
  SUBCASE("a replay stopped after the first write") {
    write_mark(seg, Mark{0, 1});
    CHECK(summarize(d.path).unsettled == 1);
  }
}

TEST_CASE("journal: prune drops an earlier run fully replayed, with its side files") {
  TempDir d;
  const fs::path done = d.path / "0000000000001-w0-000001.zdmj",
                 done_too = d.path / "0000000000001-w0-000002.zdmj",
                 open = d.path / "0000000000002-w0-000001.zdmj",
                 gone = d.path / "0000000000002-w0-000000.zdmj";
  segment_file(done, writes({1, 2}));
  write_mark(done, Mark{fs::file_size(done), 2});
  segment_file(done_too, writes({3}) + settled({3}));
  segment_file(open, writes({1, 2}));
  write_mark(open, Mark{0, 1});  // seq 2 still to replay
  segment_file(gone, "");
  write_mark(gone, Mark{8, 0});
  fs::remove(gone);  // the proxy deleted it: its side file is an orphan
  const auto left = prune(d.path);
  CHECK(left.unsettled == 1);
  CHECK(left.segments == 1);
  CHECK(list_segments(d.path) == std::vector<fs::path>{open});
  CHECK(!fs::exists(mark_path(done)));
  CHECK(!fs::exists(mark_path(gone)));
  CHECK(fs::exists(mark_path(open)));
}
