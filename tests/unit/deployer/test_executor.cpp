#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/executor.h"

using namespace zdm::deploy;

namespace {

// Local hosts (ansible_connection=local): the executor without SSH.
const char* kInventory = R"([proxies]
p1 ansible_connection=local
p2 ansible_connection=local
p3 ansible_connection=local
)";

struct Run {
  int rc;
  std::string out;
};

Run run(const std::string& yaml, Json extra = Json::object(), int forks = 5) {
  Inventory inv = parse_inventory_ini(kInventory, "inv.ini");
  Playbook pb = parse_playbook(yaml, "pb.yml");
  PlanOptions po;
  po.release_id = "R";
  po.extra_vars = std::move(extra);
  Plan plan = make_plan(inv, pb, po);
  ExecOptions eo;
  eo.forks = forks;
  std::ostringstream out;
  Executor ex(pb, plan, eo, out);
  int rc = ex.run();
  return {rc, out.str()};
}

bool has(const std::string& out, const std::string& text) {
  return out.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("serial 1: the first failing host stops the play; later hosts are not touched") {
  Run r = run(R"(- hosts: proxies
  serial: 1
  tasks:
    - command: "true"
    - name: fail on p2
      command: "false"
      when: inventory_hostname == 'p2'
)");
  CHECK(r.rc == kExitHostFailed);
  CHECK(has(r.out, "failed: [p2] => non-zero return code 1\n"));
  CHECK(has(r.out, "p1 : ok=1 changed=1 unreachable=0 failed=0 skipped=1 rescued=0 ignored=0\n"));
  CHECK(has(r.out, "p2 : ok=1 changed=1 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0\n"));
  CHECK(has(r.out, "p3 : ok=0 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0\n"));
  CHECK(has(r.out, "NO MORE HOSTS LEFT"));
}

TEST_CASE("without serial, a failed host stops but the others go on") {
  Run r = run(R"(- hosts: proxies
  tasks:
    - command: "false"
      when: inventory_hostname == 'p1'
    - debug: msg="still here {{ inventory_hostname }}"
)");
  CHECK(r.rc == kExitHostFailed);
  CHECK(has(r.out, "ok: [p2] => still here p2\n"));
  CHECK(has(r.out, "ok: [p3] => still here p3\n"));
  CHECK(!has(r.out, "still here p1"));
}

TEST_CASE("any_errors_fatal stops every host") {
  Run r = run(R"(- hosts: proxies
  any_errors_fatal: true
  tasks:
    - command: "false"
      when: inventory_hostname == 'p1'
    - debug: msg=after
)");
  CHECK(r.rc == kExitHostFailed);
  CHECK(!has(r.out, "after"));
}

TEST_CASE("block, rescue and always") {
  Run r = run(R"(- hosts: p1
  tasks:
    - block:
        - command: "false"
        - debug: msg=skipped-by-failure
      rescue:
        - debug: msg="rescued {{ inventory_hostname }}"
      always:
        - debug: msg=always
)");
  CHECK(r.rc == kExitOk);
  CHECK(has(r.out, "ok: [p1] => rescued p1\n"));
  CHECK(has(r.out, "ok: [p1] => always\n"));
  CHECK(!has(r.out, "skipped-by-failure"));
  CHECK(has(r.out, "p1 : ok=2 changed=0 unreachable=0 failed=0 skipped=0 rescued=1 ignored=0\n"));
}

TEST_CASE("a rescue that fails leaves the host failed") {
  Run r = run(R"(- hosts: p1
  tasks:
    - block:
        - command: "false"
      rescue:
        - fail: msg="rolled back {{ inventory_hostname }}"
)");
  CHECK(r.rc == kExitHostFailed);
  CHECK(has(r.out, "failed: [p1] => rolled back p1\n"));
  CHECK(has(r.out, "p1 : ok=0 changed=0 unreachable=0 failed=1 skipped=0 rescued=1 ignored=0\n"));
}

TEST_CASE("register, until and retries") {
  Run r = run(R"(- hosts: p1
  tasks:
    - shell: echo 4
      register: out
      until: out.stdout == '5'
      retries: 2
      delay: 0
)");
  CHECK(r.rc == kExitHostFailed);
  CHECK(has(r.out, "FAILED - RETRYING: [p1]: shell (2 retries left).\n"));
  CHECK(has(r.out, "FAILED - RETRYING: [p1]: shell (1 retries left).\n"));
  CHECK(has(r.out, "failed: [p1] => retries exhausted (3 attempts)\n"));
}

TEST_CASE("set_fact beats play vars; extra vars beat set_fact") {
  Run r = run(R"(- hosts: p1
  vars: {a: play, b: play}
  tasks:
    - set_fact: {a: fact, b: fact}
    - debug: msg="{{ a }} {{ b }}"
)",
              {{"b", "extra"}});
  CHECK(has(r.out, "ok: [p1] => fact extra\n"));
}

TEST_CASE("ignore_errors counts as ignored and the host goes on") {
  Run r = run(R"(- hosts: p1
  tasks:
    - command: "false"
      ignore_errors: true
    - debug: msg=next
)");
  CHECK(r.rc == kExitOk);
  CHECK(has(r.out, "...ignoring\n"));
  CHECK(has(r.out, "p1 : ok=1 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=1\n"));
}

TEST_CASE("a template error fails the task with file:line and the variable") {
  Run r = run("- hosts: p1\n  tasks:\n    - debug: msg=\"{{ nope }}\"\n");
  CHECK(r.rc == kExitHostFailed);
  CHECK(has(r.out, "failed: [p1] => pb.yml:3: undefined variable 'nope'\n"));
}

TEST_CASE("handlers run once after the tasks, in their order, where a notifying task changed") {
  Run r = run(R"(- hosts: proxies
  tasks:
    - name: change on p1 and p2
      command: "true"
      when: inventory_hostname != 'p3'
      notify: [second, first]
    - name: change again on p1
      command: "true"
      when: inventory_hostname == 'p1'
      notify: first
    - name: no change anywhere
      command: "true"
      changed_when: false
      notify: third
    - debug: msg="last task"
  handlers:
    - name: first
      debug: msg="first {{ inventory_hostname }}"
    - name: second
      debug: msg="second {{ inventory_hostname }}"
    - name: third
      debug: msg="third {{ inventory_hostname }}"
)");
  CHECK(r.rc == kExitOk);
  auto first = r.out.find("RUNNING HANDLER [first]");
  auto second = r.out.find("RUNNING HANDLER [second]");
  CHECK(first != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(first > r.out.find("ok: [p1] => last task"));
  CHECK(first < second);
  CHECK(r.out.find("RUNNING HANDLER [first]", first + 1) == std::string::npos);
  CHECK(has(r.out, "ok: [p1] => first p1\n"));
  CHECK(has(r.out, "ok: [p2] => first p2\n"));
  CHECK(has(r.out, "ok: [p2] => second p2\n"));
  CHECK(!has(r.out, "first p3"));
  CHECK(!has(r.out, "second p3"));
  CHECK(!has(r.out, "RUNNING HANDLER [third]"));
}

TEST_CASE("meta: flush_handlers runs the notified handlers there, and only once") {
  Run r = run(R"(- hosts: p1
  tasks:
    - command: "true"
      notify: restart
    - meta: flush_handlers
    - debug: msg="after the flush"
  handlers:
    - name: restart
      debug: msg=restarted
)");
  CHECK(r.rc == kExitOk);
  auto handler = r.out.find("ok: [p1] => restarted");
  CHECK(handler != std::string::npos);
  CHECK(handler < r.out.find("ok: [p1] => after the flush"));
  CHECK(r.out.find("RUNNING HANDLER", handler) == std::string::npos);
}

TEST_CASE("a host that failed after notifying does not run the handler") {
  Run r = run(R"(- hosts: proxies
  tasks:
    - command: "true"
      notify: restart
    - command: "false"
      when: inventory_hostname == 'p2'
  handlers:
    - name: restart
      debug: msg="restarted {{ inventory_hostname }}"
)");
  CHECK(r.rc == kExitHostFailed);
  CHECK(has(r.out, "ok: [p1] => restarted p1\n"));
  CHECK(has(r.out, "ok: [p3] => restarted p3\n"));
  CHECK(!has(r.out, "restarted p2"));
}

TEST_CASE("notify names a handler of the play") {
  CHECK_THROWS_WITH_AS(parse_playbook(R"(- hosts: p1
  tasks:
    - command: "true"
      notify: restart prometheus
  handlers:
    - name: reload prometheus
      command: "true"
)",
                                      "pb.yml"),
                       "pb.yml:3: notify: no handler named 'restart prometheus' in this play",
                       PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: p1\n  tasks:\n    - meta: end_play\n", "pb.yml"),
                       "pb.yml:3: meta: only 'flush_handlers' is supported, not 'end_play'",
                       PlaybookError);
}

TEST_CASE("copy of a directory: contents with a trailing slash, unchanged files left alone") {
  namespace fs = std::filesystem;
  fs::path tmp = fs::temp_directory_path() / ("zdm-copy-tree-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "src" / "sub");
  auto write = [](const fs::path& p, const std::string& text) { std::ofstream(p) << text; };
  write(tmp / "src" / "a.json", "{}");
  write(tmp / "src" / "sub" / "b.yml", "x: 1\n");
  std::string pb = R"(- hosts: p1
  tasks:
    - copy:
        src: ")" + (tmp / "src").string() +
                   R"(/"
        dest: ")" + (tmp / "dest").string() +
                   R"("
        mode: "0640"
      register: out
    - debug: var=out.changed_files
    - copy:
        src: ")" + (tmp / "src").string() +
                   R"("
        dest: ")" + (tmp / "whole").string() +
                   R"("
)";
  Run r = run(pb);
  CHECK(r.rc == kExitOk);
  CHECK(fs::exists(tmp / "dest" / "a.json"));
  CHECK(fs::exists(tmp / "dest" / "sub" / "b.yml"));
  CHECK(fs::exists(tmp / "whole" / "src" / "sub" / "b.yml"));
  CHECK((fs::status(tmp / "dest" / "sub" / "b.yml").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
  CHECK(has(r.out, "p1 : ok=3 changed=2 "));
  write(tmp / "src" / "sub" / "b.yml", "x: 2\n");
  r = run(pb);
  CHECK(has(r.out, "out.changed_files: [\"" + (tmp / "dest" / "sub" / "b.yml").string() + "\"]"));
  CHECK(has(r.out, "p1 : ok=3 changed=2 "));  // b.yml is in the whole-directory copy too
  r = run(pb);
  CHECK(has(r.out, "out.changed_files: []"));
  CHECK(has(r.out, "p1 : ok=3 changed=0 "));
  fs::remove_all(tmp);
}
