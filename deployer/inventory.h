// Ansible inventories (INI and YAML): groups, host vars, group vars, children.
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

struct Host {
  std::string name;
  Json vars = Json::object();  // host vars as written (defaults are added by host_vars())
};

struct Group {
  std::string name;
  std::vector<std::string> hosts;     // direct members, file order
  std::vector<std::string> children;  // child groups
  Json vars = Json::object();
};

struct Inventory {
  std::string path;                      // file it was read from ("" for in-memory)
  std::string dir;                       // directory of path ("." if none)
  std::vector<Host> hosts;               // every host, first-seen order
  std::vector<std::string> group_order;  // every group, first-seen order ("all" first)
  std::map<std::string, Group> groups;

  const Host* find_host(std::string_view name) const;
  bool has_group(std::string_view name) const { return groups.count(std::string(name)) != 0; }
  // Hosts of a group and its descendants, in inventory order, without duplicates.
  std::vector<std::string> group_hosts(std::string_view group) const;
  // Groups the host belongs to (directly or through children), lowest precedence first:
  // sorted by depth below "all", then by name (Ansible's order). "all" is always first.
  std::vector<std::string> host_groups(std::string_view host) const;
  // Group vars (by precedence) overlaid with host vars, plus the default ansible_host = name
  // (ansible_port stays unset unless given: ~/.ssh/config's Port, else 22, applies).
  Json host_vars(std::string_view host) const;
  // groups → list of host names (the "groups" magic variable).
  Json groups_json() const;
};

Inventory parse_inventory_ini(std::string_view text, const std::string& path);
Inventory parse_inventory_yaml(std::string_view text, const std::string& path);
// Reads an inventory file; YAML when the extension is .yml/.yaml, INI otherwise.
Inventory load_inventory(const std::string& path);

// Host pattern: names or groups separated by ':' or ',', "all" or "*", "!x" excludes.
// Result in inventory order. Unknown names throw InventoryError.
std::vector<std::string> match_hosts(const Inventory& inv, std::string_view pattern);

}  // namespace zdm::deploy
