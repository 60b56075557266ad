// zdm-deploy: the ZDM proxy fleet's deployer (docs/deployer.md).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include "commands.h"
#include "dashboard.h"
#include "executor.h"
#include "inventory/vault.h"

#ifndef ZDM_SOURCE_DIR
#define ZDM_SOURCE_DIR "."
#endif

const char* zdm_build_commit();  // generated at build time

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace zdm::deploy;

namespace {

// Commands that run one of playbooks/ (add a line here for a new one).
struct PlaybookCommand {
  const char* name;
  const char* playbook;
  const char* help;
};
const PlaybookCommand kPlaybookCommands[] = {
    {"deploy", "deploy_proxy.yml", "deploy zdm-proxy (on a running fleet: a rolling change)"},
    {"rolling-update", "rolling_update.yml", "the same, under ZDM automation's name"},
    {"rolling-restart", "rolling_restart.yml", "restart every proxy, one at a time, handed over"},
    {"rollback", "rollback.yml", "[--to RELEASE] back to the previous (or that) release, rolling"},
    {"stop", "stop.yml", "hand over and stop the proxies (usually with --limit)"},
    {"start", "start.yml", "start stopped proxies and hand their clients back"},
    {"teardown", "teardown.yml", "--yes: stop and remove zdm-proxy from the hosts (phase 5)"},
    {"deploy-monitoring", "deploy_monitoring.yml", "Prometheus, Alertmanager, node exporters"},
    {"migrate-data", "migrate_data.yml",
     "zdm-data backfill, then validate, on the first host of --group (default monitoring)"},
};

const char* kUsage = R"(usage: zdm-deploy COMMAND -i INVENTORY [options]

commands:
  deploy             deploy zdm-proxy; on a running fleet a rolling change: one proxy at a
                     time, its clients handed over first, readiness-gated, rolled back if not ready
  rolling-update     the same (ZDM automation's name)
  rolling-restart    restart every proxy one at a time, handed over
  rollback [--to RELEASE]
                     back to each proxy's previous release (or RELEASE), rolling
  stop | start       hand over and stop / start and hand back (usually with --limit)
  teardown --yes     stop and remove zdm-proxy (the migration's phase 5)
  deploy-monitoring  node exporters, Prometheus, Alertmanager (+ Grafana)
  migrate-data -e zdm_data_keyspace=KS [-e zdm_data_tables=t1,t2] [--group GROUP]
                     zdm-data backfill, then validate, on the first host of GROUP (default
                     monitoring), with the proxies' cluster settings (the migration's phase 2)
  run PLAYBOOK       any playbook
  status             per proxy: state, pid, version, release, config checksum, readiness, uptime,
                     client connections, last audit entry (--json)
  logs               every proxy's log, host-prefixed (-f, -n LINES, --since 10m)
  collect-logs       one archive of every proxy's logs and configuration, secrets redacted
  lock acquire [-m MESSAGE] | release | status
                     hold off every run on this inventory (runs take the lock themselves)
  dashboard          the dashboards page (--listen ADDR:PORT)

options (most commands):
  -i, --inventory FILE      Ansible INI or YAML inventory
  -e, --extra-vars VARS     k=v, @file.yml or a JSON/YAML mapping; repeatable; highest precedence
  -l, --limit PATTERN       hosts, groups, patterns (a:b,!c, web*), or @RETRY_FILE
  -f, --forks N             hosts in parallel (default 5)
      --serial N            hosts per batch of the rolling plays (default their own: 1)
  -C, --check               dry run: what would change, per host; nothing changes
  -D, --diff                show what changes in files (configuration diff, secrets redacted)
      --list-hosts          the hosts each play would run on
  -v, -vv, -vvv             more output
      --json                machine-readable output (status, lock, and a run summary)
      --timeout SECONDS     bound on each remote command (default 600)
      --known-hosts FILE    known_hosts (default ~/.ssh/config's UserKnownHostsFile, then
                            ~/.ssh/known_hosts; $ZDM_KNOWN_HOSTS)
      --accept-new-host-keys
                            add unknown host keys to known_hosts (a changed key is refused)
      --ssh-config FILE     ssh_config (default ~/.ssh/config; "none": no file)
      --vault-password-file FILE
                            decrypt Ansible Vault vars files and !vault values
      --playbook-dir DIR    playbooks (default $ZDM_PLAYBOOK_DIR, else the installed ones)
      --state-dir DIR       local locks, audit log, retry files (default ~/.local/state/zdm-deploy)
      --version             print the version

exit codes: 0 ok, 1 error (or lock held), 2 a host failed, 4 unreachable host or parse error,
5 bad options, 99 interrupted (Ctrl-C: the hosts in progress were finished first)
)";

std::string env_or(const char* name, const std::string& dflt) {
  const char* v = std::getenv(name);
  return v && *v ? v : dflt;
}

const PlaybookCommand* find_playbook_command(const std::string& name) {
  for (const auto& c : kPlaybookCommands)
    if (name == c.name) return &c;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--version") {
    std::cout << "zdm-deploy " << ZDM_VERSION << " (commit " << zdm_build_commit() << ")\n";
    return kExitOk;
  }
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::cout << kUsage;
    return argc < 2 ? kExitBadOptions : kExitOk;
  }
  std::string command = argv[1];
  const PlaybookCommand* pbc = find_playbook_command(command);
  static const std::set<std::string> others = {"run",          "status", "logs",
                                               "collect-logs", "lock",   "dashboard"};
  if (!pbc && !others.count(command)) {
    std::cerr << "ERROR! unknown command '" << command << "'\n\n" << kUsage;
    return kExitBadOptions;
  }
  CommonOptions opts;
  opts.command = command;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i == 0) a = "zdm-deploy";
    opts.command_line += (i ? " " : "") + (a.find(' ') != std::string::npos ? "'" + a + "'" : a);
  }
  // -v, -vv, -vvv (counted before the other options are parsed).
  std::vector<std::string> args;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--verbose") {
      ++opts.verbosity;
    } else if (a.size() >= 2 && a[0] == '-' && a[1] == 'v' &&
               a.find_first_not_of('v', 1) == std::string::npos) {
      opts.verbosity += static_cast<int>(a.size() - 1);
    } else {
      args.push_back(a);
    }
  }
  DashboardOptions dash;
  LogOptions log;
  bool help = false, version = false, yes = false;
  std::string data_group = "monitoring";
  std::string playbook, lock_action, message, rollback_to, dest, vault_file, known_hosts,
      ssh_config;
  int connect_timeout = 10;
  po::options_description desc("options");
  desc.add_options()("help,h", po::bool_switch(&help), "show help")(
      "version", po::bool_switch(&version), "print the version")(
      "inventory,i", po::value(&opts.inventory)->required(), "inventory file (INI or YAML)")(
      "limit,l", po::value(&opts.limit), "hosts, groups, patterns or @RETRY_FILE")(
      "extra-vars,e", po::value(&opts.extra_vars)->composing(),
      "k=v, @file.yml or a JSON mapping; repeatable")("playbook-dir", po::value(&opts.playbook_dir),
                                                      "playbooks directory")(
      "known-hosts", po::value(&known_hosts), "known_hosts file")(
      "accept-new-host-keys", po::bool_switch(&opts.ssh.accept_new_host_keys),
      "add unknown host keys to known_hosts")("ssh-config", po::value(&ssh_config),
                                              "ssh_config file (\"none\": no file)")(
      "connect-timeout", po::value(&connect_timeout), "SSH connect timeout, seconds (10)")(
      "vault-password-file", po::value(&vault_file), "Ansible Vault password file")(
      "state-dir", po::value(&opts.state_dir), "local locks, audit log, retry files")(
      "json", po::bool_switch(&opts.json), "machine-readable output");
  if (pbc || command == "run") {
    desc.add_options()("forks,f", po::value(&opts.forks)->default_value(5), "parallel hosts")(
        "serial", po::value(&opts.serial), "hosts per batch of the rolling plays")(
        "check,C", po::bool_switch(&opts.check), "dry run")("diff,D", po::bool_switch(&opts.diff),
                                                            "show file changes")(
        "list-hosts", po::bool_switch(&opts.list_hosts), "list the hosts of each play")(
        "timeout", po::value(&opts.task_timeout_seconds)->default_value(600),
        "bound on each remote command, seconds (0: none)");
    if (command == "rollback")
      desc.add_options()("to", po::value(&rollback_to), "release id (or its leading part)");
    if (command == "teardown")
      desc.add_options()("yes", po::bool_switch(&yes), "yes, remove zdm-proxy from the hosts");
    if (command == "migrate-data")
      desc.add_options()("group", po::value(&data_group)->default_value(data_group),
                         "inventory group whose first host runs zdm-data");
  } else if (command == "dashboard") {
    desc.add_options()("listen", po::value(&dash.listen)->default_value(dash.listen),
                       "address:port of the page")("dashboards", po::value(&dash.dashboards_dir),
                                                   "Grafana dashboards directory");
  } else if (command == "logs") {
    desc.add_options()("follow,f", po::bool_switch(&log.follow), "keep following (tail -F)")(
        "lines,n", po::value(&log.lines)->default_value(50), "lines of history per host")(
        "since", po::value(&log.since), "lines since 30s, 10m, 2h, 1d or a UTC time")(
        "forks", po::value(&opts.forks)->default_value(5), "parallel hosts");
  } else if (command == "collect-logs") {
    desc.add_options()("dest", po::value(&dest), "directory for the archive")(
        "forks,f", po::value(&opts.forks)->default_value(5), "parallel hosts");
  } else if (command == "lock") {
    desc.add_options()("message,m", po::value(&message), "why (shown to the runs refused)")(
        "forks,f", po::value(&opts.forks)->default_value(5), "parallel hosts");
  } else {
    desc.add_options()("forks,f", po::value(&opts.forks)->default_value(8), "parallel hosts");
  }
  po::options_description hidden;
  hidden.add_options()("positional", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("positional", -1);
  po::variables_map vm;
  std::vector<std::string> positional;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    if (help) {
      std::cout << kUsage << '\n' << desc;
      return kExitOk;
    }
    if (vm.count("help") && vm["help"].as<bool>()) {
      std::cout << kUsage << '\n' << desc;
      return kExitOk;
    }
    po::notify(vm);
    if (vm.count("positional")) positional = vm["positional"].as<std::vector<std::string>>();
  } catch (const po::error& e) {
    std::cerr << "ERROR! " << e.what() << "\n\n" << kUsage;
    return kExitBadOptions;
  }
  if (command == "run") {
    if (positional.size() != 1) {
      std::cerr << "ERROR! run needs one PLAYBOOK\n\n" << kUsage;
      return kExitBadOptions;
    }
    playbook = positional[0];
  } else if (command == "lock") {
    if (positional.size() != 1 ||
        (positional[0] != "acquire" && positional[0] != "release" && positional[0] != "status")) {
      std::cerr << "ERROR! lock needs acquire, release or status\n";
      return kExitBadOptions;
    }
    lock_action = positional[0];
  } else if (!positional.empty()) {
    std::cerr << "ERROR! unexpected argument '" << positional[0] << "'\n\n" << kUsage;
    return kExitBadOptions;
  }
  if (opts.forks < 1) {
    std::cerr << "ERROR! --forks must be at least 1\n";
    return kExitBadOptions;
  }
  if (log.lines < 0) {
    std::cerr << "ERROR! --lines must not be negative\n";
    return kExitBadOptions;
  }
  if (!opts.serial.empty()) {
    std::string s = opts.serial;
    bool pct = s.back() == '%';
    if (pct) s.pop_back();
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s == "0") {
      std::cerr << "ERROR! --serial must be a positive number or a percentage like 50%\n";
      return kExitBadOptions;
    }
  }
  if (command == "teardown" && !yes && !opts.check && !opts.list_hosts) {
    std::cerr << "ERROR! teardown stops zdm-proxy and removes it from the hosts: run it with "
                 "--yes (collect-logs first to keep the logs)\n";
    return kExitBadOptions;
  }
  if (command == "dashboard" && (vm.count("limit") || !known_hosts.empty())) {
    std::cerr << "ERROR! dashboard connects to no host: --limit and --known-hosts do not apply\n";
    return kExitBadOptions;
  }
  if (opts.playbook_dir.empty())
    opts.playbook_dir = env_or("ZDM_PLAYBOOK_DIR", std::string(ZDM_SOURCE_DIR) + "/playbooks");
  if (dash.dashboards_dir.empty())
    dash.dashboards_dir = env_or("ZDM_DASHBOARDS_DIR",
                                 std::string(ZDM_SOURCE_DIR) + "/monitoring/grafana/dashboards");
  opts.ssh.known_hosts = known_hosts.empty() ? env_or("ZDM_KNOWN_HOSTS", "") : known_hosts;
  opts.ssh.ssh_config_path = ssh_config.empty() ? env_or("ZDM_SSH_CONFIG", "") : ssh_config;
  opts.ssh.timeout_seconds = connect_timeout;
  if (!rollback_to.empty()) opts.extra_vars.push_back("zdm_rollback_to=" + rollback_to);
  // migrate_data.yml's play targets all hosts and runs once: --limit picks the group.
  if (command == "migrate-data" && opts.limit.empty()) opts.limit = data_group;
  opts.extra_vars.insert(opts.extra_vars.begin(), "zdm_command=" + command);

  try {
    if (!vault_file.empty()) set_vault_password(read_vault_password_file(vault_file));
    if (pbc)
      return run_playbook((fs::path(opts.playbook_dir) / pbc->playbook).string(), opts, std::cout,
                          std::cerr);
    if (command == "run") return run_playbook(playbook, opts, std::cout, std::cerr);
    if (command == "status") return status(opts, std::cout, std::cerr);
    if (command == "dashboard") return dashboard(opts, dash, std::cout, std::cerr);
    if (command == "collect-logs") return collect_logs(opts, dest, std::cout, std::cerr);
    if (command == "lock") return lock_command(opts, lock_action, message, std::cout, std::cerr);
    return logs(opts, log, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "ERROR! " << e.what() << '\n';
    return kExitError;
  }
}
