// The options every zdm-deploy command shares (the CLI's common flags).
#pragma once

#include <string>
#include <vector>

#include "ssh/connect.h"

namespace zdm::deploy {

struct CommonOptions {
  std::string command;       // the CLI command ("deploy", ...): audit, locks
  std::string command_line;  // the whole command line (secrets redacted when shown)
  std::string inventory;
  std::vector<std::string> extra_vars;  // raw -e arguments, in order
  std::string limit;
  int forks = 5;
  std::string serial;  // --serial: "" = the plays' own
  std::string playbook_dir;
  SshSettings ssh;
  int verbosity = 0;
  bool check = false;
  bool diff = false;
  bool json = false;
  bool list_hosts = false;
  int task_timeout_seconds = 0;
  std::string state_dir;  // locks, the local audit log, retry files
  // Appended to each audit line of a playbook run ("journal_gate=ignored ..."); "" = nothing.
  std::string audit_note;
};

}  // namespace zdm::deploy
