// Ansible's lookup()/query() plugins that playbooks use, on the machine running zdm-deploy:
// file, template, env, password (random secrets, "/dev/null" only: nothing is stored).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "digest.h"
#include "template.h"

namespace zdm::deploy {

using Json = nlohmann::json;

// lookup(name, args..., key=value...). `scope` gives playbook_dir (where templates/ and files/
// are looked up) and the variables a template lookup renders with. Throws TemplateError.
Json lookup_plugin(const std::string& name, const std::vector<Json>& args, const Json& kwargs,
                   const Json& scope, const Source& src);

}  // namespace zdm::deploy
