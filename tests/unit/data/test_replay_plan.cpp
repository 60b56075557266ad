#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "data/replay_plan.h"

using namespace zdm::data::replay;
namespace journal = zdm::journal;

namespace {

// A fresh directory under the temporary directory.
fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("zdm-data-test-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

journal::Write write(uint64_t seq, std::string table, std::string body = "body") {
  journal::Write w;
  w.seq = seq;
  w.keyspace = "ks";
  w.table = std::move(table);
  w.body = std::move(body);
  return w;
}

// A segment of the given records (each encoded), after the magic.
void segment(const fs::path& p, const std::string& records) {
  std::ofstream out(p, std::ios::binary);
  out << journal::kMagic << records;
}

std::string writes(std::initializer_list<journal::Write> ws) {
  std::string out;
  for (const auto& w : ws) journal::encode_write(w, out);
  return out;
}
std::string settled(std::initializer_list<uint64_t> seqs) {
  std::string out;
  for (auto s : seqs) journal::encode_settled(s, journal::Settlement::kTargetApplied, out);
  return out;
}

// A QUERY body (§4.1.4): the query [long string], then consistency [short] and flags [byte].
std::string query_body(const std::string& q, uint16_t cl) {
  std::string b;
  for (int i = 3; i >= 0; --i) b.push_back(static_cast<char>((q.size() >> (8 * i)) & 0xff));
  b += q;
  b.push_back(static_cast<char>(cl >> 8));
  b.push_back(static_cast<char>(cl & 0xff));
  b.push_back('\0');
  return b;
}

}  // namespace

TEST_CASE("what to replay") {
  SUBCASE("the writers of a directory; one that is not there is an error") {
    auto d = fresh_dir("writers");
    segment(d / "0000000000001-w1-000001.zdmj", "");
    auto ws = writers_of(d);
    REQUIRE(ws.size() == 1);
    CHECK(ws[0].writer == "0000000000001-w1");
    CHECK_THROWS_WITH_AS(writers_of(d / "missing"), doctest::Contains("does not exist"),
                         ReplayError);
  }
  SUBCASE("a survey: settlements across a writer's segments, the marks, torn tails") {
    auto d = fresh_dir("survey");
    const fs::path a = d / "0000000000001-w0-000001.zdmj", b = d / "0000000000001-w0-000002.zdmj",
                   c = d / "0000000000001-w1-000001.zdmj";
    segment(a, writes({write(1, "ks.a"), write(2, "ks.a"), write(3, "ks.b")}) + settled({1}));
    // 2 is settled in the writer's next segment; the last record is cut short.
    std::string torn = writes({write(5, "ks.b")});
    torn.resize(torn.size() - 3);
    segment(b, settled({2}) + writes({write(4, "ks.a")}) + torn);
    segment(c, writes({write(1, "ks.b"), write(2, "ks.b")}));
    journal::write_mark(c, journal::Mark{0, 1});  // an earlier replay applied seq 1 of w1
    auto s = survey({d.string()});
    CHECK(s.segments == 3);
    CHECK(s.writers == 2);
    CHECK(s.writes == 6);
    CHECK(s.settled == 2);
    CHECK(s.replayed == 1);
    CHECK(s.pending == 3);  // w0: 3, 4; w1: 2
    CHECK(s.pending_by_table == std::map<std::string, uint64_t>{{"ks.a", 1}, {"ks.b", 2}});
    CHECK(s.pending_by_version == std::map<int, uint64_t>{{4, 3}});
    REQUIRE(s.torn.size() == 1);
    CHECK(s.torn[0].file == b.string());
    CHECK(s.torn[0].what.find("runs past the end of the file") != std::string::npos);
    CHECK(s.settled_seqs[0] == std::set<uint64_t>{1, 2});
    const std::string json = survey_json(s, {d.string()});
    CHECK(json.find("\"pending\":3") != std::string::npos);
    CHECK(json.find("\"tables\":{\"ks.a\":1,\"ks.b\":2}") != std::string::npos);
    CHECK(survey_text(s, {"J"}).starts_with(
        "journal J: 3 segments of 2 writers, " + std::to_string(s.bytes) +
        " bytes\nwrites: 3 to replay, 2 settled, 1 replayed earlier\n  ks.a  1 to replay\n"));
  }
  SUBCASE("a bad side file or segment is a ReplayError naming it (exit code 2)") {
    auto d = fresh_dir("bad");
    const fs::path a = d / "0000000000001-w0-000001.zdmj";
    segment(a, writes({write(1, "ks.a")}));
    std::ofstream(journal::mark_path(a)) << "zdm-data replayed 1\n";
    CHECK_THROWS_WITH_AS(survey({d.string()}), doctest::Contains(".zdmj.replayed"), ReplayError);
    fs::remove(journal::mark_path(a));
    std::ofstream(a) << "not a segment";
    CHECK_THROWS_WITH_AS(survey({d.string()}), doctest::Contains("not a zdm journal segment"),
                         ReplayError);
  }
  SUBCASE("a mark past a record boundary: the next run reads from there") {
    auto d = fresh_dir("offset");
    const fs::path a = d / "0000000000001-w0-000001.zdmj";
    const std::string first = writes({write(1, "ks.a")});
    segment(a, first + writes({write(2, "ks.a")}));
    journal::write_mark(a, journal::Mark{journal::kMagic.size() + first.size(), 0});
    auto s = survey({d.string()});
    CHECK(s.writes == 1);
    CHECK(s.pending == 1);
  }
}

TEST_CASE("deleting applied segments") {
  // Not the newest of its writer: the proxy never appends to it again.
  CHECK(deletable(false, false, false, false, false));
  // The newest of a running writer stays, unless its run is over or --delete-all.
  CHECK(!deletable(true, false, false, false, false));
  CHECK(deletable(true, true, false, false, false));
  CHECK(deletable(true, false, true, false, false));
  // A torn tail keeps it, unless accepted.
  CHECK(!deletable(false, false, false, true, false));
  CHECK(deletable(false, false, false, true, true));
}

TEST_CASE("the request bodies") {
  SUBCASE("a QUERY's consistency is set, nothing else") {
    const std::string q = query_body("INSERT INTO t (a) VALUES (1)", 0x0006);
    const std::string one = with_consistency(4, 0x07, q, 0x0001);
    CHECK(one.substr(32, 2) == std::string("\0\1", 2));
    CHECK(one.size() == q.size());
    CHECK(one.substr(0, 32) == q.substr(0, 32));
    CHECK(one.substr(34) == q.substr(34));
  }
  SUBCASE("a body that ends before its consistency, or an opcode without one, is refused") {
    const std::string q = query_body("INSERT INTO t (a) VALUES (1)", 0x0006);
    CHECK_THROWS_WITH_AS(with_consistency(4, 0x07, q.substr(0, 33), 1),
                         doctest::Contains("ends before its consistency level"), ReplayError);
    CHECK_THROWS_WITH_AS(with_consistency(4, 0x05, q, 1), "opcode 5 has no consistency level",
                         ReplayError);
  }
  SUBCASE("a keyspace is quoted as CQL quotes names") {
    CHECK(quote_identifier("ks") == "\"ks\"");
    CHECK(quote_identifier("My\"Ks") == "\"My\"\"Ks\"");
  }
}
