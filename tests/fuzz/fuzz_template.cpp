// Harness: the template engine (deployer/template.h): render (with and without trim_blocks),
// evaluate (conditions, `when:`), render_value (vars whose values are templates).
//
// Input: template text. The scope is what zdm-deploy gives a proxy host of the example
// inventory: inventory/example.ini's host vars, inventory/vars/*.yml, the magic variables
// (inventory_hostname, groups, hostvars), plus variables that are themselves templates,
// including two that refer to each other.
// Properties: each call returns or throws TemplateError ("file:line: message"), which is what
// the executor catches to fail one task rather than the whole run.
#include <filesystem>
#include <string>

#include "inventory/inventory.h"
#include "template.h"
#include "tests/fuzz/fuzz_util.h"
#include "vars.h"

using namespace zdm::deploy;

namespace {

Json make_scope() {
  namespace fs = std::filesystem;
  const fs::path src = ZDM_SOURCE_DIR;
  Json scope = Json::object();
  try {
    const Inventory inv = load_inventory((src / "inventory" / "example.ini").string());
    for (const auto& entry : fs::directory_iterator(src / "inventory" / "vars"))
      overlay(scope, load_vars_file(entry.path().string()));
    overlay(scope, inv.host_vars("proxy1"));
    Json hostvars = Json::object();
    for (const auto& h : inv.hosts) hostvars[h.name] = inv.host_vars(h.name);
    scope["groups"] = inv.groups_json();
    scope["hostvars"] = hostvars;
  } catch (const std::exception&) {
    // Without the source tree, the magic variables alone.
  }
  scope["inventory_hostname"] = "proxy1";
  scope["zdm_release_id"] = "20240101T000000Z";
  scope["lazy_port"] = "{{ zdm_proxy_listen_port + 1 }}";
  scope["lazy_list"] = Json::array({"{{ inventory_hostname }}", "{{ lazy_port }}"});
  scope["loop_a"] = "{{ loop_b }}";
  scope["loop_b"] = "x{{ loop_a }}";
  return scope;
}

const Json& scope() {
  static const Json s = make_scope();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)scope();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = zdm::fuzz::text_of(data, size);
  const Source src{"fuzz.j2", 1};
  for (bool trim : {false, true}) {
    try {
      (void)render(text, scope(), src, trim);
    } catch (const TemplateError&) {
    }
  }
  try {
    (void)evaluate_condition(text, scope(), src);
  } catch (const TemplateError&) {
  }
  try {
    (void)render_value(Json::array({std::string(text)}), scope(), src);
  } catch (const TemplateError&) {
  }
  return 0;
}
