// Ansible's lookup()/query() plugins that playbooks use, on the machine running zdm-deploy:
// file, template, env, password (random secrets, "/dev/null" only: nothing is stored).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "template.h"

namespace zdm::deploy {

using Json = nlohmann::json;

// lookup(name, args..., key=value...). `scope` gives playbook_dir (where templates/ and files/
// are looked up) and the variables a template lookup renders with. Throws TemplateError.
Json lookup_plugin(const std::string& name, const std::vector<Json>& args, const Json& kwargs,
                   const Json& scope, const Source& src);

// Hex digest of `data` with the named algorithm (sha256, sha1, sha512, md5); throws
// std::invalid_argument for another name.
std::string digest_hex(const std::string& algorithm, std::string_view data);

// `n` random characters from `alphabet`, from the kernel's CSPRNG.
std::string random_string(size_t n, std::string_view alphabet);

}  // namespace zdm::deploy
