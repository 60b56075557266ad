// Harness: Ansible YAML inventories (deployer/inventory/inventory.h parse_inventory_yaml).
//
// Input: YAML text.
// Properties: a file parses or throws InventoryError (file:line: message); a parsed inventory
// answers every question the deployer asks (inventory_fuzz.h).
#include "tests/fuzz/inventory_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto inv = zdm::deploy::parse_inventory_yaml(zdm::fuzz::text_of(data, size), "fuzz.yml");
    zdm::fuzz::exercise(inv);
  } catch (const zdm::deploy::InventoryError&) {
  }
  return 0;
}
