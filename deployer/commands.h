// The CLI's operations: run a playbook (with locks, the variable check, secrets kept out of the
// output, the audit trail), status of the proxies, their logs, an archive of them, locks.
#pragma once

#include <iosfwd>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/diff.h"
#include "engine/plan.h"
#include "inventory/inventory.h"
#include "options.h"
#include "preflight.h"
#include "ssh/connect.h"

namespace zdm::deploy {

using Json = nlohmann::json;

// A proxy host (the [proxies] group, after --limit) and the variables deploy_proxy.yml gives it.
struct ProxyHost {
  std::string host;  // inventory name
  Json scope;        // its variables, every layer merged
};

// Loads the inventory (into `inv`) and deploy_proxy.yml from --playbook-dir: the proxies in
// inventory order. With `secrets`, every secret variable's value is added to it
// (collect_secrets). Throws InventoryError (no [proxies]), PlaybookError, VarsError, SecretError.
std::vector<ProxyHost> proxy_hosts(const CommonOptions& opts, Inventory& inv,
                                   Redactor* secrets = nullptr);

// `expr` (a template expression such as "zdm_home") rendered as text with the host's variables.
// Throws the template's errors.
std::string host_var(const ProxyHost& h, const std::string& expr);

// Loads inventory + playbook, checks the variables, takes the locks, executes, writes the audit
// trail; returns an ExitCode. Errors go to err.
int run_playbook(const std::string& playbook, const CommonOptions& opts, std::ostream& out,
                 std::ostream& err);

// Parses `zdmctl status` output (key=value lines).
std::map<std::string, std::string> parse_key_values(const std::string& text);

// Per proxy host, over SSH: `zdmctl status --json` (process, version, release, configuration
// checksum, readiness, uptime, client connections, last audit line) and, when it runs, the
// target switch and journal (`zdmctl admin GET /api/v1/target`: "target" is target_state_json,
// null when the proxy has no target switch, "target_error" for any other failure; neither
// changes the exit code). Unreachable hosts say so.
int status(const CommonOptions& opts, std::ostream& out, std::ostream& err);

struct LogOptions {
  int lines = 50;
  bool follow = false;
  std::string since;  // "10m", "2h", "1d", or an ISO time (UTC): lines logged since then
};
// Every selected proxy's log, each line prefixed "[host] ", interleaved as they come.
int logs(const CommonOptions& opts, const LogOptions& log, std::ostream& out, std::ostream& err);

// One .tar.gz of every proxy host's logs, configuration (secrets redacted), releases, state and
// audit trail, in `dest` (default ./<archived_log_dir_name>). Prints the archive's path.
int collect_logs(const CommonOptions& opts, const std::string& dest, std::ostream& out,
                 std::ostream& err);

// zdm-deploy lock acquire [-m MESSAGE] | release | status: the lock of every host of the
// inventory and this machine's.
int lock_command(const CommonOptions& opts, const std::string& action, const std::string& message,
                 std::ostream& out, std::ostream& err);

// The cutoff for --since: "30s", "10m", "2h", "1d" before `now`, or an ISO time; as
// "YYYY-MM-DDTHH:MM:SS" (UTC). Throws std::invalid_argument.
std::string since_cutoff(const std::string& since, long long now_epoch_seconds);

}  // namespace zdm::deploy
