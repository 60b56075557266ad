// The CLI's operations: run a playbook, status of the proxies, tail their logs.
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan.h"

namespace zdm::deploy {

using Json = nlohmann::json;

struct CommonOptions {
  std::string inventory;
  std::vector<std::string> extra_vars;  // raw -e arguments, in order
  std::string limit;
  int forks = 5;
  std::string playbook_dir;
  std::string known_hosts;
  int verbosity = 0;
};

// The plan options of a command: its -e values (in order), --limit, a new release id.
PlanOptions plan_options(const CommonOptions& opts);

// Loads inventory + playbook, plans and executes; returns an ExitCode. Errors go to err.
int run_playbook(const std::string& playbook, const CommonOptions& opts, std::ostream& out,
                 std::ostream& err);

// Parses `zdmctl status` output (key=value lines).
std::map<std::string, std::string> parse_key_values(const std::string& text);

// Per proxy host: zdmctl status over SSH + /health/readiness from here.
int status(const CommonOptions& opts, bool json, std::ostream& out, std::ostream& err);

// tail -n LINES [-F] of every selected proxy's log, each line prefixed "[host] ".
int logs(const CommonOptions& opts, int lines, bool follow, std::ostream& out, std::ostream& err);

}  // namespace zdm::deploy
