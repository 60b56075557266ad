#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "engine/executor.h"

using namespace zdm::deploy;

namespace fs = std::filesystem;

namespace {

const char* kInventory = R"([proxies]
p1 ansible_connection=local origin_password=s3cret-origin
p2 ansible_connection=local origin_password=s3cret-origin
)";

Plan plan_of(const std::string& playbook_yaml) {
  Inventory inv = parse_inventory_ini(kInventory, "inv.ini");
  Playbook pb = parse_playbook(playbook_yaml, "pb.yml");
  PlanOptions po;
  po.release_id = "R";
  return make_plan(inv, pb, po);
}

// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("zdm_test_commands." + std::to_string(getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

}  // namespace

TEST_CASE("collect_secrets: every secret's rendered value is redacted") {
  Plan plan = plan_of(R"(- hosts: proxies
  vars:
    target_password: "{{ origin_password }}-target"
  tasks: []
)");
  Redactor r;
  collect_secrets(plan, r);
  CHECK(r.apply("a s3cret-origin b s3cret-origin-target") == "a ******** b ********");
}

TEST_CASE("collect_secrets fails closed: a secret that cannot be rendered names the variable") {
  Plan plan = plan_of(R"(- hosts: proxies
  vars:
    target_password: "{{ no_such_variable }}"
  tasks: []
)");
  Redactor r;
  std::string what;
  try {
    collect_secrets(plan, r);
  } catch (const SecretError& e) {
    what = e.what();
  }
  CHECK(what.find("secret variable 'target_password' of host p1 cannot be rendered") == 0);
  CHECK(what.find("no_such_variable") != std::string::npos);
}

TEST_CASE("run_playbook stops before touching a host when a secret cannot be rendered") {
  TempDir dir;
  std::string marker = (dir.path / "touched").string();
  std::string inv = dir.write("inv.ini", kInventory);
  std::string pb = dir.write("pb.yml", R"(- hosts: proxies
  vars:
    target_password: "{{ no_such_variable }}"
  tasks:
    - command: "touch )" + marker + R"("
)");
  CommonOptions opts;
  opts.command = "run";
  opts.inventory = inv;
  opts.state_dir = (dir.path / "state").string();
  std::ostringstream out, err;
  int rc = run_playbook(pb, opts, out, err);
  CHECK(rc == kExitUnreachable);
  CHECK(out.str().empty());
  CHECK(err.str().find("ERROR! secret variable 'target_password' of host p1 cannot be rendered") ==
        0);
  CHECK(!fs::exists(marker));
  CHECK(!fs::exists(dir.path / "state"));
}
