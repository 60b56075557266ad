// zdm-deploy: the ZDM proxy fleet's deployer (docs/deployer.md).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include "commands.h"
#include "dashboard.h"
#include "engine/executor.h"
#include "inventory/vault.h"
#include "replay.h"
#include "target_switch.h"

#ifndef ZDM_SOURCE_DIR
#define ZDM_SOURCE_DIR "."
#endif

const char* zdm_build_commit();  // generated at build time

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace zdm::deploy;

namespace {

const char* kUsage = R"(usage: zdm-deploy COMMAND -i INVENTORY [options]

commands:
  deploy             deploy zdm-proxy; on a running fleet a rolling change: one proxy at a
                     time, its clients handed over first, readiness-gated, rolled back if not ready
  rolling-update     the same (ZDM automation's name). Both refuse to make primary_cluster
                     TARGET while a proxy's write journal holds unsettled writes (run replay
                     first; --ignore-journal overrides it, audited)
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
                     client connections, target switch and journal, last audit entry (--json)
  target disable | enable | status
                     the proxies' runtime target switch, on every proxy at once: disable holds
                     target's writes back (origin only, journaled; refused while primary_cluster
                     is TARGET), enable sends them again; per proxy: enabled/disabled, isolated,
                     journal bytes and unsettled writes (--json)
  replay [--rate N] [--no-validate]
                     each proxy's write journal applied to target by zdm-data replay --validate,
                     on the proxy host (up to --forks at once): the partitions it touched
                     compared with origin, a segment deleted only when all are equal; then what
                     is left (journal-status); per proxy: writes applied, torn tails, partitions
                     checked/equal/differing, exit status (--json)
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
      --json                machine-readable output (status, lock, target, and a run summary)
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

// Everything the command line sets.
struct Cli {
  std::string command;
  CommonOptions opts;
  DashboardOptions dash;
  LogOptions log;
  bool help = false, version = false, yes = false, ignore_journal = false;
  ReplayOptions replay;
  std::string data_group = "monitoring";
  TargetAction target_action = TargetAction::kStatus;
  std::string playbook, lock_action, message, rollback_to, dest, vault_file, known_hosts,
      ssh_config;
  int connect_timeout = 10;
  std::vector<std::string> positional;
};

// The options every command takes.
void common_options(po::options_description& desc, Cli& c) {
  desc.add_options()("help,h", po::bool_switch(&c.help), "show help")(
      "version", po::bool_switch(&c.version), "print the version")(
      "inventory,i", po::value(&c.opts.inventory)->required(), "inventory file (INI or YAML)")(
      "limit,l", po::value(&c.opts.limit), "hosts, groups, patterns or @RETRY_FILE")(
      "extra-vars,e", po::value(&c.opts.extra_vars)->composing(),
      "k=v, @file.yml or a JSON mapping; repeatable")(
      "playbook-dir", po::value(&c.opts.playbook_dir), "playbooks directory")(
      "known-hosts", po::value(&c.known_hosts), "known_hosts file")(
      "accept-new-host-keys", po::bool_switch(&c.opts.ssh.accept_new_host_keys),
      "add unknown host keys to known_hosts")("ssh-config", po::value(&c.ssh_config),
                                              "ssh_config file (\"none\": no file)")(
      "connect-timeout", po::value(&c.connect_timeout), "SSH connect timeout, seconds (10)")(
      "vault-password-file", po::value(&c.vault_file), "Ansible Vault password file")(
      "state-dir", po::value(&c.opts.state_dir), "local locks, audit log, retry files")(
      "json", po::bool_switch(&c.opts.json), "machine-readable output");
}

// The options of the commands that run a playbook.
void playbook_options(po::options_description& desc, Cli& c) {
  desc.add_options()("forks,f", po::value(&c.opts.forks)->default_value(5), "parallel hosts")(
      "serial", po::value(&c.opts.serial), "hosts per batch of the rolling plays")(
      "check,C", po::bool_switch(&c.opts.check), "dry run")("diff,D", po::bool_switch(&c.opts.diff),
                                                            "show file changes")(
      "list-hosts", po::bool_switch(&c.opts.list_hosts), "list the hosts of each play")(
      "timeout", po::value(&c.opts.task_timeout_seconds)->default_value(600),
      "bound on each remote command, seconds (0: none)");
}

// deploy and rolling-update: the cutover gate's override.
void deploy_options(po::options_description& desc, Cli& c) {
  playbook_options(desc, c);
  desc.add_options()("ignore-journal", po::bool_switch(&c.ignore_journal),
                     "make primary_cluster TARGET even while a proxy's journal holds writes "
                     "target has not got (audited)");
}

void replay_options(po::options_description& desc, Cli& c) {
  desc.add_options()("forks,f", po::value(&c.opts.forks)->default_value(5), "parallel hosts")(
      "timeout", po::value(&c.opts.task_timeout_seconds)->default_value(3600),
      "bound on each host's zdm-data replay, seconds (0: none; a rerun resumes)")(
      "rate", po::value<long long>()->notifier([&c](long long n) { c.replay.rate = n; }),
      "writes/s at most per host (zdm-data replay --rate; 0: no limit; default zdm-data's)")(
      "no-validate", po::bool_switch()->notifier([&c](bool b) { c.replay.validate = !b; }),
      "do not check the replayed partitions against origin (zdm-data replay without "
      "--validate: each segment deleted once applied)");
}

void rollback_options(po::options_description& desc, Cli& c) {
  playbook_options(desc, c);
  desc.add_options()("to", po::value(&c.rollback_to), "release id (or its leading part)");
}

void teardown_options(po::options_description& desc, Cli& c) {
  playbook_options(desc, c);
  desc.add_options()("yes", po::bool_switch(&c.yes), "yes, remove zdm-proxy from the hosts");
}

void migrate_data_options(po::options_description& desc, Cli& c) {
  playbook_options(desc, c);
  desc.add_options()("group", po::value(&c.data_group)->default_value(c.data_group),
                     "inventory group whose first host runs zdm-data");
}

void dashboard_options(po::options_description& desc, Cli& c) {
  desc.add_options()("listen", po::value(&c.dash.listen)->default_value(c.dash.listen),
                     "address:port of the page")("dashboards", po::value(&c.dash.dashboards_dir),
                                                 "Grafana dashboards directory");
}

void logs_options(po::options_description& desc, Cli& c) {
  desc.add_options()("follow,f", po::bool_switch(&c.log.follow), "keep following (tail -F)")(
      "lines,n", po::value(&c.log.lines)->default_value(50), "lines of history per host")(
      "since", po::value(&c.log.since), "lines since 30s, 10m, 2h, 1d or a UTC time")(
      "forks", po::value(&c.opts.forks)->default_value(5), "parallel hosts");
}

void collect_logs_options(po::options_description& desc, Cli& c) {
  desc.add_options()("dest", po::value(&c.dest), "directory for the archive")(
      "forks,f", po::value(&c.opts.forks)->default_value(5), "parallel hosts");
}

void lock_options(po::options_description& desc, Cli& c) {
  desc.add_options()("message,m", po::value(&c.message), "why (shown to the runs refused)")(
      "forks,f", po::value(&c.opts.forks)->default_value(5), "parallel hosts");
}

void status_options(po::options_description& desc, Cli& c) {
  desc.add_options()("forks,f", po::value(&c.opts.forks)->default_value(8), "parallel hosts");
}

// Positional arguments: none for most commands; the exit code of a wrong one, else -1.
int no_arguments(Cli& c) {
  if (c.positional.empty()) return -1;
  std::cerr << "ERROR! unexpected argument '" << c.positional[0] << "'\n\n" << kUsage;
  return kExitBadOptions;
}

int playbook_argument(Cli& c) {
  if (c.positional.size() != 1) {
    std::cerr << "ERROR! run needs one PLAYBOOK\n\n" << kUsage;
    return kExitBadOptions;
  }
  c.playbook = c.positional[0];
  return -1;
}

int lock_action_argument(Cli& c) {
  auto& p = c.positional;
  if (p.size() != 1 || (p[0] != "acquire" && p[0] != "release" && p[0] != "status")) {
    std::cerr << "ERROR! lock needs acquire, release or status\n";
    return kExitBadOptions;
  }
  c.lock_action = p[0];
  return -1;
}

int target_action_argument(Cli& c) {
  auto& p = c.positional;
  std::optional<TargetAction> a;
  if (p.size() == 1) a = parse_target_action(p[0]);
  if (!a) {
    std::cerr << "ERROR! target needs disable, enable or status\n\n" << kUsage;
    return kExitBadOptions;
  }
  c.target_action = *a;
  return -1;
}

int run_named_playbook(Cli& c);  // the command's playbook of playbooks/ (Subcommand::playbook)
int run_given_playbook(Cli& c) {
  // The playbooks that render primary_cluster into running proxies pass the cutover gate.
  std::string name = fs::path(c.playbook).filename().string();
  if (name == "deploy_proxy.yml" || name == "rolling_update.yml")
    if (int rc = cutover_gate(c.opts, c.ignore_journal, std::cerr); rc >= 0) return rc;
  return run_playbook(c.playbook, c.opts, std::cout, std::cerr);
}
int run_replay(Cli& c) {
  return replay_command_run(c.opts, c.replay, std::cout, std::cerr);
}
int run_status(Cli& c) {
  return status(c.opts, std::cout, std::cerr);
}
int run_logs(Cli& c) {
  return logs(c.opts, c.log, std::cout, std::cerr);
}
int run_collect_logs(Cli& c) {
  return collect_logs(c.opts, c.dest, std::cout, std::cerr);
}
int run_lock(Cli& c) {
  return lock_command(c.opts, c.lock_action, c.message, std::cout, std::cerr);
}
int run_target(Cli& c) {
  return target_command(c.opts, c.target_action, std::cout, std::cerr);
}
int run_dashboard(Cli& c) {
  return dashboard(c.opts, c.dash, std::cout, std::cerr);
}

// One line per command (add a line here for a new one; kUsage lists them for the user).
struct Subcommand {
  const char* name;
  const char* playbook;  // the file of playbooks/ it runs; nullptr: not a playbook command
  void (*options)(po::options_description&, Cli&);  // its options beyond common_options
  int (*arguments)(Cli&);                           // checks the positional arguments
  int (*run)(Cli&);                                 // returns an ExitCode
};
const Subcommand kCommands[] = {
    {"deploy", "deploy_proxy.yml", deploy_options, no_arguments, run_named_playbook},
    {"rolling-update", "rolling_update.yml", deploy_options, no_arguments, run_named_playbook},
    {"rolling-restart", "rolling_restart.yml", playbook_options, no_arguments, run_named_playbook},
    {"rollback", "rollback.yml", rollback_options, no_arguments, run_named_playbook},
    {"stop", "stop.yml", playbook_options, no_arguments, run_named_playbook},
    {"start", "start.yml", playbook_options, no_arguments, run_named_playbook},
    {"teardown", "teardown.yml", teardown_options, no_arguments, run_named_playbook},
    {"deploy-monitoring", "deploy_monitoring.yml", playbook_options, no_arguments,
     run_named_playbook},
    {"migrate-data", "migrate_data.yml", migrate_data_options, no_arguments, run_named_playbook},
    {"run", nullptr, deploy_options, playbook_argument, run_given_playbook},
    {"replay", nullptr, replay_options, no_arguments, run_replay},
    {"status", nullptr, status_options, no_arguments, run_status},
    {"target", nullptr, status_options, target_action_argument, run_target},
    {"logs", nullptr, logs_options, no_arguments, run_logs},
    {"collect-logs", nullptr, collect_logs_options, no_arguments, run_collect_logs},
    {"lock", nullptr, lock_options, lock_action_argument, run_lock},
    {"dashboard", nullptr, dashboard_options, no_arguments, run_dashboard},
};

const Subcommand* find_command(const std::string& name) {
  for (const auto& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

int run_named_playbook(Cli& c) {
  const Subcommand* sc = find_command(c.command);
  // deploy and rolling-update render primary_cluster into the running proxies: the cutover gate.
  if (c.command == "deploy" || c.command == "rolling-update")
    if (int rc = cutover_gate(c.opts, c.ignore_journal, std::cerr); rc >= 0) return rc;
  return run_playbook((fs::path(c.opts.playbook_dir) / sc->playbook).string(), c.opts, std::cout,
                      std::cerr);
}

// The command line as the audit trail and the locks show it: "zdm-deploy" and the arguments,
// those with a space quoted.
std::string shown_command_line(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    std::string a = i == 0 ? "zdm-deploy" : argv[i];
    line += (i ? " " : "") + (a.find(' ') != std::string::npos ? "'" + a + "'" : a);
  }
  return line;
}

// -v, -vv, -vvv and --verbose counted into `verbosity`; the other arguments after the command.
std::vector<std::string> count_verbosity(int argc, char** argv, int& verbosity) {
  std::vector<std::string> args;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--verbose") {
      ++verbosity;
    } else if (a.size() >= 2 && a[0] == '-' && a[1] == 'v' &&
               a.find_first_not_of('v', 1) == std::string::npos) {
      verbosity += static_cast<int>(a.size() - 1);
    } else {
      args.push_back(a);
    }
  }
  return args;
}

// Parses the options of `sc`; the exit code when done (help, an error), else -1.
int parse_options(const Subcommand& sc, const std::vector<std::string>& args, Cli& c,
                  po::variables_map& vm) {
  po::options_description desc("options");
  common_options(desc, c);
  sc.options(desc, c);
  po::options_description hidden;
  hidden.add_options()("positional", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("positional", -1);
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    if (c.help || (vm.count("help") && vm["help"].as<bool>())) {
      std::cout << kUsage << '\n' << desc;
      return kExitOk;
    }
    po::notify(vm);
    if (vm.count("positional")) c.positional = vm["positional"].as<std::vector<std::string>>();
  } catch (const po::error& e) {
    std::cerr << "ERROR! " << e.what() << "\n\n" << kUsage;
    return kExitBadOptions;
  }
  return -1;
}

// The checks across options; the exit code of a bad combination, else -1.
int check_options(const Cli& c, const po::variables_map& vm) {
  if (c.opts.forks < 1) {
    std::cerr << "ERROR! --forks must be at least 1\n";
    return kExitBadOptions;
  }
  if (c.log.lines < 0) {
    std::cerr << "ERROR! --lines must not be negative\n";
    return kExitBadOptions;
  }
  if (!c.opts.serial.empty()) {
    std::string s = c.opts.serial;
    bool pct = s.back() == '%';
    if (pct) s.pop_back();
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s == "0") {
      std::cerr << "ERROR! --serial must be a positive number or a percentage like 50%\n";
      return kExitBadOptions;
    }
  }
  if (c.command == "teardown" && !c.yes && !c.opts.check && !c.opts.list_hosts) {
    std::cerr << "ERROR! teardown stops zdm-proxy and removes it from the hosts: run it with "
                 "--yes (collect-logs first to keep the logs)\n";
    return kExitBadOptions;
  }
  if (c.command == "dashboard" && (vm.count("limit") || !c.known_hosts.empty())) {
    std::cerr << "ERROR! dashboard connects to no host: --limit and --known-hosts do not apply\n";
    return kExitBadOptions;
  }
  return -1;
}

// Defaults from the environment and what the options imply.
void apply_defaults(Cli& c) {
  CommonOptions& o = c.opts;
  if (o.playbook_dir.empty())
    o.playbook_dir = env_or("ZDM_PLAYBOOK_DIR", std::string(ZDM_SOURCE_DIR) + "/playbooks");
  if (c.dash.dashboards_dir.empty())
    c.dash.dashboards_dir = env_or("ZDM_DASHBOARDS_DIR",
                                   std::string(ZDM_SOURCE_DIR) + "/monitoring/grafana/dashboards");
  o.ssh.known_hosts = c.known_hosts.empty() ? env_or("ZDM_KNOWN_HOSTS", "") : c.known_hosts;
  o.ssh.ssh_config_path = c.ssh_config.empty() ? env_or("ZDM_SSH_CONFIG", "") : c.ssh_config;
  o.ssh.timeout_seconds = c.connect_timeout;
  if (!c.rollback_to.empty()) o.extra_vars.push_back("zdm_rollback_to=" + c.rollback_to);
  // migrate_data.yml's play targets all hosts and runs once: --limit picks the group.
  if (c.command == "migrate-data" && o.limit.empty()) o.limit = c.data_group;
  o.extra_vars.insert(o.extra_vars.begin(), "zdm_command=" + c.command);
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
  Cli c;
  c.command = argv[1];
  const Subcommand* sc = find_command(c.command);
  if (!sc) {
    std::cerr << "ERROR! unknown command '" << c.command << "'\n\n" << kUsage;
    return kExitBadOptions;
  }
  c.opts.command = c.command;
  c.opts.command_line = shown_command_line(argc, argv);
  std::vector<std::string> args = count_verbosity(argc, argv, c.opts.verbosity);
  po::variables_map vm;
  if (int rc = parse_options(*sc, args, c, vm); rc >= 0) return rc;
  if (int rc = sc->arguments(c); rc >= 0) return rc;
  if (int rc = check_options(c, vm); rc >= 0) return rc;
  apply_defaults(c);
  try {
    if (!c.vault_file.empty()) set_vault_password(read_vault_password_file(c.vault_file));
    return sc->run(c);
  } catch (const std::exception& e) {
    std::cerr << "ERROR! " << e.what() << '\n';
    return kExitError;
  }
}
