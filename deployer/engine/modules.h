// The modules a task can run: file, copy, template, command, shell, uri, wait_for, pause,
// set_fact, debug, fail, stat, assert.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/diff.h"
#include "ssh/transport.h"
#include "template.h"

namespace zdm::deploy {

using Json = nlohmann::json;

struct TaskResult {
  bool changed = false;
  bool failed = false;
  bool skipped = false;
  bool unreachable = false;
  std::string msg;
  Json data = Json::object();  // module-specific fields (rc, stdout, status, stat, ...)
  std::string diff;            // what changed (or would), for --diff and --check

  // The value `register:` stores: data plus changed/failed/skipped/msg.
  Json registered() const;
};

struct ModuleContext {
  std::string host;   // inventory name
  const Json& scope;  // the host's merged variables
  std::string playbook_dir;
  Source src;                             // the task's file:line
  std::function<Transport&()> transport;  // connects on first use; throws UnreachableError
  Json& facts;                            // set_fact writes here
  bool check = false;                     // dry run: report what would change, change nothing
  bool diff = false;                      // compute `diff` for changed text files
  int timeout_seconds = 0;                // bound on each remote command (0: none)
  Redactor* redactor = nullptr;           // secrets set_fact learns are added here
};

// Runs one module with rendered arguments. Failures are returned, not thrown, except
// UnreachableError (connection lost) and TemplateError (bad expression in assert).
TaskResult run_module(const std::string& module, const Json& args, ModuleContext& ctx);

// Hex sha256 of bytes.
std::string sha256_hex(std::string_view data);

// "0755" / 755 / 493 → mode bits; -1 if absent; throws std::invalid_argument if malformed.
int parse_mode(const Json& mode);

}  // namespace zdm::deploy
