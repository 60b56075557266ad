#include "vars.h"

#include <fstream>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "inventory/vault.h"

namespace zdm::deploy {
namespace {

Json plain_scalar(const std::string& s) {
  static const std::regex int_re(R"([-+]?(0|[1-9][0-9]*))");
  static const std::regex float_re(R"([-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "Yes" || s == "YES" ||
      s == "on" || s == "On" || s == "ON")
    return true;
  if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "No" || s == "NO" ||
      s == "off" || s == "Off" || s == "OFF")
    return false;
  if (std::regex_match(s, int_re)) {
    try {
      return std::stoll(s);
    } catch (const std::out_of_range&) {
      return s;
    }
  }
  if (std::regex_match(s, float_re)) {
    try {
      return std::stod(s);
    } catch (const std::out_of_range&) {  // 1.0e999: beyond a double, kept as text like ints
      return s;
    }
  }
  return s;
}

}  // namespace

Json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      // `key: !vault |` values are decrypted with the run's vault password.
      if (node.Tag() == "!vault") {
        try {
          return vault_decrypt_for(node.Scalar(), fmt::format("line {}", node.Mark().line + 1));
        } catch (const VaultError& e) {
          throw VarsError(e.what());
        }
      }
      // Quoted scalars carry the non-specific tag "!"; plain ones "?".
      if (node.Tag() == "!") return node.Scalar();
      return plain_scalar(node.Scalar());
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (auto it = node.begin(); it != node.end(); ++it) {
        YAML::Node value = it->second;
        if (!it->first.IsScalar() && !it->first.IsNull())
          throw YAML::RepresentationException(
              it->first.Mark(), "a variable name must be a scalar, not a " +
                                    std::string(it->first.IsMap() ? "mapping" : "sequence"));
        out[it->first.as<std::string>()] = yaml_to_json(value);
      }
      return out;
    }
  }
  return nullptr;
}

Json parse_yaml(std::string_view text, const std::string& name) {
  try {
    return yaml_to_json(YAML::Load(std::string(text)));
  } catch (const YAML::Exception& e) {
    throw VarsError(fmt::format("{}:{}: {}", name, e.mark.line + 1, e.msg));
  }
}

Json load_vars_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw VarsError(fmt::format("{}: cannot read vars file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (is_vault_text(text)) {
    try {
      text = vault_decrypt_for(text, path);
    } catch (const VaultError& e) {
      throw VarsError(e.what());
    }
  }
  Json j = parse_yaml(text, path);
  if (j.is_null()) return Json::object();
  if (!j.is_object()) throw VarsError(fmt::format("{}:1: a vars file must be a mapping", path));
  return j;
}

Json parse_extra_vars(std::string_view arg) {
  if (!arg.empty() && arg[0] == '@') return load_vars_file(std::string(arg.substr(1)));
  size_t first = arg.find_first_not_of(" \t\n");
  if (first != std::string_view::npos && (arg[first] == '{')) {
    Json j = parse_yaml(arg, "-e");
    if (!j.is_object()) throw VarsError("-e: expected a mapping");
    return j;
  }
  // k=v pairs; values may be quoted; values stay strings, as in Ansible.
  Json out = Json::object();
  size_t i = 0;
  while (i < arg.size()) {
    while (i < arg.size() && (arg[i] == ' ' || arg[i] == '\t')) ++i;
    if (i >= arg.size()) break;
    size_t eq = arg.find('=', i);
    if (eq == std::string_view::npos)
      throw VarsError(fmt::format("-e: bad key=value '{}'", arg.substr(i)));
    std::string key(arg.substr(i, eq - i));
    if (key.empty() || key.find_first_of(" \t") != std::string::npos)
      throw VarsError(fmt::format("-e: bad key=value '{}'", arg.substr(i)));
    i = eq + 1;
    std::string value;
    while (i < arg.size() && arg[i] != ' ' && arg[i] != '\t') {
      char c = arg[i];
      if (c == '"' || c == '\'') {
        size_t close = arg.find(c, i + 1);
        if (close == std::string_view::npos)
          throw VarsError(fmt::format("-e: unterminated quote in '{}'", arg));
        value += arg.substr(i + 1, close - i - 1);
        i = close + 1;
      } else {
        value += c;
        ++i;
      }
    }
    out[key] = value;
  }
  return out;
}

void overlay(Json& base, const Json& top) {
  if (!top.is_object()) return;
  for (auto& [k, v] : top.items()) base[k] = v;
}

Json VarLayers::merged() const {
  Json out = inventory;
  overlay(out, vars_files);
  overlay(out, play_vars);
  overlay(out, facts);
  overlay(out, extra);
  overlay(out, magic);
  return out;
}

}  // namespace zdm::deploy
