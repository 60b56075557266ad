#include <doctest/doctest.h>

#include "engine/playbook.h"

using namespace zdm::deploy;

TEST_CASE("playbook parsing") {
  const char* yaml = R"(- name: Roll
  hosts: proxies
  serial: 1
  vars_files: [vars/a.yml]
  vars: {x: 1}
  tasks:
    - name: make dir
      file: path={{ d }}/x state=directory mode=0755
    - shell: echo hi chdir=/tmp
      register: out
      when: x == 1
    - block:
        - command: "true"
      rescue:
        - fail: msg=boom
      always:
        - debug: msg=done
    - uri:
        url: http://h:1/health/readiness
      until: r.status == 200
      retries: 3
      delay: 1
      register: r
)";
  Playbook pb = parse_playbook(yaml, "pb/roll.yml");
  REQUIRE(pb.plays.size() == 1);
  const Play& p = pb.plays[0];
  CHECK(p.name == "Roll");
  CHECK(p.hosts == "proxies");
  CHECK(p.serial == 1);
  CHECK(p.vars_files == std::vector<std::string>{"vars/a.yml"});
  REQUIRE(p.tasks.size() == 4);
  CHECK(p.tasks[0].module == "file");
  CHECK(p.tasks[0].args == Json{{"path", "{{ d }}/x"}, {"state", "directory"}, {"mode", "0755"}});
  CHECK(p.tasks[0].line == 7);
  CHECK(p.tasks[1].args == Json{{"_raw_params", "echo hi"}, {"chdir", "/tmp"}});
  CHECK(p.tasks[1].when == std::vector<std::string>{"x == 1"});
  CHECK(p.tasks[2].is_block());
  CHECK(p.tasks[2].rescue.size() == 1);
  CHECK(p.tasks[2].always[0].args == Json{{"msg", "done"}});
  CHECK(p.tasks[3].until == "r.status == 200");
  CHECK(p.tasks[3].retries == 3);
  CHECK(pb.dir == "pb");
}

TEST_CASE("playbook errors name file:line and the key") {
  CHECK_THROWS_WITH_AS(
      parse_playbook("- hosts: all\n  tasks:\n    - name: x\n      bogus: 1\n", "p.yml"),
      "p.yml:4: unknown module or task keyword 'bogus'", PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: all\n  srial: 1\n", "p.yml"),
                       "p.yml:2: unknown play keyword 'srial'", PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- tasks: []\n", "p.yml"), "p.yml:1: play has no 'hosts'",
                       PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: all\n  serial: lots\n", "p.yml"),
                       "p.yml:2: 'serial' must be an integer or a percentage like \"50%\"",
                       PlaybookError);
  CHECK_THROWS_WITH_AS(
      parse_playbook("- hosts: all\n  tasks:\n    - copy:\n        dest: /x\n        mdoe: 1\n",
                     "p.yml"),
      "p.yml:4: module 'copy': unsupported parameter 'mdoe'", PlaybookError);
  CHECK_THROWS_WITH_AS(
      parse_playbook("- hosts: all\n  tasks:\n    - file: path=/x oops\n", "p.yml"),
      "p.yml:3: module 'file': bad key=value 'oops'", PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: all\n  tasks:\n    - name: nothing\n", "p.yml"),
                       "p.yml:3: task has no module", PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: all\n  tasks: [\n", "p.yml"),
                       "p.yml:3: end of sequence flow not found", PlaybookError);
}

TEST_CASE("Ansible keywords zdm-deploy does not act on are refused, not ignored") {
  // false is what zdm-deploy does anyway: accepted.
  CHECK_NOTHROW(parse_playbook("- hosts: all\n  gather_facts: false\n  become: no\n", "p.yml"));
  CHECK_NOTHROW(parse_playbook("- hosts: all\n  connection: ssh\n", "p.yml"));
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: all\n  become: yes\n", "p.yml"),
                       doctest::Contains("p.yml:2: 'become: true' is not supported"),
                       PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: all\n  gather_facts: true\n", "p.yml"),
                       doctest::Contains("'gather_facts: true' is not supported"), PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: all\n  connection: local\n", "p.yml"),
                       doctest::Contains("p.yml:2: 'connection' other than ssh"), PlaybookError);
  CHECK_THROWS_WITH_AS(parse_playbook("- hosts: all\n  tags: [x]\n", "p.yml"),
                       "p.yml:2: unknown play keyword 'tags'", PlaybookError);
  CHECK_THROWS_WITH_AS(
      parse_playbook("- hosts: all\n  tasks:\n    - debug: msg=x\n      tags: [x]\n", "p.yml"),
      doctest::Contains("'tags' is not supported"), PlaybookError);
}

TEST_CASE("k=v argument text") {
  CHECK(parse_kv_args("a=1 b='x y' c={{ v | default('q r') }}", false) ==
        Json{{"a", "1"}, {"b", "x y"}, {"c", "{{ v | default('q r') }}"}});
  CHECK(parse_kv_args("ls -l creates=/tmp/x", true) ==
        Json{{"_raw_params", "ls -l"}, {"creates", "/tmp/x"}});
}
