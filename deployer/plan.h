// The pure plan: inventory + vars + playbook + limit → per play, batches of hosts and each
// host's variable layers. No I/O besides reading vars files; no SSH.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "inventory.h"
#include "playbook.h"
#include "vars.h"

namespace zdm::deploy {

struct PlanOptions {
  Json extra_vars = Json::object();  // merged -e values, in order
  std::string limit;                 // --limit pattern ("" = none)
  std::string release_id;            // zdm_release_id for the run
  Json defaults = Json::object();    // lowest precedence (e.g. zdm_proxy_binary)
};

struct PlayPlan {
  const Play* play = nullptr;
  std::vector<std::string> hosts;                 // play hosts ∩ limit, inventory order
  std::vector<std::vector<std::string>> batches;  // by serial
  std::map<std::string, VarLayers> vars;          // per host (facts empty at plan time)
};

struct Plan {
  std::vector<PlayPlan> plays;
};

// Batch sizes for `serial` (null/0 = all at once, int, "N%" floored with a minimum of 1).
std::vector<std::vector<std::string>> make_batches(const std::vector<std::string>& hosts,
                                                   const Json& serial);

// Resolves a vars_files entry: the inventory's directory first, then the playbook's, then
// <playbook_dir>/../inventory (where the repository keeps vars/).
std::string find_vars_file(const std::string& name, const Inventory& inv, const Playbook& pb);

// Builds the plan. Reads vars files; throws VarsError/InventoryError/PlaybookError.
Plan make_plan(const Inventory& inv, const Playbook& pb, const PlanOptions& opts);

// The host's merged scope for templating (all layers).
Json host_scope(const PlayPlan& play, const std::string& host);

// The UTC timestamp used as zdm_release_id: YYYYmmddTHHMMSSZ.
std::string release_id_now();

}  // namespace zdm::deploy
