// What a run checks before it touches a host: the plan's options from the command line, the
// variable report (ZDM automation variables not honoured, names near a known one), and the
// secrets to keep out of the output.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/diff.h"
#include "engine/plan.h"
#include "engine/playbook.h"
#include "options.h"
#include "ssh/connect.h"

namespace zdm::deploy {

// The plan options of a command: its -e values (in order), --limit, --serial, a new release id.
PlanOptions plan_options(const CommonOptions& opts);

// The messages of the start of a run (printed as "[WARNING]: ..."): group_vars/ and host_vars/
// files not read, then every ZDM automation variable set but not honoured ("not supported:
// NAME (where): why") and every unknown name near a known one ("did you mean"). Reads the whole
// vars/ directory of the plan's vars files.
std::vector<std::string> variable_report(const Plan& plan, const Playbook& pb, const Json& extra);

// A secret variable whose value cannot be rendered: its value is unknown, so it cannot be kept
// out of the output, and the run stops before touching a host.
class SecretError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Adds the rendered value of every variable of every host of the plan whose name says it is a
// secret (is_secret_name: password, token, ...) to `redactor`. Throws SecretError naming the
// variable and the host when one cannot be rendered (an undefined variable, a failing lookup):
// redaction never skips a secret.
void collect_secrets(const Plan& plan, Redactor& redactor);

}  // namespace zdm::deploy
