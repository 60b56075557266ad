// zdm-deploy: deploy, rolling-update, deploy-monitoring, run, status, logs, dashboard.
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include "commands.h"
#include "dashboard.h"
#include "executor.h"

#ifndef ZDM_SOURCE_DIR
#define ZDM_SOURCE_DIR "."
#endif

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace zdm::deploy;

namespace {

const char* kUsage = R"(usage: zdm-deploy COMMAND [options]

commands:
  deploy          -i INV [-e VARS]... [--limit PATTERN] [--forks N]   run playbooks/deploy_proxy.yml
  rolling-update  -i INV [-e VARS]... [--limit PATTERN]               run playbooks/rolling_update.yml
  deploy-monitoring -i INV [-e VARS]... [--limit PATTERN]             run playbooks/deploy_monitoring.yml
  run PLAYBOOK    -i INV [-e VARS]... [--limit PATTERN] [--forks N]   run any playbook
  migrate-data    -i INV -e zdm_data_keyspace=KS [-e VARS]... [--group GROUP]
                  run playbooks/migrate_data.yml (zdm-data backfill, then validate) on the
                  first host of GROUP (default: monitoring)
  status          -i INV [--limit PATTERN] [--json]                   proxy status and readiness
  logs            -i INV [--limit PATTERN] [-n LINES] [-f]            tail every proxy's log
  dashboard       -i INV [--listen ADDR:PORT] [--dashboards DIR]      serve the dashboards page

exit codes: 0 ok, 1 error, 2 a host failed, 4 unreachable host or parse error, 5 bad options
)";

std::string env_or(const char* name, const std::string& dflt) {
  const char* v = std::getenv(name);
  return v && *v ? v : dflt;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::cout << kUsage;
    return argc < 2 ? kExitBadOptions : kExitOk;
  }
  std::string command = argv[1];
  if (command != "deploy" && command != "rolling-update" && command != "deploy-monitoring" &&
      command != "run" && command != "migrate-data" && command != "status" && command != "logs" &&
      command != "dashboard") {
    std::cerr << "ERROR! unknown command '" << command << "'\n" << kUsage;
    return kExitBadOptions;
  }
  CommonOptions opts;
  DashboardOptions dash;
  bool json = false, follow = false, help = false;
  int lines = 50;
  std::string playbook, group = "monitoring";
  po::options_description desc("options");
  desc.add_options()("help,h", po::bool_switch(&help), "show help")(
      "inventory,i", po::value(&opts.inventory)->required(), "inventory file (INI or YAML)")(
      "limit,l", po::value(&opts.limit), "limit to hosts/groups (':' or ',' separated)")(
      "playbook-dir", po::value(&opts.playbook_dir),
      "playbooks directory (default: $ZDM_PLAYBOOK_DIR, else the source tree's playbooks/)")(
      "known-hosts", po::value(&opts.known_hosts),
      "known_hosts file (default: $ZDM_KNOWN_HOSTS, else ~/.ssh/known_hosts)");
  if (command == "migrate-data")
    desc.add_options()("group", po::value(&group),
                       "inventory group whose first host runs zdm-data");
  if (command == "deploy" || command == "rolling-update" || command == "deploy-monitoring" ||
      command == "run" || command == "migrate-data") {
    desc.add_options()("extra-vars,e", po::value(&opts.extra_vars)->composing(),
                       "k=v, @file.yml or a JSON mapping; repeatable")(
        "forks,f", po::value(&opts.forks)->default_value(5), "parallel hosts")(
        "verbose,v", po::bool_switch(), "print every task result");
  } else if (command == "dashboard") {
    desc.add_options()("listen", po::value(&dash.listen)->default_value(dash.listen),
                       "address:port of the page")(
        "dashboards", po::value(&dash.dashboards_dir),
        "Grafana dashboards directory (default: $ZDM_DASHBOARDS_DIR, else the source tree's "
        "monitoring/grafana/dashboards)");
    desc.add_options()("extra-vars,e", po::value(&opts.extra_vars)->composing(), "extra vars");
  } else if (command == "status") {
    desc.add_options()("json", po::bool_switch(&json), "print a JSON array");
    desc.add_options()("extra-vars,e", po::value(&opts.extra_vars)->composing(), "extra vars");
  } else {
    desc.add_options()("follow,f", po::bool_switch(&follow), "keep following (tail -F)")(
        "lines,n", po::value(&lines)->default_value(50), "lines of history per host");
    desc.add_options()("extra-vars,e", po::value(&opts.extra_vars)->composing(), "extra vars");
  }
  po::options_description hidden;
  hidden.add_options()("playbook", po::value(&playbook));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  if (command == "run") pos.add("playbook", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc - 1, argv + 1).options(all).positional(pos).run(), vm);
    if (vm.count("help") && vm["help"].as<bool>()) {
      std::cout << kUsage << '\n' << desc;
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "ERROR! " << e.what() << "\n\n" << kUsage;
    return kExitBadOptions;
  }
  if (vm.count("verbose") && vm["verbose"].as<bool>()) opts.verbosity = 1;
  if (opts.forks < 1) {
    std::cerr << "ERROR! --forks must be at least 1\n";
    return kExitBadOptions;
  }
  if (command == "dashboard" && (vm.count("limit") || vm.count("known-hosts"))) {
    std::cerr << "ERROR! dashboard connects to no host: --limit and --known-hosts do not apply\n";
    return kExitBadOptions;
  }
  if (lines < 0) {
    std::cerr << "ERROR! --lines must not be negative\n";
    return kExitBadOptions;
  }
  if (opts.playbook_dir.empty())
    opts.playbook_dir = env_or("ZDM_PLAYBOOK_DIR", std::string(ZDM_SOURCE_DIR) + "/playbooks");
  if (dash.dashboards_dir.empty())
    dash.dashboards_dir = env_or("ZDM_DASHBOARDS_DIR",
                                 std::string(ZDM_SOURCE_DIR) + "/monitoring/grafana/dashboards");
  if (opts.known_hosts.empty())
    opts.known_hosts = env_or("ZDM_KNOWN_HOSTS", env_or("HOME", "") + "/.ssh/known_hosts");

  try {
    if (command == "run") {
      if (playbook.empty()) {
        std::cerr << "ERROR! run needs a PLAYBOOK\n\n" << kUsage;
        return kExitBadOptions;
      }
      return run_playbook(playbook, opts, std::cout, std::cerr);
    }
    if (command == "deploy")
      return run_playbook((fs::path(opts.playbook_dir) / "deploy_proxy.yml").string(), opts,
                          std::cout, std::cerr);
    if (command == "rolling-update")
      return run_playbook((fs::path(opts.playbook_dir) / "rolling_update.yml").string(), opts,
                          std::cout, std::cerr);
    if (command == "deploy-monitoring")
      return run_playbook((fs::path(opts.playbook_dir) / "deploy_monitoring.yml").string(), opts,
                          std::cout, std::cerr);
    if (command == "migrate-data") {
      // The play targets all hosts and runs once: --limit picks the group, its first host runs.
      if (opts.limit.empty()) opts.limit = group;
      return run_playbook((fs::path(opts.playbook_dir) / "migrate_data.yml").string(), opts,
                          std::cout, std::cerr);
    }
    if (command == "status") return status(opts, json, std::cout, std::cerr);
    if (command == "dashboard") return dashboard(opts, dash, std::cout, std::cerr);
    return logs(opts, lines, follow, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "ERROR! " << e.what() << '\n';
    return kExitError;
  }
}
