// The playbook model: plays and tasks, parsed from YAML with file:line for every task.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace zdm::deploy {

using Json = nlohmann::json;

// what() is "file:line: message".
class PlaybookError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Task {
  std::string name;
  std::string module;             // "" for a block
  Json args = Json::object();     // untemplated; free-form text is under "_raw_params"
  std::vector<std::string> when;  // all must hold
  std::string register_as;
  Json retries;  // null, int or template string
  Json delay;
  std::string until;
  Json ignore_errors = false;  // bool or template
  std::optional<std::string> changed_when;
  std::optional<std::string> failed_when;
  bool run_once = false;
  std::string delegate_to;
  Json vars = Json::object();
  bool no_log = false;
  // check_mode: true runs the task as a dry run even without --check; false runs it for real
  // under --check too (a read-only probe). Unset: it follows --check.
  std::optional<bool> check_mode;
  Json timeout;  // seconds (int or template) a remote command may take; null = the run's default
  Json loop;     // loop / with_items: the task runs once per item (as `item`); null = once
  std::vector<std::string> notify;  // handlers to run at the end of the play if this changed
  std::vector<Task> block, rescue, always;
  std::string file;
  int line = 0;

  bool is_block() const { return module.empty(); }
  // "name" if set, else the module name (Ansible shows the action).
  std::string display_name() const;
};

struct Play {
  std::string name;
  std::string hosts;  // pattern
  Json serial;        // null, int or "N%"
  Json vars = Json::object();
  std::vector<std::string> vars_files;
  std::vector<Task> tasks;
  // Run after the tasks (or at `meta: flush_handlers`), in this order, on the hosts where a
  // task that notified them changed something; each at most once per flush.
  std::vector<Task> handlers;
  bool any_errors_fatal = false;
  std::string file;
  int line = 0;
};

struct Playbook {
  std::string path;
  std::string dir;
  std::vector<Play> plays;
};

// Modules the executor implements.
const std::vector<std::string>& known_modules();

// `import_playbook: FILE` entries are replaced by FILE's plays and `import_tasks: FILE` tasks by
// a block of FILE's tasks (with the importing task's when/vars), both read relative to the
// importing file's directory.
Playbook parse_playbook(std::string_view text, const std::string& path);
Playbook load_playbook(const std::string& path);

// "k=v k2='v 2'" → {"k": "v", "k2": "v 2"}; free text (no k=v at the start) is returned
// under "_raw_params" (for command/shell), with trailing k=v pairs for command options.
Json parse_kv_args(std::string_view text, bool free_form);

}  // namespace zdm::deploy
