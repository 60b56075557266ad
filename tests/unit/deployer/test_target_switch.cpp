// zdm-deploy target disable|enable|status (deployer/target_switch.h): the proxy's JSON, zdmctl
// admin's output, the per-host outcomes and lines, the refusal while target is the primary, and
// the command against fake hosts (parallel, the audit trail, the 409 text).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/executor.h"
#include "engine/plan.h"
#include "engine/playbook.h"
#include "fake_transport.h"
#include "inventory/zdm_vars.h"
#include "target_switch.h"
#include "template.h"

using namespace zdm::deploy;
using zdm::deploy::testing::FakeHosts;

namespace fs = std::filesystem;

namespace {

const char* kState =
    R"({"enabled": false, "primary_cluster": "ORIGIN", "target_failure_mode": "isolate",
        "isolated": true, "journal": {"dir": "/srv/j", "bytes": 5120, "unsettled": 7}})";

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

// Three proxies on fake SSH hosts, the repository's playbooks, a state directory of its own.
struct Fleet {
  fs::path dir;
  CommonOptions opts;
  // `core_config`: the inventory's own vars/zdm_proxy_core_config.yml (else the shipped one).
  explicit Fleet(const std::string& core_config = "") {
    dir = fs::temp_directory_path() / ("zdm_test_target_switch." + std::to_string(getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "inv.ini") << "[proxies]\n"
                                      "p1 ansible_host=127.0.9.1 zdm_proxy_home_dir=/srv/p1\n"
                                      "p2 ansible_host=127.0.9.2 zdm_proxy_home_dir=/srv/p2\n"
                                      "p3 ansible_host=127.0.9.3 zdm_proxy_home_dir=/srv/p3\n"
                                      "[proxies:vars]\n"
                                      "origin_contact_points=127.0.9.10\n"
                                      "target_contact_points=127.0.9.20\n"
                                      "origin_username=o\norigin_password=s3cret-origin\n";
    if (!core_config.empty()) {
      fs::create_directories(dir / "vars");
      std::ofstream(dir / "vars" / "zdm_proxy_core_config.yml") << core_config;
    }
    opts.command = "target";
    opts.inventory = (dir / "inv.ini").string();
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

TEST_CASE("parse_target_state: the proxy's JSON, and what is wrong with a bad one") {
  TargetState s = parse_target_state(kState);
  CHECK(!s.enabled);
  CHECK(s.primary_cluster == "ORIGIN");
  CHECK(s.target_failure_mode == "isolate");
  CHECK(s.isolated);
  CHECK(s.journal_dir == "/srv/j");
  CHECK(s.journal_bytes == 5120);
  CHECK(s.journal_unsettled == 7);
  CHECK(target_state_json(s) == Json::parse(kState));

  auto error_of = [](const std::string& body) {
    try {
      parse_target_state(body);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of("<html>") == "target state: not JSON: '<html>'");
  CHECK(error_of("[]") == "target state: expected a JSON object, got []");
  CHECK(error_of(R"({"enabled": true})") == "target state: no 'primary_cluster'");
  CHECK(error_of(R"({"enabled": "yes", "primary_cluster": "ORIGIN"})") ==
        "target state: 'enabled': expected true or false, got \"yes\"");
  Json j = Json::parse(kState);
  j["journal"]["bytes"] = "5 KiB";
  CHECK(error_of(j.dump()) == "target state: 'journal.bytes': expected an integer, got \"5 KiB\"");
  j["journal"].erase("bytes");
  CHECK(error_of(j.dump()) == "target state: no 'journal.bytes'");
}

TEST_CASE("parse_admin_answer: zdmctl admin's status line, then the body") {
  AdminAnswer a = parse_admin_answer("200\n{\"enabled\": true}\n");
  CHECK(a.status == 200);
  CHECK(a.body == "{\"enabled\": true}\n");
  a = parse_admin_answer("0\n\n");
  CHECK(a.status == 0);
  CHECK(a.body == "\n");
  CHECK_THROWS_WITH_AS(parse_admin_answer("zdmctl: usage ...\n"),
                       "zdmctl admin printed no HTTP status: 'zdmctl: usage ...'",
                       std::invalid_argument);
  CHECK_THROWS_AS(parse_admin_answer(""), std::invalid_argument);
}

TEST_CASE("classify_target_answer: ok, refused with the proxy's text, unavailable, failed") {
  TargetHostResult r = classify_target_answer("p1", {200, kState});
  CHECK(r.outcome == "ok");
  CHECK(r.http_status == 200);
  REQUIRE(r.state);
  CHECK(!r.state->enabled);
  CHECK(r.error.empty());

  r = classify_target_answer("p1", {409, R"({"error": "target is the primary cluster"})"});
  CHECK(r.outcome == "refused");
  CHECK(r.error == "target is the primary cluster");
  CHECK(!r.state);
  r = classify_target_answer("p1", {409, "no journal configured\n"});
  CHECK(r.error == "no journal configured");

  r = classify_target_answer("p1", {404, "not found"});
  CHECK(r.outcome == "unavailable");
  CHECK(r.error.find("404") != std::string::npos);

  CHECK(classify_target_answer("p1", {401, ""}).outcome == "failed");
  CHECK(classify_target_answer("p1", {401, ""}).error.find("admin token") != std::string::npos);
  CHECK(classify_target_answer("p1", {0, ""}).error.find("no answer") != std::string::npos);
  r = classify_target_answer("p1", {500, R"({"error": "boom"})"});
  CHECK(r.outcome == "failed");
  CHECK(r.error == "HTTP 500: boom");
  r = classify_target_answer("p1", {200, "{}"});
  CHECK(r.outcome == "failed");
  CHECK(r.error == "target state: no 'enabled'");
}

TEST_CASE("disable_refusal: primary_cluster TARGET on any proxy refuses, naming them and why") {
  CHECK(!disable_refusal({{"p1", "ORIGIN"}, {"p2", "origin"}}));
  CHECK(!disable_refusal({}));
  auto why = disable_refusal({{"p1", "ORIGIN"}, {"p2", "TARGET"}, {"p3", " target"}});
  REQUIRE(why);
  CHECK(why->find("primary_cluster is TARGET (p2, p3)") != std::string::npos);
  CHECK(why->find("source of truth") != std::string::npos);
}

TEST_CASE("target_admin_command: zdmctl admin, the body one quoted word") {
  CHECK(target_admin_command("/srv/p1", TargetAction::kStatus, "x") ==
        "/srv/p1/bin/zdmctl admin GET /api/v1/target");
  CHECK(target_admin_command("/srv/p1", TargetAction::kDisable, "al'ice@m: zdm-deploy \"x\"") ==
        "/srv/p1/bin/zdmctl admin POST /api/v1/target/disable "
        "'{\"by\":\"al'\"'\"'ice@m: zdm-deploy \\\"x\\\"\"}'");
  CHECK(target_admin_command("/h", TargetAction::kEnable, "b").find("/api/v1/target/enable") !=
        std::string::npos);
  CHECK(parse_target_action("disable") == TargetAction::kDisable);
  CHECK(parse_target_action("enable") == TargetAction::kEnable);
  CHECK(parse_target_action("status") == TargetAction::kStatus);
  CHECK(!parse_target_action("off"));
}

TEST_CASE("the per-host summary: lines, status cells, --json, exit code") {
  TargetHostResult ok = classify_target_answer("p1", {200, kState});
  CHECK(target_result_line(ok) ==
        "p1: target disabled, isolated yes, journal 5.0 KiB, 7 unsettled");
  Json no_journal = Json::parse(kState);
  no_journal["journal"] = {{"dir", ""}, {"bytes", 0}, {"unsettled", 0}};
  no_journal["enabled"] = true;
  no_journal["isolated"] = false;
  TargetHostResult ok2 = classify_target_answer("p2", {200, no_journal.dump()});
  CHECK(target_result_line(ok2) == "p2: target enabled, isolated no, no journal");
  TargetHostResult refused = classify_target_answer("p3", {409, R"({"error": "no journal"})"});
  CHECK(target_result_line(refused) == "p3: refused (409): no journal");
  TargetHostResult down{"p4", "unreachable", 0, std::nullopt, "p4: connection refused"};
  CHECK(target_result_line(down) == "p4: unreachable: p4: connection refused");

  CHECK(target_status_cells(Json::parse(kState)) ==
        std::vector<std::string>{"disabled,isolated", "5.0 KiB", "7"});
  CHECK(target_status_cells(no_journal) == std::vector<std::string>{"enabled", "-", "-"});
  CHECK(target_status_cells(nullptr) == std::vector<std::string>{"-", "-", "-"});

  CHECK(byte_size_text(0) == "0 B");
  CHECK(byte_size_text(1023) == "1023 B");
  CHECK(byte_size_text(3 * 1024 * 1024 + 512 * 1024) == "3.5 MiB");

  CHECK(target_exit_code({ok, ok2}) == kExitOk);
  CHECK(target_exit_code({ok, refused}) == kExitHostFailed);
  CHECK(target_exit_code({ok, refused, down}) == kExitUnreachable);
  CHECK(target_exit_code({classify_target_answer("p", {404, ""})}) == kExitHostFailed);

  Json j = target_summary_json(TargetAction::kDisable, {ok, refused}, 2);
  CHECK(j["action"] == "disable");
  CHECK(j["exit_code"] == 2);
  CHECK(j["hosts"][0]["target"] == Json::parse(kState));
  CHECK(j["hosts"][1]["outcome"] == "refused");
  CHECK(j["hosts"][1]["http_status"] == 409);
  CHECK(j["hosts"][1]["error"] == "no journal");
  CHECK(j["hosts"][1]["target"].is_null());
}

TEST_CASE("target disable: every proxy, the 409 named, the audit trail on hosts and locally") {
  Fleet fleet;
  fleet.opts.command_line = "zdm-deploy target disable -i inv.ini -e origin_password=s3cret-origin";
  auto hosts = std::make_shared<FakeHosts>([](const std::string& h, const std::string& cmd) {
    if (cmd.find("admin POST /api/v1/target/disable") != std::string::npos) {
      if (h == "p3")
        return ExecResult{0, "409\n{\"error\": \"no journal configured\"}\n", "", false};
      return ExecResult{0, std::string("200\n") + kState + "\n", "", false};
    }
    return ExecResult{0, "", "", false};
  });
  std::ostringstream out, err;
  int rc = target_command(fleet.opts, TargetAction::kDisable, out, err, hosts);
  CHECK(rc == kExitHostFailed);
  CHECK(lines_of(out.str()) ==
        std::vector<std::string>{"p1: target disabled, isolated yes, journal 5.0 KiB, 7 unsettled",
                                 "p2: target disabled, isolated yes, journal 5.0 KiB, 7 unsettled",
                                 "p3: refused (409): no journal configured"});
  CHECK(err.str() == "ERROR! target disable: 1 of 3 proxies did not answer ok: p3 (refused)\n");

  // The call: zdmctl admin on each host, `by` the user, machine and command line, redacted.
  auto calls = hosts->commands_on("p1", "admin POST");
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].find("/srv/p1/bin/zdmctl admin POST /api/v1/target/disable") == 0);
  CHECK(calls[0].find("@") != std::string::npos);
  CHECK(calls[0].find(": zdm-deploy target disable -i inv.ini -e origin_password=********") !=
        std::string::npos);
  CHECK(calls[0].find("s3cret") == std::string::npos);

  // One audit line per host, on the host (its home) and locally.
  for (const char* h : {"p1", "p2", "p3"}) {
    auto audit = hosts->commands_on(h, "audit.log");
    REQUIRE(audit.size() == 1);
    CHECK(audit[0].find(std::string("/srv/") + h + "/audit.log") != std::string::npos);
  }
  auto local = lines_of(slurp(fs::path(fleet.opts.state_dir) / "audit.log"));
  REQUIRE(local.size() == 3);
  CHECK(local[0].find(" host=p1 ") != std::string::npos);
  CHECK(local[0].find(" outcome=ok target=disabled") != std::string::npos);
  CHECK(local[2].find(" host=p3 ") != std::string::npos);
  CHECK(local[2].find(" outcome=refused target=-") != std::string::npos);
  CHECK(local[0].find("command=\"zdm-deploy target disable -i inv.ini -e "
                      "origin_password=********\"") != std::string::npos);
  CHECK(slurp(fs::path(fleet.opts.state_dir) / "audit.log").find("s3cret") == std::string::npos);
}

TEST_CASE("target enable: an unreachable proxy exits 4 and is audited as such") {
  Fleet fleet;
  fleet.opts.command_line = "zdm-deploy target enable -i inv.ini";
  fleet.opts.json = true;
  Json enabled = Json::parse(kState);
  enabled["enabled"] = true;
  auto hosts = std::make_shared<FakeHosts>([&](const std::string&, const std::string& cmd) {
    if (cmd.find("admin POST /api/v1/target/enable") != std::string::npos)
      return ExecResult{0, "200\n" + enabled.dump() + "\n", "", false};
    return ExecResult{0, "", "", false};
  });
  hosts->unreachable = {"p2"};
  std::ostringstream out, err;
  int rc = target_command(fleet.opts, TargetAction::kEnable, out, err, hosts);
  CHECK(rc == kExitUnreachable);
  Json j = Json::parse(out.str());
  CHECK(j["action"] == "enable");
  CHECK(j["exit_code"] == kExitUnreachable);
  CHECK(j["hosts"][0]["outcome"] == "ok");
  CHECK(j["hosts"][0]["target"]["enabled"] == true);
  CHECK(j["hosts"][1]["outcome"] == "unreachable");
  CHECK(j["hosts"][1]["error"] == "p2: connection refused");
  CHECK(err.str().find("p2 (unreachable)") != std::string::npos);
  auto local = lines_of(slurp(fs::path(fleet.opts.state_dir) / "audit.log"));
  REQUIRE(local.size() == 3);
  CHECK(local[1].find(" host=p2 ") != std::string::npos);
  CHECK(local[1].find(" outcome=unreachable target=-") != std::string::npos);
  CHECK(local[2].find(" outcome=ok target=enabled") != std::string::npos);
}

TEST_CASE("target disable is refused before any host when primary_cluster is TARGET") {
  SUBCASE("from the inventory's vars file") {
    Fleet fleet("primary_cluster: TARGET\nread_mode: PRIMARY_ONLY\nlog_level: INFO\n");
    auto hosts = std::make_shared<FakeHosts>();
    std::ostringstream out, err;
    CHECK(target_command(fleet.opts, TargetAction::kDisable, out, err, hosts) == kExitError);
    CHECK(err.str().find("ERROR! target disable refused: primary_cluster is TARGET (p1, p2, p3)") ==
          0);
    CHECK(err.str().find("source of truth") != std::string::npos);
    CHECK(hosts->commands().empty());
    CHECK(hosts->connects("p1") == 0);
    CHECK(!fs::exists(fs::path(fleet.opts.state_dir) / "audit.log"));
  }
  SUBCASE("from -e; enable and status still go ahead") {
    Fleet fleet;
    fleet.opts.extra_vars = {"primary_cluster=TARGET"};
    auto hosts = std::make_shared<FakeHosts>([](const std::string&, const std::string& cmd) {
      if (cmd.find(" admin ") != std::string::npos)
        return ExecResult{0, std::string("200\n") + kState, "", false};
      return ExecResult{0, "", "", false};
    });
    std::ostringstream out, err;
    CHECK(target_command(fleet.opts, TargetAction::kDisable, out, err, hosts) == kExitError);
    CHECK(hosts->commands().empty());
    CHECK(target_command(fleet.opts, TargetAction::kEnable, out, err, hosts) == kExitOk);
    CHECK(target_command(fleet.opts, TargetAction::kStatus, out, err, hosts) == kExitOk);
  }
}

TEST_CASE("target status only reads: GET on every proxy, nothing audited") {
  Fleet fleet;
  auto hosts = std::make_shared<FakeHosts>([](const std::string& h, const std::string& cmd) {
    if (cmd.find("admin GET /api/v1/target") == std::string::npos)
      return ExecResult{0, "", "", false};
    if (h == "p2") return ExecResult{0, "404\nnot found\n", "", false};
    return ExecResult{0, std::string("200\n") + kState, "", false};
  });
  std::ostringstream out, err;
  int rc = target_command(fleet.opts, TargetAction::kStatus, out, err, hosts);
  CHECK(rc == kExitHostFailed);
  auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 3);
  CHECK(lines[1].find("p2: unavailable: no target switch (404)") == 0);
  for (auto& [h, c] : hosts->commands()) {
    CAPTURE(c);
    CHECK(c.find("admin GET /api/v1/target") != std::string::npos);
  }
  CHECK(hosts->commands().size() == 3);
  CHECK(!fs::exists(fs::path(fleet.opts.state_dir) / "audit.log"));
}

TEST_CASE("the proxy's configuration carries proxy_journal_dir and target_failure_mode") {
  Fleet fleet;
  Inventory inv = load_inventory(fleet.opts.inventory);
  Playbook pb = load_playbook(fleet.opts.playbook_dir + "/deploy_proxy.yml");
  PlanOptions po;
  po.release_id = "20260101T000000Z";
  po.extra_vars = {{"zdm_tls_files", Json::object()}, {"proxy_admin_token", "t0ken"}};
  std::string tpl = fleet.opts.playbook_dir + "/templates/zdm_proxy_config.yml.j2";
  auto rendered = [&] {
    Plan plan = make_plan(inv, pb, po);
    return render(slurp(tpl), host_scope(plan.plays[0], "p1"), Source{tpl, 1}, true);
  };
  std::string out = rendered();
  // The journal by default under the proxy's home (zdm_deploy_proxy.yml's zdm_journal_dir).
  CHECK(out.find("proxy_journal_dir: \"/srv/p1/journal\"\n") != std::string::npos);
  CHECK(out.find("target_failure_mode") == std::string::npos);  // only when defined
  po.extra_vars["proxy_journal_dir"] = "/srv/p1/journal";
  po.extra_vars["target_failure_mode"] = "isolate";
  out = rendered();
  CHECK(out.find("proxy_journal_dir: \"/srv/p1/journal\"\n") != std::string::npos);
  CHECK(out.find("target_failure_mode: \"isolate\"\n") != std::string::npos);
  CHECK(check_variables({{"proxy_journal_dir", "/j", "-e"}, {"target_failure_mode", "fail", "-e"}})
            .empty());
}
