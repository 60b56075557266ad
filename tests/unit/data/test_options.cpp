#include <doctest/doctest.h>

#include <map>

#include "data/options.h"

using namespace zdm::data;

namespace {
ParseResult parse(std::vector<const char*> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "zdm-data");
  return parse_options(static_cast<int>(args.size()), args.data(),
                       [env](const char* n) -> const char* {
                         auto it = env.find(n);
                         return it == env.end() ? nullptr : it->second.c_str();
                       });
}
}  // namespace

TEST_CASE("the command line") {
  SUBCASE("a backfill with its defaults") {
    auto r = parse({"backfill", "--origin", "10.0.0.1,10.0.0.2", "--target", "10.1.0.1:9043", "-k",
                    "ks", "-t", "a,b", "-t", "c"});
    REQUIRE(r.options);
    const auto& o = *r.options;
    CHECK(o.command == Command::kBackfill);
    CHECK(o.origin.contact_points == std::vector<std::string>{"10.0.0.1", "10.0.0.2"});
    CHECK(o.target.contact_points == std::vector<std::string>{"10.1.0.1:9043"});
    CHECK(o.tables == std::vector<std::string>{"a", "b", "c"});
    CHECK(o.checkpoint == "zdm-data-ks.checkpoint");
    CHECK(o.threads == 1);
    CHECK(o.resume);
  }
  SUBCASE("passwords from the environment when not given") {
    auto r = parse({"validate", "--origin", "a", "--target", "b", "-k", "ks", "--origin-username",
                    "u", "--target-password", "given"},
                   {{"ZDM_DATA_ORIGIN_PASSWORD", "secret"}, {"ZDM_DATA_TARGET_PASSWORD", "env"}});
    REQUIRE(r.options);
    CHECK(r.options->origin.password == "secret");
    CHECK(r.options->target.password == "given");
    auto cfg = cluster_config(*r.options, true);
    CHECK(cfg.connect.credentials.username == "u");
    CHECK(cfg.max_attempts == 10);
    CHECK(cfg.write_consistency == zdm::cql::Consistency::kLocalQuorum);
  }
  SUBCASE("one clear line for what cannot work") {
    auto fails = [](std::vector<const char*> a, const char* msg) {
      CHECK_THROWS_WITH_AS(parse(a), msg, OptionsError);
    };
    fails({"copy"}, "unknown command 'copy' (backfill, validate, replay or journal-status)");
    fails({"backfill", "--target", "b", "-k", "ks"},
          "--origin is required (contact points of origin)");
    fails({"backfill", "--origin", "a", "--target", "b"}, "-k/--keyspace is required");
    fails({"backfill", "--origin", "a", "--target", "b", "-k", "ks", "--repair"},
          "--repair is an option of validate, not backfill");
    fails({"validate", "--origin", "a", "--target", "b", "-k", "ks", "--delete-extra"},
          "--delete-extra needs --repair");
    fails({"validate", "--origin", "a", "--target", "b", "-k", "ks", "--sample", "0"},
          "--sample must be a percentage in (0, 100]");
    fails({"backfill", "--origin", "a", "--target", "b", "-k", "ks", "--threads", "0"},
          "--threads must be at least 1");
    fails(
        {"backfill", "--origin", "a", "--target", "b", "-k", "ks", "--origin-consistency", "MOST"},
        "--origin-consistency: unknown consistency level 'MOST'");
    fails({"backfill", "--origin", "a", "--target", "b", "-k", "ks", "--target-tls-cert", "c.pem"},
          "--target-tls-cert/--target-tls-key need --target-tls-ca");
  }
  SUBCASE("replay: the journal and target's options only") {
    auto r = parse({"replay", "--journal", "/j1", "--journal", "/j2", "--target", "b",
                    "--target-tls-ca", "ca.pem", "--rate", "500", "--consistency", "ONE"},
                   {{"ZDM_DATA_TARGET_PASSWORD", "env"}});
    REQUIRE(r.options);
    const auto& o = *r.options;
    CHECK(o.command == Command::kReplay);
    CHECK(o.journals == std::vector<std::string>{"/j1", "/j2"});
    CHECK(o.target.contact_points == std::vector<std::string>{"b"});
    CHECK(o.target.password == "env");
    CHECK(o.rate_writes == 500);
    CHECK(o.replay_consistency == "ONE");
    CHECK(!o.dry_run);
    CHECK(parse({"replay", "--journal", "/j", "--target", "b"}).options->rate_writes == 2000);
    // --dry-run and journal-status need no cluster at all.
    CHECK(parse({"replay", "--journal", "/j", "--dry-run"}).options->dry_run);
    auto st = parse({"journal-status", "--journal", "/j", "--json"});
    REQUIRE(st.options);
    CHECK(st.options->command == Command::kJournalStatus);
    CHECK(st.options->json);
    auto fails = [](std::vector<const char*> a, const char* msg) {
      CHECK_THROWS_WITH_AS(parse(a), msg, OptionsError);
    };
    fails({"replay", "--target", "b"}, "--journal is required (a journal directory)");
    fails({"replay", "--journal", "/j"}, "--target is required (contact points of target)");
    fails({"replay", "--journal", "/j", "--target", "b", "-k", "ks"},
          "--keyspace is an option of backfill or validate, not replay");
    fails({"replay", "--journal", "/j", "--target", "b", "--json"},
          "--json is an option of validate or journal-status, not replay");
    fails({"journal-status", "--journal", "/j", "--dry-run"},
          "--dry-run is an option of replay, not journal-status");
    fails({"backfill", "--origin", "a", "--target", "b", "-k", "ks", "--journal", "/j"},
          "--journal is an option of replay or journal-status, not backfill");
    fails({"replay", "--journal", "/j", "--target", "b", "--consistency", "MOST"},
          "--consistency: unknown consistency level 'MOST'");
    fails({"replay", "--journal", "/j", "--target", "b", "--rate", "-1"},
          "--rate must not be negative");
  }
  SUBCASE("a missing CA file names the option") {
    auto r = parse({"backfill", "--origin", "a", "--target", "b", "-k", "ks", "--target-tls-ca",
                    "/nonexistent/ca.pem"});
    REQUIRE(r.options);
    CHECK_THROWS_AS(cluster_config(*r.options, false), OptionsError);
  }
  SUBCASE("help and version") {
    auto r = parse({"--help"});
    CHECK(!r.options);
    CHECK(r.exit_code == 0);
    CHECK(r.text.find("usage: zdm-data COMMAND") == 0);
    CHECK(parse({}).exit_code == 2);
  }
}

TEST_CASE("the partition check's options") {
  auto r = parse({"replay", "--journal", "/j", "--target", "b", "--validate", "--origin", "a",
                  "--check-max-rows", "50"});
  CHECK(r.options->replay_validate);
  CHECK(r.options->origin.contact_points == std::vector<std::string>{"a"});
  CHECK(r.options->check_max_rows == 50);
  CHECK_THROWS_WITH_AS(parse({"replay", "--journal", "/j", "--target", "b", "--validate"}),
                       "--origin is required (contact points of origin)", OptionsError);
  auto v = parse({"validate", "--keys-from-journal", "/j1", "--keys-from-journal", "/j2",
                  "--origin", "a", "--target", "b"});
  CHECK(v.options->keys_from_journal == std::vector<std::string>{"/j1", "/j2"});
  CHECK(v.options->keyspace.empty());
  CHECK_THROWS_AS(parse({"validate", "--keys-from-journal", "/j", "--origin", "a", "--target", "b",
                         "--repair"}),
                  OptionsError);
  CHECK_THROWS_AS(parse({"backfill", "--keys-from-journal", "/j", "--origin", "a", "--target", "b",
                         "-k", "ks"}),
                  OptionsError);
}
