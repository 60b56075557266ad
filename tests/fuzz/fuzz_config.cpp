// Harness: the proxy configuration loader (proxy/config.h parse_config_yaml), which reads the
// YAML file an operator or zdm-deploy writes.
//
// Input: YAML text.
// Properties: a file parses or throws ConfigError (main() catches only that); a parsed
// configuration answers its accessors and prints its log JSON.
#include <string>

#include "proxy/config.h"
#include "tests/fuzz/fuzz_util.h"

using namespace zdm::proxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(zdm::fuzz::text_of(data, size));
  try {
    const Config c = parse_config_yaml(text, "fuzz.yml");
    (void)c.to_log_json();
    (void)c.own_topology_address();
    const uint8_t v = c.max_control_version();
    FUZZ_CHECK(v == 3 || v == 4 || v == 5 || v == 0x41 || v == 0x42);
  } catch (const ConfigError&) {
  }
  return 0;
}
