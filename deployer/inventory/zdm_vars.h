// ZDM automation's variables (every one of the 88 in its seven vars files) and zdm-deploy's own:
// which are honoured, which are not (and why), and the typos that look like one of them. Checked
// at the start of every run, so nothing an operator sets is ignored without a word.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace zdm::deploy {

using Json = nlohmann::json;

enum class VarSupport { Honoured, NotSupported, Ours, Ansible };

struct KnownVar {
  std::string name;
  VarSupport support;
  std::string file;  // ZDM's vars file, or "" for ours
  std::string note;  // how it is honoured, or why it is not
};

// The catalog: ZDM's 88 variables, then zdm-deploy's and Ansible's connection variables.
const std::vector<KnownVar>& known_variables();
const KnownVar* find_known_variable(std::string_view name);

// A variable defined somewhere, with where (for messages).
struct DefinedVar {
  std::string name;
  Json value;
  std::string where;  // "vars/zdm_proxy_container_config.yml", "inventory group 'all'", "-e"
};

// Messages for the start of a run: "not supported: NAME (where): why" for ZDM variables that
// are set but not honoured, and "unknown variable 'NAME' (where): did you mean 'X'?" for names
// within two edits of a known one. One line each, sorted by name.
std::vector<std::string> check_variables(const std::vector<DefinedVar>& defined);

// Damerau-Levenshtein distance (transpositions count one), for the "did you mean".
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace zdm::deploy
