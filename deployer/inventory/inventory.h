// Ansible inventories (INI and YAML): groups, host vars, group vars, children, host ranges
// (proxy[1:3], 10.0.0.[01:12:2], [a:c]) and the group_vars/ and host_vars/ directories next to
// the inventory and next to the playbook.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace zdm::deploy {

using Json = nlohmann::json;

// Parse or validation errors; what() is "file:line: message".
class InventoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One file of a group_vars/ or host_vars/ directory, as read.
struct VarsFile {
  std::string path;
  Json vars = Json::object();
};

// The files of group_vars/<name>* or host_vars/<name>* beside the inventory and beside the
// playbook, in load order (<name>, <name>.yml, <name>.yaml, <name>.json, <name>/ sorted).
struct DirVars {
  std::vector<VarsFile> inventory_adjacent;
  std::vector<VarsFile> playbook_adjacent;
};

struct Host {
  std::string name;
  Json vars = Json::object();  // host vars as written (defaults are added by host_vars())
  DirVars dir_vars;            // host_vars/<name>...
};

struct Group {
  std::string name;
  std::vector<std::string> hosts;     // direct members, file order
  std::vector<std::string> children;  // child groups
  Json vars = Json::object();
  DirVars dir_vars;  // group_vars/<name>...
};

struct Inventory {
  std::string path;                      // file it was read from ("" for in-memory)
  std::string dir;                       // directory of path ("." if none)
  std::vector<Host> hosts;               // every host, first-seen order
  std::vector<std::string> group_order;  // every group, first-seen order ("all" first)
  std::map<std::string, Group> groups;
  // group_vars/ and host_vars/ files that name no group or host of the inventory (Ansible
  // ignores them; a run says so, with a "did you mean" when one is near).
  std::vector<std::string> warnings;

  const Host* find_host(std::string_view name) const;
  bool has_group(std::string_view name) const { return groups.count(std::string(name)) != 0; }
  // Hosts of a group and its descendants, in inventory order, without duplicates.
  std::vector<std::string> group_hosts(std::string_view group) const;
  // Groups the host belongs to (directly or through children), lowest precedence first:
  // sorted by depth below "all", then ansible_group_priority, then name (Ansible's order).
  // "all" is always first.
  std::vector<std::string> host_groups(std::string_view host) const;
  // The host's inventory variables in Ansible's precedence, low to high: the inventory file's
  // group vars (all, then host_groups() order), group_vars/all beside the inventory, then beside
  // the playbook, group_vars/<group> beside the inventory, then beside the playbook (groups in
  // host_groups() order: a child overrides its parent), the inventory file's host vars,
  // host_vars/<host> beside the inventory, then beside the playbook. Plus the default
  // ansible_host = name (ansible_port stays unset unless given: ~/.ssh/config's Port, else 22).
  Json host_vars(std::string_view host) const;
  // groups → list of host names (the "groups" magic variable).
  Json groups_json() const;
};

Inventory parse_inventory_ini(std::string_view text, const std::string& path);
Inventory parse_inventory_yaml(std::string_view text, const std::string& path);
// Reads an inventory file; YAML when the extension is .yml/.yaml, INI otherwise. Then the
// group_vars/ and host_vars/ directories beside it.
Inventory load_inventory(const std::string& path);
// Reads <dir>/group_vars/ and <dir>/host_vars/ into the groups and hosts of `inv`, as the
// inventory's (playbook_adjacent false) or the playbook's. Vault-encrypted files are decrypted
// with the run's vault password. Errors are InventoryError "file:line: message".
void load_vars_dirs(Inventory& inv, const std::string& dir, bool playbook_adjacent);

// A host pattern of an inventory line expanded as Ansible does: "db[01:03:2].x" → db01.x,
// db03.x; "[a:c]" alphabetic; several ranges multiply, the first outermost; a trailing ":PORT"
// is the host's port (0 when none). Throws std::invalid_argument with Ansible's reason.
std::vector<std::string> expand_host_pattern(std::string_view pattern, int* port = nullptr);

// Host pattern: names or groups separated by ':' or ',', "all" or "*", "!x" excludes.
// Result in inventory order. Unknown names throw InventoryError.
std::vector<std::string> match_hosts(const Inventory& inv, std::string_view pattern);

}  // namespace zdm::deploy
