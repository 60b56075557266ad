// What a run shows: the executor emits events (a play or task starts, a host's result, a retry,
// a warning, the recap) and a reporter turns them into output. The executor prints nothing.
#pragma once

#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/diff.h"
#include "engine/modules.h"
#include "engine/playbook.h"

namespace zdm::deploy {

using Json = nlohmann::json;

struct HostStats {
  int ok = 0, changed = 0, unreachable = 0, failed = 0, skipped = 0, rescued = 0, ignored = 0;
};

// What happened to a host in a run, for the recap's attention list and the audit trail.
struct HostOutcome {
  std::string status;   // ok, changed, failed, unreachable, interrupted, untouched
  std::string message;  // the last failure's message
  std::string task;     // the task that failed, "file:line name"
};

// The events of a run. Called from the executor's threads: implementations are thread-safe.
class Reporter {
 public:
  virtual ~Reporter() = default;
  // A play starts (`name`: its name, else its hosts pattern); no_hosts: it matched none.
  virtual void play_start(const std::string& name) = 0;
  virtual void play_no_hosts() = 0;
  // A task starts; kind is "TASK" or "RUNNING HANDLER".
  virtual void task_start(const std::string& kind, const std::string& name) = 0;
  // A host's result of task `t`: ok/changed/failed/skipped/unreachable; `ignored`: a failure
  // ignore_errors let pass.
  virtual void host_result(const Task& t, const std::string& host, const TaskResult& r,
                           bool ignored) = 0;
  // An until: task retries on `host`; `lost` is the lost connection's message ("" if none).
  virtual void retrying(const Task& t, const std::string& host, long long retries_left,
                        const std::string& lost) = 0;
  // A warning (connection settings not honoured, ...), shown once per text.
  virtual void warning(const std::string& text) = 0;
  // Ctrl-C: the run stops; `text` says where.
  virtual void interrupted(const std::string& text) = 0;
  // Every host of a play failed, or any_errors_fatal: the run ends.
  virtual void no_more_hosts() = 0;
  // The run's end: every host's stats and outcome, in first-seen order.
  virtual void recap(const std::vector<std::pair<std::string, HostStats>>& stats,
                     const std::vector<std::pair<std::string, HostOutcome>>& outcomes) = 0;
  // After the audit trail: the run's summary (exit_code, hosts) for machine-readable output.
  virtual void summary(const Json& summary) = 0;
};

// Ansible's default callback's text ("PLAY [..] ***", "ok: [host]", "PLAY RECAP"), secrets
// replaced by "********".
class TextReporter : public Reporter {
 public:
  struct Options {
    int verbosity = 0;
    bool diff = false;   // --diff: show a changed file's diff
    bool check = false;  // --check: the same
    std::shared_ptr<Redactor> redactor;
  };
  TextReporter(std::ostream& out, Options opts);

  void play_start(const std::string& name) override;
  void play_no_hosts() override;
  void task_start(const std::string& kind, const std::string& name) override;
  void host_result(const Task& t, const std::string& host, const TaskResult& r,
                   bool ignored) override;
  void retrying(const Task& t, const std::string& host, long long retries_left,
                const std::string& lost) override;
  void warning(const std::string& text) override;
  void interrupted(const std::string& text) override;
  void no_more_hosts() override;
  void recap(const std::vector<std::pair<std::string, HostStats>>& stats,
             const std::vector<std::pair<std::string, HostOutcome>>& outcomes) override;
  void summary(const Json&) override {}

 protected:
  // One line (or several), redacted, flushed.
  void line(const std::string& text);
  void header(const std::string& kind, const std::string& name);

  std::ostream& out_;
  Options opts_;
  std::mutex mu_;
  std::vector<std::string> warned_;
};

// --json: the text, then the run's summary as one JSON line
// ({"exit_code":N,"hosts":[{"host","outcome","message","ok","changed","failed","unreachable",
// "release"}]}).
class JsonReporter : public TextReporter {
 public:
  using TextReporter::TextReporter;
  void summary(const Json& summary) override;
};

// "\n"-separated lines joined by " | ", trailing newlines dropped.
std::string one_line(std::string s);

}  // namespace zdm::deploy
