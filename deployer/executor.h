// Runs a plan over SSH: batches in order, tasks in order across a batch's hosts (in
// parallel, bounded by forks), Ansible-style output and recap, Ansible's exit codes.
#pragma once

#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "inventory.h"
#include "modules.h"
#include "plan.h"
#include "playbook.h"
#include "transport.h"

namespace zdm::deploy {

// Ansible's exit codes (TaskQueueManager RUN_*).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitHostFailed = 2,
  kExitUnreachable = 4,  // also parse errors
  kExitBadOptions = 5,
};

struct ExecOptions {
  int forks = 5;
  std::string known_hosts;
  int verbosity = 0;
  int connect_timeout_seconds = 10;
};

struct HostStats {
  int ok = 0, changed = 0, unreachable = 0, failed = 0, skipped = 0, rescued = 0, ignored = 0;
};

// Connection settings for a host from its variables (ansible_host, ansible_port,
// ansible_user, ansible_ssh_private_key_file, ansible_connection).
ConnectParams connect_params(const std::string& name, const Json& scope,
                             const std::string& known_hosts, int timeout_seconds);

class Executor {
 public:
  Executor(const Playbook& pb, Plan& plan, ExecOptions opts, std::ostream& out);
  ~Executor();
  // Runs every play; returns an ExitCode.
  int run();
  const std::map<std::string, HostStats>& stats() const { return stats_; }

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
                         const std::vector<std::string>& when);
  void report(const Task& t, const std::string& host, const TaskResult& r, bool ignored);
  void header(const std::string& kind, const std::string& name);
  void line(const std::string& text);
  bool active(const std::string& host) const;

  const Playbook& pb_;
  Plan& plan_;
  ExecOptions opts_;
  std::ostream& out_;
  std::mutex out_mu_;
  std::map<std::string, std::unique_ptr<HostState>> hosts_;
  std::map<std::string, HostStats> stats_;
  std::vector<std::string> order_;  // hosts in first-seen order, for the recap
  bool abort_play_ = false;
  bool end_run_ = false;
};

}  // namespace zdm::deploy
