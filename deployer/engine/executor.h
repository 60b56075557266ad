// Runs a plan over SSH: batches in order, tasks in order across a batch's hosts (in
// parallel, bounded by forks), events to a reporter (engine/reporter.h), Ansible's exit codes.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine/diff.h"
#include "engine/modules.h"
#include "engine/plan.h"
#include "engine/playbook.h"
#include "engine/reporter.h"
#include "inventory/inventory.h"
#include "ssh/connect.h"
#include "ssh/connections.h"
#include "ssh/transport.h"

namespace zdm::deploy {

// Ansible's exit codes (TaskQueueManager RUN_*), and ours for a refused lock.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitHostFailed = 2,
  kExitUnreachable = 4,  // also parse errors
  kExitBadOptions = 5,
  kExitInterrupted = 99,  // Ctrl-C: the hosts in progress were finished, the rest not touched
};

struct ExecOptions {
  int forks = 5;
  SshSettings ssh;
  int verbosity = 0;
  bool check = false;            // --check: dry run
  bool diff = false;             // --diff: show what changes in files
  int task_timeout_seconds = 0;  // default bound on each remote command (0: none)
  std::shared_ptr<Redactor> redactor = std::make_shared<Redactor>();
  // The run's connections, shared with the lock and the audit trail (null: the executor's own,
  // over the default connector).
  std::shared_ptr<HostConnections> connections;
};

// Connection settings for a host from its variables (ansible_host, ansible_port,
// ansible_user, ansible_ssh_private_key_file, ansible_ssh_common_args, ansible_ssh_extra_args,
// ansible_connection) and ~/.ssh/config. Warnings ("not supported: ...") are appended.
ConnectParams connect_params(const std::string& name, const Json& scope, const SshSettings& ssh,
                             std::vector<std::string>* warnings = nullptr);

class Executor {
 public:
  // Every event goes to `reporter`.
  Executor(const Playbook& pb, Plan& plan, ExecOptions opts, Reporter& reporter);
  // The text output (TextReporter) on `out`.
  Executor(const Playbook& pb, Plan& plan, ExecOptions opts, std::ostream& out);
  ~Executor();
  // Runs every play; returns an ExitCode.
  int run();
  const std::map<std::string, HostStats>& stats() const { return stats_; }
  // Facts set on a host during the run (register, set_fact).
  Json facts(const std::string& host) const;
  // Every host of the plan with its outcome, in first-seen order.
  std::vector<std::pair<std::string, HostOutcome>> outcomes() const;

 private:
  struct HostState;
  void run_play(PlayPlan& pp);
  // Runs tasks on hosts; inherited `when` conditions come from enclosing blocks.
  void run_list(const std::vector<Task>& tasks, const std::vector<std::string>& hosts, PlayPlan& pp,
                const std::vector<std::string>& when);
  void run_block(const Task& t, const std::vector<std::string>& hosts, PlayPlan& pp,
                 const std::vector<std::string>& when);
  void run_task(const Task& t, const std::vector<std::string>& hosts, PlayPlan& pp,
                const std::vector<std::string>& when, const char* kind = "TASK");
  // Runs the play's notified handlers, in their order, on those of `hosts` that notified them.
  void run_handlers(const std::vector<std::string>& hosts, PlayPlan& pp);
  TaskResult run_on_host(const Task& t, const std::string& host, PlayPlan& pp,
                         const std::vector<std::string>& when, const Json& hostvars);
  // One run of a task's module (one loop item): conditions, retries, changed_when/failed_when.
  TaskResult run_item(const Task& t, const std::string& host, PlayPlan& pp,
                      const std::vector<std::string>& conds, Json& scope, bool check);
  // run_item's steps, whose errors run_item turns into a failed result: skip or render the
  // arguments, run the module (with retries), then debug's text and changed_when/failed_when.
  TaskResult run_item_unguarded(const Task& t, const std::string& host, PlayPlan& pp,
                                const std::vector<std::string>& conds, const Json& scope,
                                bool check);
  // The module's transport, connected on first use: the host's run connection, or this
  // machine's (`local_transport`, for delegate_to: localhost).
  std::function<Transport&()> transport_for(const std::string& host, const Json& scope, bool local,
                                            std::unique_ptr<Transport>& local_transport);
  // Runs the module until its until: holds (retries times at most, `delay` seconds apart); a
  // lost connection ends it unreachable unless an attempt is left.
  TaskResult run_attempts(const Task& t, const std::string& host, const Json& args,
                          ModuleContext& ctx, long long retries, double delay);
  // hostvars as tasks see them: every host's variables with the facts set so far.
  Json live_hostvars(const PlayPlan& pp) const;
  bool active(const std::string& host) const;

  const Playbook& pb_;
  Plan& plan_;
  ExecOptions opts_;
  std::unique_ptr<Reporter> own_reporter_;  // the text one, when given a stream
  Reporter& reporter_;
  std::map<std::string, std::unique_ptr<HostState>> hosts_;
  std::map<std::string, HostStats> stats_;
  std::vector<std::string> order_;  // hosts in first-seen order, for the recap
  bool abort_play_ = false;
  // Blocks with a rescue around the task running now: its failure is theirs to handle.
  int rescuable_ = 0;
  bool end_run_ = false;
  bool interrupted_ = false;
};

}  // namespace zdm::deploy
