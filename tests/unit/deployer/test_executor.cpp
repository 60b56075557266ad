#include <doctest/doctest.h>

#include <sstream>

#include "executor.h"

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
