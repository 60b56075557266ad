// The engine (executor, run) over a fake transport: no sshd, every command recorded.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "engine/executor.h"
#include "fake_transport.h"
#include "run.h"

using namespace zdm::deploy;
using zdm::deploy::testing::FakeHosts;

namespace fs = std::filesystem;

namespace {

// SSH hosts (no ansible_connection=local): every command goes to the fake.
const char* kInventory = R"([proxies]
p1 ansible_host=10.0.0.1
p2 ansible_host=10.0.0.2
p3 ansible_host=10.0.0.3
)";

struct Outcome {
  int rc;
  std::string out;
};

Outcome run(const std::string& yaml, FakeHosts& fake, int forks = 5) {
  Inventory inv = parse_inventory_ini(kInventory, "inv.ini");
  Playbook pb = parse_playbook(yaml, "pb.yml");
  PlanOptions po;
  po.release_id = "R";
  Plan plan = make_plan(inv, pb, po);
  ExecOptions eo;
  eo.forks = forks;
  eo.ssh.ssh_config_path = "none";
  eo.connections =
      std::make_shared<HostConnections>(std::shared_ptr<Connector>(&fake, [](Connector*) {}));
  std::ostringstream out;
  Executor ex(pb, plan, eo, out);
  int rc = ex.run();
  return {rc, out.str()};
}

bool has(const std::string& out, const std::string& text) {
  return out.find(text) != std::string::npos;
}

// The command a `command: X` task sends.
std::string sent(const std::string& cmd) {
  return "sh -c " + shell_quote(cmd) + " < /dev/null";
}

ExecResult rc_of(int rc, std::string out = "") {
  return ExecResult{rc, std::move(out), "", false};
}

}  // namespace

TEST_CASE("engine: serial 1 runs the batches in order, one connection per host") {
  FakeHosts fake;
  Outcome r = run(R"(- hosts: proxies
  serial: 1
  tasks:
    - command: step-a
    - command: step-b
)",
                  fake);
  CHECK(r.rc == kExitOk);
  std::vector<std::pair<std::string, std::string>> want = {
      {"p1", sent("step-a")}, {"p1", sent("step-b")}, {"p2", sent("step-a")},
      {"p2", sent("step-b")}, {"p3", sent("step-a")}, {"p3", sent("step-b")}};
  CHECK(fake.commands() == want);
  for (const char* h : {"p1", "p2", "p3"}) CHECK(fake.connects(h) == 1);
  CHECK(has(r.out, "p3 : ok=2 changed=2 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0\n"));
}

TEST_CASE("engine: serial 1, a failing host stops the play before the next batch") {
  FakeHosts fake(
      [](const std::string& host, const std::string&) { return rc_of(host == "p2" ? 1 : 0); });
  Outcome r = run(R"(- hosts: proxies
  serial: 1
  tasks:
    - command: upgrade
)",
                  fake);
  CHECK(r.rc == kExitHostFailed);
  CHECK(has(r.out, "failed: [p2] => non-zero return code 1\n"));
  CHECK(has(r.out, "NO MORE HOSTS LEFT"));
  CHECK(fake.commands_on("p3").empty());
  CHECK(fake.connects("p3") == 0);
}

TEST_CASE("engine: without serial a failing host stops, the others go on") {
  FakeHosts fake([](const std::string& host, const std::string& cmd) {
    return rc_of(host == "p1" && cmd == sent("first") ? 1 : 0);
  });
  Outcome r = run(R"(- hosts: proxies
  tasks:
    - command: first
    - command: second
)",
                  fake);
  CHECK(r.rc == kExitHostFailed);
  CHECK(fake.commands_on("p1", "second").empty());
  CHECK(fake.commands_on("p2", "second").size() == 1);
  CHECK(fake.commands_on("p3", "second").size() == 1);
}

TEST_CASE("engine: an unreachable host is reported, the others go on, exit 4") {
  FakeHosts fake;
  fake.unreachable = {"p2"};
  Outcome r = run(R"(- hosts: proxies
  tasks:
    - command: first
    - command: second
)",
                  fake);
  CHECK(r.rc == kExitUnreachable);
  CHECK(has(r.out, "unreachable: [p2] => p2: connection refused\n"));
  CHECK(fake.commands_on("p1").size() == 2);
  CHECK(fake.commands_on("p3").size() == 2);
  CHECK(fake.connects("p2") == 1);  // not retried by the next task
}

TEST_CASE("engine: forks bounds the hosts in parallel") {
  std::atomic<int> calls{0};
  auto slow = [&](const std::string&, const std::string&) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return rc_of(0);
  };
  SUBCASE("forks 1: one host at a time, in inventory order") {
    FakeHosts fake(slow);
    run("- hosts: proxies\n  tasks:\n    - command: x\n", fake, 1);
    CHECK(fake.max_concurrent() == 1);
    std::vector<std::pair<std::string, std::string>> want = {
        {"p1", sent("x")}, {"p2", sent("x")}, {"p3", sent("x")}};
    CHECK(fake.commands() == want);
  }
  SUBCASE("forks 2: two at a time") {
    FakeHosts fake(slow);
    run("- hosts: proxies\n  tasks:\n    - command: x\n", fake, 2);
    CHECK(fake.max_concurrent() == 2);
  }
  SUBCASE("forks 5: every host at once") {
    FakeHosts fake(slow);
    run("- hosts: proxies\n  tasks:\n    - command: x\n", fake, 5);
    CHECK(fake.max_concurrent() == 3);
  }
}

TEST_CASE("engine: until retries until the condition holds; a lost connection reconnects") {
  std::atomic<int> polls{0};
  FakeHosts fake([&](const std::string& host, const std::string& cmd) {
    if (host != "p1" || cmd != sent("poll")) return rc_of(0);
    int n = ++polls;
    if (n == 1) throw UnreachableError("p1: connection lost");
    return rc_of(0, n < 3 ? "starting" : "ready");
  });
  Outcome r = run(R"(- hosts: p1
  tasks:
    - command: poll
      register: st
      until: st.stdout == 'ready'
      retries: 5
      delay: 0
    - debug: msg="attempts {{ st.attempts }}"
)",
                  fake);
  CHECK(r.rc == kExitOk);
  CHECK(has(r.out,
            "FAILED - RETRYING: [p1]: command (connection lost: p1: connection lost; 5 "
            "retries left).\n"));
  CHECK(has(r.out, "FAILED - RETRYING: [p1]: command (4 retries left).\n"));
  CHECK(has(r.out, "ok: [p1] => attempts 3\n"));
  CHECK(polls == 3);
  CHECK(fake.connects("p1") == 2);
}

TEST_CASE("engine: retries exhausted fail the host") {
  FakeHosts fake([](const std::string&, const std::string&) { return rc_of(0, "starting"); });
  Outcome r = run(R"(- hosts: p1
  tasks:
    - command: poll
      register: st
      until: st.stdout == 'ready'
      retries: 2
      delay: 0
)",
                  fake);
  CHECK(r.rc == kExitHostFailed);
  CHECK(fake.commands_on("p1", "poll").size() == 3);
  CHECK(has(r.out, "failed: [p1] => retries exhausted (3 attempts)\n"));
}

TEST_CASE("engine: handlers run once, after the tasks, on the hosts that changed") {
  FakeHosts fake;
  Outcome r = run(R"(- hosts: proxies
  tasks:
    - command: reconfigure
      changed_when: inventory_hostname != 'p2'
      notify: restart
    - command: reconfigure-again
      notify: restart
      changed_when: inventory_hostname == 'p1'
  handlers:
    - name: restart
      command: restart-proxy
)",
                  fake);
  CHECK(r.rc == kExitOk);
  CHECK(fake.commands_on("p1", "restart-proxy").size() == 1);
  CHECK(fake.commands_on("p2", "restart-proxy").empty());
  CHECK(fake.commands_on("p3", "restart-proxy").size() == 1);
  CHECK(fake.commands().back().second == sent("restart-proxy"));
  CHECK(has(r.out, "RUNNING HANDLER [restart]"));
}

TEST_CASE("engine: a rolling update rolls a host back when it is not ready, and stops") {
  // deploy_proxy.yml's shape: one host at a time; the new release, a readiness check; on
  // failure the rescue switches back to the previous release and the host stays failed.
  FakeHosts fake([](const std::string& host, const std::string& cmd) {
    if (cmd == sent("check-ready")) return rc_of(host == "p2" ? 1 : 0);
    return rc_of(0);
  });
  Outcome r = run(R"(- hosts: proxies
  serial: 1
  tasks:
    - block:
        - command: activate-new
        - command: check-ready
      rescue:
        - command: activate-previous
        - fail: msg="{{ inventory_hostname }} rolled back"
)",
                  fake);
  CHECK(r.rc == kExitHostFailed);
  CHECK(fake.commands_on("p1", "activate-previous").empty());
  CHECK(fake.commands_on("p2", "activate-previous").size() == 1);
  CHECK(fake.commands_on("p3").empty());
  CHECK(has(r.out, "failed: [p2] => p2 rolled back\n"));
}

TEST_CASE("connections: one per host, reopened when its parameters change, dropped or gone") {
  FakeHosts fake;
  HostConnections conns(std::shared_ptr<Connector>(&fake, [](Connector*) {}));
  ConnectParams p;
  p.name = "p1";
  p.host = "10.0.0.1";
  Transport* first = &conns.get("p1", p);
  CHECK(&conns.get("p1", p) == first);
  CHECK(fake.connects("p1") == 1);
  p.port = 2222;
  conns.get("p1", p);
  CHECK(fake.connects("p1") == 2);
  conns.drop("p1");
  conns.get("p1", p);
  CHECK(fake.connects("p1") == 3);
  fake.kill_connections("p1");
  conns.get("p1", p).exec("true");
  CHECK(fake.connects("p1") == 4);
  conns.get("p1", p);
  CHECK(fake.connects("p1") == 4);
  CHECK(conns.connects() == 4);
}

TEST_CASE("run: the lock, the tasks, the audit trail and the release share one connection") {
  fs::path dir = fs::temp_directory_path() / ("zdm_test_engine." + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "inv.ini") << kInventory;
  std::ofstream(dir / "pb.yml") << "- hosts: proxies\n  tasks:\n    - command: step\n";
  FakeHosts fake([](const std::string&, const std::string& cmd) {
    if (cmd.find("echo lock=acquired") != std::string::npos) return rc_of(0, "lock=acquired\n");
    return rc_of(0);
  });
  CommonOptions opts;
  opts.command = "run";
  opts.inventory = (dir / "inv.ini").string();
  opts.state_dir = (dir / "state").string();
  opts.ssh.ssh_config_path = "none";
  std::ostringstream out, err;
  Run run(((dir / "pb.yml").string()), opts, std::shared_ptr<Connector>(&fake, [](Connector*) {}));
  int rc = run.execute(out, err);
  CHECK(rc == kExitOk);
  CHECK(err.str().empty());
  for (const char* h : {"p1", "p2", "p3"}) {
    CAPTURE(h);
    auto cmds = fake.commands_on(h);
    REQUIRE(cmds.size() == 4);
    CHECK(cmds[0].find("echo lock=acquired") != std::string::npos);
    CHECK(cmds[1] == sent("step"));
    CHECK(cmds[2].find("audit.log") != std::string::npos);
    CHECK(cmds[3].find("echo lock=released") != std::string::npos);
    CHECK(fake.connects(h) == 1);
  }
  CHECK(run.connections().connects() == 3);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

namespace {

// Runs `command` with /bin/sh in `cwd` and HOME=`home`, as a host's login shell would: its rc
// and stdout.
ExecResult sh_at(const fs::path& cwd, const fs::path& home, const std::string& command) {
  std::string line = "cd " + shell_quote(cwd.string()) + " && HOME=" + shell_quote(home.string()) +
                     " /bin/sh -c " + shell_quote(command);
  FILE* f = popen(line.c_str(), "r");
  if (!f) return rc_of(127, "popen failed");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  int status = pclose(f);
  return rc_of(WIFEXITED(status) ? WEXITSTATUS(status) : 1, out);
}

}  // namespace

TEST_CASE("run: the fallback lock directory is $HOME/.zdm-deploy, expanded by the host's shell") {
  CHECK(quote_host_path(kFallbackHostDir) == "\"$HOME\"/.zdm-deploy");
  CHECK(quote_host_path(std::string(kFallbackHostDir) + "/a b") == "\"$HOME\"/'.zdm-deploy/a b'");
  CHECK(quote_host_path("/opt/$HOME/x") == "'/opt/$HOME/x'");
  CHECK(quote_host_path("$HOME/.zdm-deployx") == "'$HOME/.zdm-deployx'");
  // No zdm_proxy_home_dir in this inventory: the lock and the audit log use the fallback. Every
  // command but the task's runs in a shell of the host whose working directory is not its home.
  fs::path dir = fs::temp_directory_path() / ("zdm_test_lock_dir." + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "inv.ini") << kInventory;
  std::ofstream(dir / "pb.yml") << "- hosts: proxies\n  tasks:\n    - command: step\n";
  std::mutex mu;
  std::map<std::string, bool> lock_in_home;  // host → the lock's holder file was in its home
  FakeHosts fake([&](const std::string& host, const std::string& cmd) {
    if (cmd == sent("step")) return rc_of(0);
    fs::path home = dir / ("home-" + host), cwd = dir / ("cwd-" + host);
    fs::create_directories(home);
    fs::create_directories(cwd);
    ExecResult r = sh_at(cwd, home, cmd);
    if (r.out.find("lock=acquired") != std::string::npos) {
      std::lock_guard lock(mu);
      lock_in_home[host] = fs::exists(home / ".zdm-deploy/.zdm-deploy.lock/holder");
    }
    return r;
  });
  CommonOptions opts;
  opts.command = "run";
  opts.inventory = (dir / "inv.ini").string();
  opts.state_dir = (dir / "state").string();
  opts.ssh.ssh_config_path = "none";
  std::ostringstream out, err;
  Run run(((dir / "pb.yml").string()), opts, std::shared_ptr<Connector>(&fake, [](Connector*) {}));
  CHECK(run.execute(out, err) == kExitOk);
  CHECK(err.str().empty());
  for (std::string h : {"p1", "p2", "p3"}) {
    CAPTURE(h);
    fs::path home = dir / ("home-" + h);
    CHECK(lock_in_home[h]);
    CHECK(!fs::exists(home / ".zdm-deploy/.zdm-deploy.lock"));  // released
    std::ifstream audit(home / ".zdm-deploy/audit.log");
    std::string line;
    CHECK(std::getline(audit, line));
    CHECK(line.find(" host=" + h + " ") != std::string::npos);
    // Nothing was made where the shell started (a quoted '$HOME' made ./$HOME/.zdm-deploy there).
    CHECK(fs::is_empty(dir / ("cwd-" + h)));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

namespace {

// Every event as one line of text.
class RecordingReporter : public Reporter {
 public:
  std::vector<std::string> events;
  std::mutex mu;
  void add(std::string e) {
    std::lock_guard lock(mu);
    events.push_back(std::move(e));
  }
  void play_start(const std::string& name) override { add("play " + name); }
  void play_no_hosts() override { add("no hosts"); }
  void task_start(const std::string& kind, const std::string& name) override {
    add(kind + " " + name);
  }
  void host_result(const Task&, const std::string& host, const TaskResult& r,
                   bool ignored) override {
    add(host + (r.unreachable ? " unreachable"
                : r.skipped   ? " skipped"
                : r.failed    ? (ignored ? " ignored" : " failed")
                : r.changed   ? " changed"
                              : " ok"));
  }
  void retrying(const Task&, const std::string& host, long long left, const std::string&) override {
    add(host + " retrying " + std::to_string(left));
  }
  void warning(const std::string& text) override { add("warning " + text); }
  void interrupted(const std::string& text) override { add("interrupted " + text); }
  void no_more_hosts() override { add("no more hosts"); }
  void recap(const std::vector<std::pair<std::string, HostStats>>& stats,
             const std::vector<std::pair<std::string, HostOutcome>>& outcomes) override {
    std::string e = "recap";
    for (size_t i = 0; i < stats.size(); ++i)
      e += " " + stats[i].first + "=" + outcomes[i].second.status;
    add(e);
  }
  void summary(const Json& s) override { add("summary " + s.dump()); }
};

}  // namespace

TEST_CASE("engine: execution emits events to the reporter and prints nothing itself") {
  FakeHosts fake([](const std::string& host, const std::string& cmd) {
    return rc_of(host == "p2" && cmd == sent("b") ? 1 : 0);
  });
  Inventory inv = parse_inventory_ini(kInventory, "inv.ini");
  Playbook pb = parse_playbook(R"(- hosts: proxies
  serial: 2
  tasks:
    - command: a
      changed_when: false
    - command: b
)",
                               "pb.yml");
  PlanOptions po;
  po.release_id = "R";
  Plan plan = make_plan(inv, pb, po);
  ExecOptions eo;
  eo.ssh.ssh_config_path = "none";
  eo.connections =
      std::make_shared<HostConnections>(std::shared_ptr<Connector>(&fake, [](Connector*) {}));
  RecordingReporter rep;
  Executor ex(pb, plan, eo, rep);
  CHECK(ex.run() == kExitHostFailed);
  std::vector<std::string> want = {
      "play proxies", "TASK command", "p1 ok",      "p2 ok",
      "TASK command", "p1 changed",   "p2 failed",  "TASK command",
      "p3 ok",        "TASK command", "p3 changed", "recap p1=changed p2=failed p3=changed"};
  CHECK(rep.events == want);
}

TEST_CASE("reporters: the text one prints Ansible's lines; --json adds the summary line") {
  Task t;
  t.module = "command";
  TaskResult changed;
  changed.changed = true;
  TaskResult failed;
  failed.failed = true;
  failed.msg = "boom\nsecond line";
  auto redactor = std::make_shared<Redactor>();
  redactor->add("boom");
  std::ostringstream text, json;
  TextReporter tr(text, {0, false, false, redactor});
  JsonReporter jr(json, {0, false, false, redactor});
  for (Reporter* r : {static_cast<Reporter*>(&tr), static_cast<Reporter*>(&jr)}) {
    r->task_start("TASK", "command");
    r->host_result(t, "p1", changed, false);
    r->host_result(t, "p2", failed, false);
    r->warning("w");
    r->warning("w");
    r->summary(Json{{"exit_code", 2}});
  }
  std::string lines = "\nTASK [command] " + std::string(64, '*') +
                      "\nchanged: [p1]\nfailed: [p2] => ******** | second line\n[WARNING]: w\n";
  CHECK(text.str() == lines);
  CHECK(json.str() == lines + "{\"exit_code\":2}\n");
}

TEST_CASE("run: a connection gone while the host waited for its batch is reopened, not failed") {
  fs::path dir = fs::temp_directory_path() / ("zdm_test_engine_gone." + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "inv.ini") << kInventory;
  std::ofstream(dir / "pb.yml") << "- hosts: proxies\n  serial: 1\n  tasks:\n    - command: step\n";
  FakeHosts* hosts = nullptr;
  FakeHosts fake([&](const std::string& host, const std::string& cmd) {
    if (cmd.find("echo lock=acquired") != std::string::npos) {
      if (host == "p3") hosts->kill_connections("p3");  // e.g. a firewall's idle timeout
      return rc_of(0, "lock=acquired\n");
    }
    return rc_of(0);
  });
  hosts = &fake;
  CommonOptions opts;
  opts.command = "run";
  opts.inventory = (dir / "inv.ini").string();
  opts.state_dir = (dir / "state").string();
  opts.ssh.ssh_config_path = "none";
  opts.forks = 1;
  std::ostringstream out, err;
  Run run(((dir / "pb.yml").string()), opts, std::shared_ptr<Connector>(&fake, [](Connector*) {}));
  CHECK(run.execute(out, err) == kExitOk);
  CHECK(fake.connects("p1") == 1);
  CHECK(fake.connects("p3") == 2);
  CHECK(fake.commands_on("p3", "step").size() == 1);
  CHECK(fake.commands_on("p3", "echo lock=released").size() == 1);
  std::error_code ec;
  fs::remove_all(dir, ec);
}
