// The pure plan: inventory + vars + playbook + limit → per play, batches of hosts and each
// host's variable layers. No I/O besides reading vars files; no SSH.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/playbook.h"
#include "inventory/inventory.h"
#include "vars.h"

namespace zdm::deploy {

struct PlanOptions {
  Json extra_vars = Json::object();  // merged -e values, in order
  std::string limit;                 // --limit pattern ("" = none); "@file" reads host names
  std::string release_id;            // zdm_release_id for the run
  std::string run_id;                // zdm_run_id: the release id and a random suffix
  Json defaults = Json::object();    // lowest precedence (e.g. zdm_proxy_binary)
  Json serial;                       // --serial: replaces `serial` of plays that have one
};

struct PlayPlan {
  const Play* play = nullptr;
  std::vector<std::string> hosts;                 // play hosts ∩ limit, inventory order
  std::vector<std::vector<std::string>> batches;  // by serial
  // Per host of the play's pattern, --limit or not (facts empty at plan time): a limited run
  // still sees the whole group's variables (its topology), as Ansible's hostvars do.
  std::map<std::string, VarLayers> vars;
};

struct Plan {
  std::vector<PlayPlan> plays;
  // The inventory the plan was made from, with the playbook's group_vars/ and host_vars/
  // (beside the playbook, when that is not the inventory's directory); its warnings too.
  Inventory inventory;
};

// Batch sizes for `serial` (null/0 = all at once, int, "N%" floored with a minimum of 1).
std::vector<std::vector<std::string>> make_batches(const std::vector<std::string>& hosts,
                                                   const Json& serial);

// Resolves a vars_files entry: the inventory's directory first, then the playbook's, then
// <playbook_dir>/../inventory (where the repository keeps vars/).
std::string find_vars_file(const std::string& name, const Inventory& inv, const Playbook& pb);

// The hosts a --limit names: a pattern, or "@file" (one host name per line, a retry file).
std::vector<std::string> limit_hosts(const Inventory& inv, const std::string& limit);

// Builds the plan. Reads vars files, and group_vars/ and host_vars/ beside the playbook; throws
// VarsError/InventoryError/PlaybookError.
Plan make_plan(const Inventory& inv, const Playbook& pb, const PlanOptions& opts);

// The host's merged scope for templating (all layers).
Json host_scope(const PlayPlan& play, const std::string& host);

// The UTC timestamp used as zdm_release_id: YYYYmmddTHHMMSSZ.
std::string release_id_now();

}  // namespace zdm::deploy
