#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/checkpoint.h"

using namespace zdm::data;

TEST_CASE("the checkpoint file") {
  SUBCASE("lines of done ranges, per table, with their rows and bytes") {
    std::string text = checkpoint_header("keyspace=ks origin=o target=t") + "\n" +
                       checkpoint_line("ks.a", {-10, 0}, 5, 50) + "\n" +
                       checkpoint_line("ks.a", {0, 10}, 1, 10) + "\n" +
                       checkpoint_line("ks.b", {kMinToken, kMaxToken}, 7, 70) + "\n";
    CHECK(text.find("done ks.a -10 0 5 50\n") != std::string::npos);
    auto s = parse_checkpoint(text, "cp");
    CHECK(s.job == "keyspace=ks origin=o target=t");
    CHECK(s.ranges == 3);
    CHECK(s.done["ks.a"].ranges() == std::vector<TokenRange>{{-10, 10}});
    CHECK(s.done["ks.b"].covers({kMinToken, kMaxToken}));
    CHECK(s.rows["ks.a"] == 6);
    CHECK(s.bytes["ks.b"] == 70);
  }
  SUBCASE("a last line cut short by a crash is ignored") {
    std::string text = checkpoint_header("j") + "\ndone ks.a 1 2 3 4\ndone ks.a 5 6";
    auto s = parse_checkpoint(text, "cp");
    CHECK(s.ranges == 1);
    CHECK(!s.done["ks.a"].covers({5, 6}));
  }
  SUBCASE("a file that is not a checkpoint, or a bad line in it, is refused") {
    CHECK_THROWS_WITH_AS(parse_checkpoint("hello\n", "f"),
                         "f is not a zdm-data checkpoint (first line: 'hello')", CheckpointError);
    CHECK_THROWS_WITH_AS(
        parse_checkpoint(checkpoint_header("j") + "\nnope\ndone ks.a 1 2 3 4\n", "f"),
        "f:2: not a checkpoint line: 'nope'", CheckpointError);
  }
  SUBCASE("written, read back by the next run, refused for another job") {
    auto path = (std::filesystem::temp_directory_path() / "zdm-data-test.checkpoint").string();
    std::filesystem::remove(path);
    {
      Checkpoint cp(path, "job-1");
      CHECK(cp.previous().ranges == 0);
      cp.record("ks.a", {1, 2}, 10, 100);
      cp.record("ks.a", {2, 3}, 20, 200);
    }
    {
      std::ofstream(path, std::ios::app) << "done ks.a 3 4";  // a crash mid-line
      Checkpoint cp(path, "job-1");
      CHECK(cp.previous().ranges == 2);
      CHECK(cp.previous().done.at("ks.a").covers({1, 3}));
      CHECK(cp.previous().rows.at("ks.a") == 30);
      cp.record("ks.a", {3, 4}, 1, 1);
      cp.flush();
    }
    {
      Checkpoint cp(path, "job-1");
      CHECK(cp.previous().ranges == 3);
    }
    CHECK_THROWS_AS(Checkpoint(path, "job-2"), CheckpointError);
    std::filesystem::remove(path);
  }
}
