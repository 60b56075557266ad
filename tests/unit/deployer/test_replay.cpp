// zdm-deploy replay and the cutover gate (deployer/replay.h): the command run on each proxy host
// (no password on it), zdm-data's summary and journal-status read back, the per-host lines, the
// gate's decision from each proxy's GET /api/v1/target, and both commands against fake hosts.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "engine/executor.h"
#include "engine/plan.h"
#include "engine/playbook.h"
#include "fake_transport.h"
#include "inventory/zdm_vars.h"
#include "replay.h"
#include "template.h"

using namespace zdm::deploy;
using zdm::deploy::testing::FakeHosts;

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string state(long long unsettled, long long bytes = 4096) {
  return fmt::format(
      R"({{"enabled": true, "primary_cluster": "ORIGIN", "target_failure_mode": "fail",
           "isolated": false, "journal": {{"dir": "/j", "bytes": {}, "unsettled": {}}}}})",
      bytes, unsettled);
}

TargetHostResult answer(const std::string& host, int status, const std::string& body) {
  return classify_target_answer(host, AdminAnswer{status, body});
}

const char* kSummary =
    "replay: segments=3 applied=7 skipped_settled=2 skipped_replayed=0 torn=1 deleted=1 "
    "retries=2 seconds=0.22\n";
// With --validate: the check report above the summary, the counts in it.
const char* kValidatedSummary =
    "differing partition: ks.users id=7: column name: origin 'a', target 'b'\n"
    "differing partition: ks.orders id=1: missing on target\n"
    "differing partition: ks.users id=9: missing on target\n"
    "unverifiable: 1 x ks.big: partition over 10000 rows\n"
    "replay: segments=3 applied=7 skipped_settled=0 skipped_replayed=0 torn=0 deleted=1 "
    "retries=0 checked=12 equal=9 differing=3 unverifiable=1 check_errors=0 kept_unconfirmed=2 "
    "seconds=0.40\n";
const char* kEqualSummary =
    "replay: segments=2 applied=5 skipped_settled=0 skipped_replayed=0 torn=0 deleted=2 "
    "retries=0 checked=4 equal=4 differing=0 unverifiable=0 check_errors=0 kept_unconfirmed=0 "
    "seconds=0.10\n";
const char* kLeft =
    R"({"journals":["/j"],"segments":1,"bytes":2048,"writers":1,"writes":9,"pending":0,)"
    R"("settled":2,"replayed":7,"tables":{},"versions":{},"torn":[]})";

// Three proxies on fake SSH hosts (target authenticated with a password), the repository's
// playbooks, a small stand-in for the zdm-data binary, a state directory of its own.
struct Fleet {
  fs::path dir;
  CommonOptions opts;
  Fleet() {
    dir = fs::temp_directory_path() / ("zdm_test_replay." + std::to_string(getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "inv.ini") << "[proxies]\n"
                                      "p1 ansible_host=127.0.9.1 zdm_proxy_home_dir=/srv/p1\n"
                                      "p2 ansible_host=127.0.9.2 zdm_proxy_home_dir=/srv/p2\n"
                                      "p3 ansible_host=127.0.9.3 zdm_proxy_home_dir=/srv/p3 "
                                      "proxy_journal_dir=/data/journal\n"
                                      "[proxies:vars]\n"
                                      "origin_contact_points=127.0.9.10\n"
                                      "target_contact_points=127.0.9.20,127.0.9.21\n"
                                      "target_port=9043\n"
                                      "target_username=tu\ntarget_password=s3cret-target\n";
    std::ofstream(dir / "zdm-data") << "#!/bin/sh\n";
    opts.command = "replay";
    opts.command_line = "zdm-deploy replay -i inv.ini";
    opts.inventory = (dir / "inv.ini").string();
    opts.extra_vars = {"zdm_data_binary=" + (dir / "zdm-data").string()};
    opts.playbook_dir = std::string(ZDM_SOURCE_DIR) + "/playbooks";
    opts.state_dir = (dir / "state").string();
    opts.ssh.ssh_config_path = "none";
    opts.forks = 5;
  }
  ~Fleet() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

TEST_CASE("replay_command: target's settings quoted, the password only in a file it deletes") {
  ReplayInvocation r;
  r.zdm_data = "/srv/p1/zdm-data/zdm-data";
  r.journal_dir = "/srv/p1/journal";
  r.contact_points = "10.0.0.1,10.0.0.2";
  r.port = "9043";
  CHECK(replay_command(r) ==
        "exec /srv/p1/zdm-data/zdm-data replay --journal /srv/p1/journal --target "
        "10.0.0.1,10.0.0.2 --target-port 9043 --progress none");
  r.username = "u s";
  r.credentials = "/srv/p1/zdm-data/replay.credentials";
  r.tls_ca = "/srv/p1/zdm-data/tls/target_ca.pem";
  r.rate = 500;
  std::string c = replay_command(r);
  CHECK(c.find("set -a && . /srv/p1/zdm-data/replay.credentials && set +a && rm -f "
               "/srv/p1/zdm-data/replay.credentials && exec ") == 0);
  CHECK(c.find(" --target-username 'u s'") != std::string::npos);
  CHECK(c.find(" --target-tls-ca /srv/p1/zdm-data/tls/target_ca.pem") != std::string::npos);
  CHECK(c.find("--target-tls-cert") == std::string::npos);
  CHECK(c.find(" --rate 500 ") != std::string::npos);
  CHECK(c.find("password") == std::string::npos);
  CHECK(replay_credentials_text("it's") == "ZDM_DATA_TARGET_PASSWORD='it'\"'\"'s'\n");
  CHECK(journal_status_command("/z", "/j k") == "/z journal-status --journal '/j k' --json");
}

TEST_CASE("zdm-data's summary line and journal-status --json read back") {
  auto s = parse_replay_summary("zdm-data: something\n" + std::string(kSummary));
  CHECK(s["applied"] == "7");
  CHECK(s["torn"] == "1");
  CHECK(s["seconds"] == "0.22");
  CHECK(parse_replay_summary("zdm-data: cannot connect\n").empty());

  JournalLeft l = parse_journal_status(kLeft);
  CHECK(l.segments == 1);
  CHECK(l.bytes == 2048);
  CHECK(l.pending == 0);
  CHECK(l.torn == 0);
  CHECK_THROWS_AS(parse_journal_status("zdm-data: journal directory /x does not exist"),
                  std::invalid_argument);
  CHECK_THROWS_AS(parse_journal_status(R"({"segments": 1})"), std::invalid_argument);

  CHECK(replay_outcome(0) == "ok");
  CHECK(replay_outcome(4) == "torn");
  CHECK(replay_outcome(1) == "failed");
  CHECK(replay_outcome(3) == "failed");
}

TEST_CASE("replay_result_line and the exit code") {
  ReplayHostResult ok{"p1", "ok", 0, 12, 0, JournalLeft{1, 1229, 0, 0}, "", std::nullopt};
  CHECK(replay_result_line(ok) ==
        "p1: replay ok (exit 0): 12 writes applied, 0 torn tails; left: 0 writes to replay, 1 "
        "segment, 1.2 KiB");
  ReplayHostResult torn{"p2",        "torn", 4, 1, 1, std::nullopt, "zdm-data: torn tail in x",
                        std::nullopt};
  CHECK(replay_result_line(torn) ==
        "p2: replay torn (exit 4): 1 write applied, 1 torn tail; zdm-data: torn tail in x");
  ReplayHostResult gone{
      "p3", "unreachable", -1, 0, 0, std::nullopt, "p3: connection refused", std::nullopt};
  CHECK(replay_result_line(gone) == "p3: unreachable: p3: connection refused");
  ReplayHostResult skipped{"p4", "skipped", -1, 0, 0, std::nullopt, "no journal", std::nullopt};
  CHECK(replay_exit_code({ok, skipped}) == kExitOk);
  CHECK(replay_exit_code({ok, torn}) == kExitHostFailed);
  CHECK(replay_exit_code({ok, torn, gone}) == kExitUnreachable);
  Json j = replay_summary_json({ok, torn}, 2);
  CHECK(j["exit_code"] == 2);
  CHECK(j["hosts"][0]["left"]["pending"] == 0);
  CHECK(j["hosts"][1]["left"].is_null());
  CHECK(j["hosts"][1]["torn"] == 1);
}

TEST_CASE("journal_gate: unsettled writes block, naming the hosts; 404 warns; override") {
  std::vector<TargetHostResult> clean = {answer("p1", 200, state(0)), answer("p2", 200, state(0))};
  GateDecision d = journal_gate(clean, false);
  CHECK(!d.refusal);
  CHECK(d.warnings.empty());

  std::vector<TargetHostResult> some = {
      answer("p1", 200, state(0)), answer("p2", 200, state(12, 5120)),
      answer("p3", 200, state(1, 100)), answer("p4", 404, "not found")};
  d = journal_gate(some, false);
  REQUIRE(d.refusal);
  CHECK(d.refusal->find("p2 (12 unsettled writes, 5.0 KiB), p3 (1 unsettled write, 100 B)") !=
        std::string::npos);
  CHECK(d.refusal->find("p1") == std::string::npos);
  CHECK(d.refusal->find("zdm-deploy replay -i INVENTORY") != std::string::npos);
  CHECK(d.refusal->find("--ignore-journal") != std::string::npos);
  REQUIRE(d.warnings.size() == 1);
  CHECK(d.warnings[0].find("p4 (no target switch (404") != std::string::npos);
  CHECK(d.unsettled_hosts == std::vector<std::string>{"p2:12", "p3:1"});

  d = journal_gate(some, true);
  CHECK(!d.refusal);
  REQUIRE(d.warnings.size() == 2);
  CHECK(d.warnings[1].find("--ignore-journal") != std::string::npos);
  CHECK(d.warnings[1].find("p2 (12 unsettled writes") != std::string::npos);

  TargetHostResult down;
  down.host = "p5";
  down.outcome = "unreachable";
  down.error = "p5: connection refused";
  d = journal_gate({down, answer("p6", 0, "")}, false);
  CHECK(!d.refusal);
  REQUIRE(d.warnings.size() == 1);
  CHECK(d.warnings[0].find("p5 (unreachable: p5: connection refused); p6 (failed: ") !=
        std::string::npos);

  CHECK(hosts_switching_to_target({{"a", "ORIGIN"}, {"b", " target"}, {"c", "TARGET"}}) ==
        std::vector<std::string>{"b", "c"});
}

TEST_CASE("zdm-deploy replay on fake hosts: uploads, no password on any command, audit") {
  Fleet fleet;
  auto hosts = std::make_shared<FakeHosts>([](const std::string& h, const std::string& cmd) {
    if (cmd.find(" replay --journal ") != std::string::npos) {
      if (h == "p2")
        return ExecResult{4, "replay: segments=2 applied=3 torn=1 deleted=0\n",
                          "zdm-data: torn tail in /srv/p2/journal/x.zdmj: bad crc\n", false};
      return ExecResult{0, kSummary, "", false};
    }
    if (cmd.find(" journal-status ") != std::string::npos) return ExecResult{0, kLeft, "", false};
    return ExecResult{0, "", "", false};
  });
  std::ostringstream out, err;
  int rc = replay_command_run(fleet.opts, ReplayOptions{250, true}, out, err, hosts);
  CHECK(rc == kExitHostFailed);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].find("p1: replay ok (exit 0): 7 writes applied, 1 torn tail; left: 0 writes") ==
        0);
  CHECK(lines[1].find("p2: replay torn (exit 4): 3 writes applied, 1 torn tail;") == 0);
  CHECK(lines[1].find("bad crc") != std::string::npos);
  CHECK(err.str().find("ERROR! replay: 1 of 3 proxies did not finish their journal: p2 (torn)") ==
        0);

  for (auto& [h, c] : hosts->commands()) {
    CAPTURE(c);
    CHECK(c.find("s3cret-target") == std::string::npos);
  }
  auto replays = hosts->commands_on("p1", " replay --journal ");
  REQUIRE(replays.size() == 1);
  CHECK(replays[0].find("--journal /srv/p1/journal --target 127.0.9.20,127.0.9.21 "
                        "--target-port 9043 --target-username tu --rate 250") != std::string::npos);
  CHECK(hosts->commands_on("p3", "--journal /data/journal").size() == 2);  // its own dir
  auto up = hosts->uploads();
  CHECK(up["p1:/srv/p1/zdm-data/zdm-data"] == "#!/bin/sh\n");
  CHECK(up["p1:/srv/p1/zdm-data/replay.credentials"] == "ZDM_DATA_TARGET_PASSWORD=s3cret-target\n");
  CHECK(hosts->commands_on("p1", "rm -f /srv/p1/zdm-data/replay.credentials").size() >= 1);

  auto local = lines_of(slurp(fs::path(fleet.opts.state_dir) / "audit.log"));
  REQUIRE(local.size() == 3);
  CHECK(local[0].find(" host=p1 ") != std::string::npos);
  CHECK(local[0].find(" outcome=ok applied=7 torn=1") != std::string::npos);
  CHECK(local[1].find(" outcome=torn applied=3 torn=1") != std::string::npos);
  CHECK(hosts->commands_on("p1", "/srv/p1/audit.log").size() == 1);
}

TEST_CASE("zdm-deploy replay: a failed zdm-data and an unreachable host are named") {
  Fleet fleet;
  auto hosts = std::make_shared<FakeHosts>([](const std::string&, const std::string& cmd) {
    if (cmd.find(" replay --journal ") != std::string::npos)
      return ExecResult{3, "", "zdm-data: cannot reach target 127.0.9.20:9043\n", false};
    if (cmd.find(" journal-status ") != std::string::npos) return ExecResult{0, kLeft, "", false};
    return ExecResult{0, "", "", false};
  });
  hosts->unreachable.insert("p3");
  std::ostringstream out, err;
  CHECK(replay_command_run(fleet.opts, ReplayOptions{}, out, err, hosts) == kExitUnreachable);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].find("p1: replay failed (exit 3): 0 writes applied") == 0);
  CHECK(lines[0].find("cannot reach target") != std::string::npos);
  CHECK(lines[2] == "p3: unreachable: p3: connection refused");
  CHECK(err.str().find("p1 (failed), p2 (failed), p3 (unreachable)") != std::string::npos);
  CHECK(hosts->commands_on("p1", "--rate").empty());  // zdm-data's default
}

TEST_CASE("replay_command --validate: origin's settings, both passwords only in the file") {
  ReplayInvocation r;
  r.zdm_data = "/srv/p1/zdm-data/zdm-data";
  r.journal_dir = "/srv/p1/journal";
  r.contact_points = "10.0.0.1";
  r.username = "tu";
  r.credentials = "/srv/p1/zdm-data/replay.credentials";
  r.validate = true;
  r.origin_contact_points = "10.0.1.1,10.0.1.2";
  r.origin_port = "9044";
  std::string c = replay_command(r);
  CHECK(c.find(" --validate --origin 10.0.1.1,10.0.1.2 --origin-port 9044 --progress none") !=
        std::string::npos);
  CHECK(c.find("--origin-username") == std::string::npos);
  CHECK(c.find("--origin-tls") == std::string::npos);
  r.origin_username = "o u";
  r.origin_tls_ca = "/srv/p1/zdm-data/tls/origin_ca.pem";
  r.origin_tls_cert = "/srv/p1/zdm-data/tls/origin_cert.pem";
  r.origin_tls_key = "/srv/p1/zdm-data/tls/origin_key.pem";
  c = replay_command(r);
  CHECK(c.find(" --origin-username 'o u' --origin-tls-ca /srv/p1/zdm-data/tls/origin_ca.pem "
               "--origin-tls-cert /srv/p1/zdm-data/tls/origin_cert.pem --origin-tls-key "
               "/srv/p1/zdm-data/tls/origin_key.pem --progress none") != std::string::npos);
  CHECK(c.find("password") == std::string::npos);
  CHECK(c.find("set -a && . /srv/p1/zdm-data/replay.credentials && ") == 0);

  CHECK(replay_credentials_text("t", "o'") ==
        "ZDM_DATA_TARGET_PASSWORD=t\nZDM_DATA_ORIGIN_PASSWORD='o'\"'\"''\n");
  CHECK(replay_credentials_text(std::nullopt, "o") == "ZDM_DATA_ORIGIN_PASSWORD=o\n");

  r.validate = false;  // --no-validate: the old command, origin's settings ignored
  c = replay_command(r);
  CHECK(c.find("--validate") == std::string::npos);
  CHECK(c.find("--origin") == std::string::npos);
}

TEST_CASE("replay --validate's counts read back: outcome, line, JSON") {
  auto s = parse_replay_summary(kValidatedSummary);
  CHECK(s["applied"] == "7");
  CHECK(s["seconds"] == "0.40");
  auto c = parse_replay_check(s, kValidatedSummary);
  REQUIRE(c);
  CHECK(c->checked == 12);
  CHECK(c->equal == 9);
  CHECK(c->differing == 3);
  CHECK(c->unverifiable == 1);
  CHECK(c->check_errors == 0);
  CHECK(c->kept_unconfirmed == 2);
  CHECK(c->differing_tables == std::vector<std::string>{"ks.orders", "ks.users"});
  CHECK(!parse_replay_check(parse_replay_summary(kSummary), kSummary));  // not validated
  CHECK(!parse_replay_check({}, ""));

  CHECK(replay_outcome(1, c) == "differing");
  CHECK(replay_outcome(0, c) == "ok");
  CHECK(replay_outcome(3, c) == "failed");
  ReplayCheck unverified;
  unverified.unverifiable = 2;
  unverified.kept_unconfirmed = 1;
  CHECK(replay_outcome(1, unverified) == "unconfirmed");
  CHECK(replay_outcome(1, ReplayCheck{}) == "failed");  // nothing kept: a write failed

  ReplayHostResult r{"p1", "differing", 1, 7, 0, JournalLeft{2, 4096, 0, 0}, "kept", c};
  CHECK(replay_result_line(r) ==
        "p1: replay differing (exit 1): 7 writes applied, 0 torn tails; checked 12 partitions: "
        "9 equal, 3 differing, 1 unverifiable, 0 check errors, 2 segments kept; left: 0 writes "
        "to replay, 2 segments, 4.0 KiB; kept");
  CHECK(replay_exit_code({r}) == kExitHostFailed);
  Json j = replay_summary_json({r}, 2);
  CHECK(j["hosts"][0]["check"]["differing"] == 3);
  CHECK(j["hosts"][0]["check"]["kept_unconfirmed"] == 2);
  CHECK(j["hosts"][0]["check"]["differing_tables"][1] == "ks.users");
  r.check.reset();
  CHECK(replay_summary_json({r}, 2)["hosts"][0]["check"].is_null());
}

TEST_CASE("zdm-deploy replay validates by default: origin's settings, TLS, password file") {
  Fleet fleet;
  {
    std::ofstream inv(fleet.dir / "inv.ini", std::ios::app);
    inv << "origin_port=9045\norigin_username=ou\norigin_password=s3cret-origin\n"
           "origin_tls_user_dir_path="
        << (fleet.dir / "tls").string() << "\norigin_tls_server_ca_filename=ca.pem\n";
  }
  fs::create_directories(fleet.dir / "tls");
  std::ofstream(fleet.dir / "tls" / "ca.pem") << "ORIGIN CA\n";
  auto hosts = std::make_shared<FakeHosts>([](const std::string& h, const std::string& cmd) {
    if (cmd.find(" replay --journal ") != std::string::npos) {
      if (h == "p2")
        return ExecResult{1, kValidatedSummary,
                          "zdm-data: 2 segments kept: their partitions differ on target\n", false};
      return ExecResult{0, kEqualSummary, "", false};
    }
    if (cmd.find(" journal-status ") != std::string::npos) return ExecResult{0, kLeft, "", false};
    return ExecResult{0, "", "", false};
  });
  std::ostringstream out, err;
  CHECK(replay_command_run(fleet.opts, ReplayOptions{}, out, err, hosts) == kExitHostFailed);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].find("p1: replay ok (exit 0): 5 writes applied, 0 torn tails; checked 4 "
                      "partitions: 4 equal, 0 differing") == 0);
  CHECK(lines[1].find("p2: replay differing (exit 1): 7 writes applied") == 0);
  CHECK(lines[1].find("3 differing") != std::string::npos);
  CAPTURE(err.str());
  CHECK(err.str().find("not confirmed equal on origin and target on: p2 (3 differing partitions "
                       "in ks.orders, ks.users, 2 segments kept)") != std::string::npos);
  CHECK(err.str().find("zdm-data validate --repair") != std::string::npos);
  CHECK(err.str().find("did not finish their journal") == std::string::npos);

  for (auto& [h, c] : hosts->commands()) {
    CAPTURE(c);
    CHECK(c.find("s3cret-target") == std::string::npos);
    CHECK(c.find("s3cret-origin") == std::string::npos);
  }
  auto replays = hosts->commands_on("p1", " replay --journal ");
  REQUIRE(replays.size() == 1);
  CHECK(replays[0].find(" --validate --origin 127.0.9.10 --origin-port 9045 --origin-username ou "
                        "--origin-tls-ca /srv/p1/zdm-data/tls/origin_ca.pem --progress none") !=
        std::string::npos);
  auto up = hosts->uploads();
  CHECK(up["p1:/srv/p1/zdm-data/replay.credentials"] ==
        "ZDM_DATA_TARGET_PASSWORD=s3cret-target\nZDM_DATA_ORIGIN_PASSWORD=s3cret-origin\n");
  CHECK(up["p1:/srv/p1/zdm-data/tls/origin_ca.pem"] == "ORIGIN CA\n");

  auto local = lines_of(slurp(fs::path(fleet.opts.state_dir) / "audit.log"));
  REQUIRE(local.size() == 3);
  CHECK(local[0].find(" outcome=ok applied=5 torn=0 checked=4 equal=4 differing=0 "
                      "unverifiable=0 check_errors=0 kept_unconfirmed=0") != std::string::npos);
  CHECK(local[1].find(" outcome=differing applied=7 torn=0 checked=12 equal=9 differing=3 "
                      "unverifiable=1 check_errors=0 kept_unconfirmed=2") != std::string::npos);
}

TEST_CASE("zdm-deploy replay --no-validate: no check, origin's settings and TLS untouched") {
  Fleet fleet;
  {
    std::ofstream inv(fleet.dir / "inv.ini", std::ios::app);
    inv << "origin_username=ou\norigin_password=s3cret-origin\n"
           "origin_tls_user_dir_path=/nonexistent\norigin_tls_server_ca_filename=ca.pem\n";
  }
  auto hosts = std::make_shared<FakeHosts>([](const std::string&, const std::string& cmd) {
    if (cmd.find(" replay --journal ") != std::string::npos)
      return ExecResult{0, kSummary, "", false};
    if (cmd.find(" journal-status ") != std::string::npos) return ExecResult{0, kLeft, "", false};
    return ExecResult{0, "", "", false};
  });
  std::ostringstream out, err;
  CHECK(replay_command_run(fleet.opts, ReplayOptions{std::nullopt, false}, out, err, hosts) ==
        kExitOk);
  CHECK(out.str().find("checked") == std::string::npos);
  for (auto& [h, c] : hosts->commands()) {
    CAPTURE(c);
    CHECK(c.find("--validate") == std::string::npos);
    CHECK(c.find("--origin") == std::string::npos);
  }
  auto up = hosts->uploads();
  CHECK(up["p1:/srv/p1/zdm-data/replay.credentials"] == "ZDM_DATA_TARGET_PASSWORD=s3cret-target\n");
  CHECK(up.count("p1:/srv/p1/zdm-data/tls/origin_ca.pem") == 0);
  auto local = lines_of(slurp(fs::path(fleet.opts.state_dir) / "audit.log"));
  REQUIRE(local.size() == 3);
  CHECK(local[0].find("checked=") == std::string::npos);
}

TEST_CASE("zdm-deploy replay --validate without origin_contact_points: failed, saying so") {
  Fleet fleet;
  {
    std::ofstream inv(fleet.dir / "inv.ini", std::ios::app);
    inv << "origin_contact_points=\n";
  }
  auto hosts = std::make_shared<FakeHosts>([](const std::string&, const std::string&) {
    return ExecResult{0, "", "", false};
  });
  std::ostringstream out, err;
  CHECK(replay_command_run(fleet.opts, ReplayOptions{}, out, err, hosts) == kExitHostFailed);
  CHECK(out.str().find("p1: replay failed: origin_contact_points is not set") == 0);
  CHECK(out.str().find("--no-validate") != std::string::npos);
  CHECK(hosts->commands_on("p1", " replay --journal ").empty());
}

TEST_CASE("cutover_gate: asks every proxy only when primary_cluster goes to TARGET") {
  Fleet fleet;
  fleet.opts.command = "rolling-update";
  auto hosts = std::make_shared<FakeHosts>([](const std::string& h, const std::string& cmd) {
    if (cmd.find("admin GET /api/v1/target") == std::string::npos)
      return ExecResult{0, "", "", false};
    if (h == "p2") return ExecResult{0, "200\n" + state(12, 5120), "", false};
    if (h == "p3") return ExecResult{0, "404\nnot found\n", "", false};
    return ExecResult{0, "200\n" + state(0), "", false};
  });
  SUBCASE("ORIGIN: nothing asked") {
    std::ostringstream err;
    CHECK(cutover_gate(fleet.opts, false, err, hosts) == -1);
    CHECK(hosts->commands().empty());
  }
  SUBCASE("TARGET with unsettled writes on p2: refused, p3 (404) warned about") {
    fleet.opts.extra_vars.push_back("primary_cluster=TARGET");
    fleet.opts.limit = "p1";  // the others' journals count all the same
    std::ostringstream err;
    CHECK(cutover_gate(fleet.opts, false, err, hosts) == kExitError);
    CHECK(err.str().find("ERROR! refusing to make TARGET the primary cluster") !=
          std::string::npos);
    CHECK(err.str().find("p2 (12 unsettled writes, 5.0 KiB)") != std::string::npos);
    CHECK(err.str().find("[WARNING]: journal gate:") != std::string::npos);
    CHECK(err.str().find("p3 (no target switch (404") != std::string::npos);
    CHECK(hosts->commands().size() == 3);
    CHECK(fleet.opts.audit_note.empty());
  }
  SUBCASE("--ignore-journal: goes on, the audit line says so") {
    fleet.opts.extra_vars.push_back("primary_cluster=TARGET");
    std::ostringstream err;
    CHECK(cutover_gate(fleet.opts, true, err, hosts) == -1);
    CHECK(fleet.opts.audit_note == "journal_gate=ignored unsettled=p2:12");
    CHECK(err.str().find("journal gate overridden (--ignore-journal)") != std::string::npos);
  }
  SUBCASE("--check: a warning, nothing refused") {
    fleet.opts.extra_vars.push_back("primary_cluster=TARGET");
    fleet.opts.check = true;
    std::ostringstream err;
    CHECK(cutover_gate(fleet.opts, false, err, hosts) == -1);
    CHECK(err.str().find("(--check: nothing changes)") != std::string::npos);
  }
}

TEST_CASE("the journal by default under the home, the new keys passed through when set") {
  Fleet fleet;
  Inventory inv = load_inventory(fleet.opts.inventory);
  Playbook pb = load_playbook(fleet.opts.playbook_dir + "/deploy_proxy.yml");
  PlanOptions po;
  po.release_id = "20260101T000000Z";
  po.extra_vars = {{"zdm_tls_files", Json::object()}, {"proxy_admin_token", "t0ken"}};
  std::string tpl = fleet.opts.playbook_dir + "/templates/zdm_proxy_config.yml.j2";
  auto rendered = [&](const std::string& host) {
    Plan plan = make_plan(inv, pb, po);
    return render(slurp(tpl), host_scope(plan.plays[0], host), Source{tpl, 1}, true);
  };
  std::string out = rendered("p1");
  CHECK(out.find("proxy_journal_dir: \"/srv/p1/journal\"\n") != std::string::npos);
  CHECK(rendered("p3").find("proxy_journal_dir: \"/data/journal\"\n") != std::string::npos);
  const char* keys[] = {"proxy_journal_max_bytes",  "proxy_journal_fsync_interval_ms",
                        "target_write_timeout_ms",  "target_circuit_failures",
                        "target_circuit_window_ms", "target_circuit_probe_interval_ms",
                        "read_compare_max_rows"};
  for (auto k : keys) CHECK(out.find(k) == std::string::npos);
  CHECK(out.find("read_compare") == std::string::npos);

  po.extra_vars["proxy_journal_dir"] = "";
  int n = 1000;
  for (auto k : keys) po.extra_vars[k] = n++;
  po.extra_vars["read_compare"] = "yes";
  out = rendered("p1");
  CHECK(out.find("proxy_journal_dir") == std::string::npos);  // "": no journal
  n = 1000;
  for (auto k : keys) {
    CAPTURE(k);
    CHECK(out.find(fmt::format("\n{}: {}\n", k, n++)) != std::string::npos);
  }
  CHECK(out.find("\nread_compare: true\n") != std::string::npos);

  std::vector<DefinedVar> defined;
  for (auto k : keys) defined.push_back({k, 1, "-e"});
  defined.push_back({"read_compare", true, "-e"});
  CHECK(check_variables(defined).empty());
  // A typo is still named.
  auto msgs = check_variables({{"target_circuit_failure", 1, "-e"}});
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].find("did you mean 'target_circuit_failures'") != std::string::npos);
}
