// Variables: YAML → JSON, vars files, extra vars, precedence layers.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace YAML {
class Node;
}

namespace zdm::deploy {

using Json = nlohmann::json;

class VarsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// YAML scalars typed as YAML 1.1 does for Ansible: plain ints, floats, true/false/yes/no,
// null/~ become typed values; quoted scalars stay strings. A mapping key that is not a scalar
// throws a YAML::Exception carrying its position.
Json yaml_to_json(const YAML::Node& node);
// Parses YAML text; errors are "name:line: message".
Json parse_yaml(std::string_view text, const std::string& name);
// Loads a vars file (a mapping, or empty); errors are "file:line: message".
Json load_vars_file(const std::string& path);
// One -e argument: "k=v k2='v 2'", "@file.yml" (relative to cwd) or a JSON/YAML mapping.
Json parse_extra_vars(std::string_view arg);
// Top-level override: keys of `top` replace keys of `base` (Ansible's hash_behaviour=replace).
void overlay(Json& base, const Json& top);

// Ansible's precedence, low → high. Each layer is a JSON object.
struct VarLayers {
  Json inventory = Json::object();   // group vars (all < children) overlaid with host vars
  Json vars_files = Json::object();  // play vars_files, in order
  Json play_vars = Json::object();   // play vars
  Json facts = Json::object();       // register / set_fact
  Json extra = Json::object();       // -e
  Json magic = Json::object();       // inventory_hostname, groups, hostvars, ... (always win)
  Json merged() const;
};

}  // namespace zdm::deploy
