// One invocation of a playbook (deploy, rolling-restart, run PLAYBOOK, ...): the inventory, the
// playbook and the plan, the options, and one connection per host for the whole run, which the
// lock, the tasks, the audit trail and the release share.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/executor.h"
#include "engine/playbook.h"
#include "inventory/inventory.h"
#include "options.h"
#include "ssh/connections.h"
#include "ssh/lock.h"

namespace zdm::deploy {

class Run {
 public:
  // `connector` opens the hosts' transports (default_connector() when null: SSH, or /bin/sh for
  // ansible_connection=local).
  Run(std::string playbook, CommonOptions opts, std::shared_ptr<Connector> connector = nullptr);
  ~Run();

  // Loads the inventory and the playbook, checks the variables, takes the locks (unless
  // --check), executes, writes the audit trail and releases the locks; returns an ExitCode
  // (kExitUnreachable for a load or secret error, kExitError for a refused lock). The run's
  // output goes to `out`, errors to `err`.
  int execute(std::ostream& out, std::ostream& err);

  // The run's connections: one per host that was reached (connects() counts them).
  const HostConnections& connections() const { return *connections_; }

 private:
  // Loads inventory, playbook and plan; false (the error printed) on failure.
  bool load(std::ostream& err);
  void list_hosts(std::ostream& out) const;
  // The local lock, then every host's; false (the error printed, locks released) when refused.
  bool take_locks(std::ostream& err);
  void release_locks(std::ostream& err);
  // One audit line per host, on the host and in the state directory; the retry file.
  void write_audit(const Executor& ex, std::ostream& out);
  // The run's summary for the reporter (--json prints it): exit_code, every host's outcome.
  Json summary(const Executor& ex, int rc) const;
  ConnectParams params(const std::string& host) const;
  // Runs `command` on the host over the run's connection; a connection lost since it was last
  // used is reopened once.
  ExecResult exec_on(const std::string& host, const std::string& command, int timeout_seconds);

  std::string playbook_;
  CommonOptions opts_;
  Inventory inv_;
  Playbook pb_;
  Plan plan_;
  PlanOptions po_;
  ExecOptions eo_;
  std::shared_ptr<HostConnections> connections_;
  std::vector<std::string> hosts_;      // the hosts this run touches, in first-seen order
  std::map<std::string, Json> scopes_;  // their variables (their first play's)
  LockHolder me_;
  std::string state_dir_, local_lock_, shown_command_;
  std::vector<std::pair<std::string, std::string>> locks_taken_;  // (host, lock directory)
  std::mutex mu_;
};

// Helpers the commands share.

// Runs f(i) for i in [0, n) on up to `forks` threads.
void parallel_for(size_t n, int forks, const std::function<void(size_t)>& f);

// Where a host keeps its lock and audit log: the proxy's or the monitoring stack's home
// (zdm_proxy_home_dir / monitoring_home_dir and their defaults), else kFallbackHostDir
// ("$HOME/.zdm-deploy": quote it with quote_host_path, which leaves $HOME to the host's shell).
std::string host_lock_dir(const std::string& host, const Json& scope, const Inventory& inv);

// Throws InventoryError when the inventory has no (or an empty) [proxies] group, naming the
// groups it has and a near name.
void require_proxies(const Inventory& inv);

}  // namespace zdm::deploy
