// What the two inventory harnesses do with an inventory that parsed: every question the
// deployer asks of it (groups, host vars by precedence, host patterns).
#pragma once

#include <algorithm>

#include "inventory/inventory.h"
#include "tests/fuzz/fuzz_util.h"

namespace zdm::fuzz {

inline void exercise(const deploy::Inventory& inv) {
  const deploy::Json groups = inv.groups_json();
  FUZZ_CHECK(groups.contains("all"));
  FUZZ_CHECK(!inv.group_order.empty() && inv.group_order.front() == "all");
  const auto all = deploy::match_hosts(inv, "all");
  FUZZ_CHECK(all.size() == inv.hosts.size());
  // Bounded: the harness must stay fast on inventories of many hosts.
  for (std::size_t i = 0; i < std::min<std::size_t>(inv.hosts.size(), 8); ++i) {
    const deploy::Json vars = inv.host_vars(inv.hosts[i].name);
    // ansible_port has no default here: unset, ~/.ssh/config's Port (else 22) applies.
    FUZZ_CHECK(vars.contains("ansible_host"));
    FUZZ_CHECK(inv.host_groups(inv.hosts[i].name).front() == "all");
  }
  for (std::size_t i = 0; i < std::min<std::size_t>(inv.group_order.size(), 8); ++i) {
    const auto& g = inv.group_order[i];
    // A name with ':' or ',' is several patterns, '!' excludes: either may name nothing known.
    try {
      const auto hosts = deploy::match_hosts(inv, g);
      FUZZ_CHECK(hosts.size() <= inv.hosts.size());
    } catch (const deploy::InventoryError&) {
    }
  }
}

}  // namespace zdm::fuzz
