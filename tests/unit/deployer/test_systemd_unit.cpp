// The unit zdm-deploy generates for `zdm_service_manager: systemd` (playbooks/templates/
// zdm-proxy.service.j2, sized by playbooks/vars/zdm_deploy_proxy.yml), rendered as a play
// renders it and checked by systemd itself (`systemd-analyze verify`): this machine runs no
// systemd, so the unit is never started here.
#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "template.h"

using namespace zdm::deploy;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The line `Key=value` of the unit, or "" when absent.
std::string directive(const std::string& unit, const std::string& key) {
  std::smatch m;
  if (std::regex_search(unit, m, std::regex("(^|\n)" + key + "=([^\n]*)"))) return m[2];
  return "";
}

// stdout and stderr of a shell command, and its exit status.
std::pair<std::string, int> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

}  // namespace

TEST_CASE("the generated systemd unit: sized from the vars, accepted by systemd-analyze") {
  const fs::path src(ZDM_SOURCE_DIR);
  fs::path home = fs::temp_directory_path() / ("zdm_unit_test_" + std::to_string(::getpid()));
  fs::create_directories(home / "bin");
  fs::create_directories(home / "logs");
  fs::create_directories(home / "run");
  {
    std::ofstream(home / "bin" / "zdm-proxy-run") << "#!/bin/sh\n";
    fs::permissions(home / "bin" / "zdm-proxy-run", fs::perms::owner_all);
  }

  // The scope a play has: ZDM's variables, then deploy_proxy's own from its vars file.
  Json scope = {{"inventory_hostname", "proxy2"},
                {"zdm_home", home.string()},
                {"zdm_proxy_service_user", "zdm"},
                {"zdm_proxy_max_clients_connections", 5000},
                {"zdm_proxy_request_timeout_ms", 25000}};
  YAML::Node vars = YAML::LoadFile((src / "playbooks/vars/zdm_deploy_proxy.yml").string());
  for (const char* name : {"zdm_max_clients", "zdm_nofile", "zdm_stop_timeout"})
    scope[name] = vars[name].as<std::string>();
  const std::string unit = render(slurp(src / "playbooks/templates/zdm-proxy.service.j2"), scope,
                                  Source{"zdm-proxy.service.j2", 1});

  // 5000 clients: a client connection, one to origin, one to target each, and headroom.
  CHECK(directive(unit, "LimitNOFILE") == "16024");
  // The stop timeout outlasts the drain, bounded by the 25 s request timeout.
  CHECK(directive(unit, "TimeoutStopSec") == "35");
  CHECK(directive(unit, "User") == "zdm");
  CHECK(directive(unit, "Restart") == "on-failure");
  CHECK(directive(unit, "KillSignal") == "SIGTERM");
  CHECK(directive(unit, "ExecStart") == (home / "bin" / "zdm-proxy-run").string());

  const fs::path file = home / "zdm-proxy.service";
  std::ofstream(file) << unit;
  if (::access("/usr/bin/systemd-analyze", X_OK) != 0) {
    FAIL("systemd-analyze is missing (Debian package systemd; scripts/setup installs it)");
  }
  auto [out, rc] = run("/usr/bin/systemd-analyze verify --man=no " + file.string());
  INFO("systemd-analyze verify said: " << out);
  CHECK(rc == 0);
  // Unknown keys and bad values are only warnings for systemd: none is allowed.
  CHECK(out.find("Unknown") == std::string::npos);
  CHECK(out.find("ignoring") == std::string::npos);
  CHECK(out.find("Invalid") == std::string::npos);
  CHECK(out.find("not executable") == std::string::npos);
  fs::remove_all(home);
}
