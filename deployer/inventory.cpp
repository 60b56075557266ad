#include "inventory.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "vars.h"

namespace zdm::deploy {
namespace {

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::string dir_of(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Splits a host line into tokens; quotes group characters, a token starting with '#' or ';'
// outside quotes ends the line. Returns false on an unterminated quote.
bool split_tokens(std::string_view line, std::vector<std::string>& out) {
  std::string cur;
  bool in_token = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && i + 1 < line.size() && quote == '"') {
        cur += line[++i];
      } else {
        cur += c;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      if (in_token) out.push_back(std::move(cur)), cur.clear(), in_token = false;
      continue;
    }
    if (!in_token && (c == '#' || c == ';')) break;
    in_token = true;
    if (c == '"' || c == '\'') {
      quote = c;
      cur += '\x01';  // marks "was quoted" so the value stays a string
    } else {
      cur += c;
    }
  }
  if (quote) return false;
  if (in_token) out.push_back(std::move(cur));
  return true;
}

bool is_int(std::string_view s) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  return std::all_of(s.begin() + i, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// An INI value as Ansible reads it (a Python literal): ints, floats, True/False, else string.
Json ini_value(std::string raw) {
  bool quoted = raw.find('\x01') != std::string::npos;
  raw.erase(std::remove(raw.begin(), raw.end(), '\x01'), raw.end());
  if (quoted) return raw;
  if (is_int(raw)) {
    try {
      return std::stoll(raw);
    } catch (const std::out_of_range&) {
      return raw;
    }
  }
  if (raw == "True") return true;
  if (raw == "False") return false;
  return raw;
}

class IniParser {
 public:
  IniParser(Inventory& inv, const std::string& path) : inv_(inv), path_(path) {}

  void parse(std::string_view text) {
    std::string section = "ungrouped";
    std::string kind = "hosts";
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      ++line_;
      std::string line = trim(text.substr(pos, nl - pos));
      pos = nl + 1;
      if (line.empty() || line[0] == '#' || line[0] == ';') continue;
      if (line[0] == '[') {
        if (line.back() != ']') fail(fmt::format("bad section header '{}'", line));
        std::string name = trim(std::string_view(line).substr(1, line.size() - 2));
        kind = "hosts";
        if (auto colon = name.find(':'); colon != std::string::npos) {
          kind = name.substr(colon + 1);
          name = name.substr(0, colon);
          if (kind != "vars" && kind != "children")
            fail(fmt::format("bad section header '{}' (expected :vars or :children)", line));
        }
        if (name.empty()) fail(fmt::format("bad section header '{}'", line));
        section = name;
        group(section);
        continue;
      }
      if (kind == "hosts") {
        host_line(section, line);
      } else if (kind == "vars") {
        var_line(section, line);
      } else {
        std::string child = line;
        if (child.find_first_of(" \t") != std::string::npos)
          fail(fmt::format("group '{}': bad child group name '{}'", section, child));
        group(child);
        auto& kids = group(section).children;
        if (std::find(kids.begin(), kids.end(), child) == kids.end()) kids.push_back(child);
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw InventoryError(fmt::format("{}:{}: {}", path_, line_, msg));
  }

  Group& group(const std::string& name) {
    auto [it, inserted] = inv_.groups.try_emplace(name);
    if (inserted) {
      it->second.name = name;
      inv_.group_order.push_back(name);
    }
    return it->second;
  }

  void check_var(const std::string& who, const std::string& key, const Json& value) const {
    if (key == "ansible_port") {
      if (!value.is_number_integer() || value.get<long long>() < 1 ||
          value.get<long long>() > 65535)
        fail(fmt::format("{}: bad key=value '{}' (expected integer)", who, key));
    }
  }

  void host_line(const std::string& section, const std::string& line) {
    std::vector<std::string> tokens;
    if (!split_tokens(line, tokens)) fail(fmt::format("unterminated quote in '{}'", line));
    if (tokens.empty()) return;
    std::string name = tokens[0];
    name.erase(std::remove(name.begin(), name.end(), '\x01'), name.end());
    if (name.find('=') != std::string::npos)
      fail(fmt::format("bad host name '{}' (a host line starts with the host's name)", name));
    Host* host = nullptr;
    for (auto& h : inv_.hosts)
      if (h.name == name) host = &h;
    if (!host) {
      inv_.hosts.push_back(Host{name, Json::object()});
      host = &inv_.hosts.back();
    }
    std::string who = fmt::format("host '{}'", name);
    for (size_t i = 1; i < tokens.size(); ++i) {
      auto eq = tokens[i].find('=');
      if (eq == std::string::npos || eq == 0) {
        std::string shown = tokens[i];
        shown.erase(std::remove(shown.begin(), shown.end(), '\x01'), shown.end());
        fail(fmt::format("{}: bad key=value '{}' (expected key=value)", who, shown));
      }
      std::string key = tokens[i].substr(0, eq);
      Json value = ini_value(tokens[i].substr(eq + 1));
      check_var(who, key, value);
      host->vars[key] = value;
    }
    auto& members = group(section).hosts;
    if (std::find(members.begin(), members.end(), name) == members.end()) members.push_back(name);
  }

  void var_line(const std::string& section, const std::string& line) {
    auto eq = line.find('=');
    if (eq == std::string::npos)
      fail(fmt::format("group '{}': bad key=value '{}' (expected key=value)", section, line));
    std::string key = trim(std::string_view(line).substr(0, eq));
    std::string raw = trim(std::string_view(line).substr(eq + 1));
    if (key.empty() || key.find_first_of(" \t") != std::string::npos)
      fail(fmt::format("group '{}': bad key=value '{}' (expected key=value)", section, line));
    std::vector<std::string> tokens;
    if (!split_tokens(raw, tokens)) fail(fmt::format("unterminated quote in '{}'", line));
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
    Json value = ini_value(joined);
    check_var(fmt::format("group '{}'", section), key, value);
    group(section).vars[key] = value;
  }

  Inventory& inv_;
  const std::string& path_;
  int line_ = 0;
};

void finish(Inventory& inv) {
  // "all" first, "ungrouped" holds hosts that are in no other group.
  if (!inv.groups.count("all")) {
    inv.groups["all"].name = "all";
    inv.group_order.insert(inv.group_order.begin(), "all");
  } else {
    inv.group_order.erase(std::find(inv.group_order.begin(), inv.group_order.end(), "all"));
    inv.group_order.insert(inv.group_order.begin(), "all");
  }
  std::set<std::string> grouped;
  for (auto& [name, g] : inv.groups)
    if (name != "ungrouped" && name != "all")
      for (auto& h : g.hosts) grouped.insert(h);
  if (auto it = inv.groups.find("ungrouped"); it != inv.groups.end()) {
    auto& hs = it->second.hosts;
    hs.erase(std::remove_if(hs.begin(), hs.end(), [&](auto& h) { return grouped.count(h); }),
             hs.end());
  }
  auto& all = inv.groups["all"];
  for (auto& name : inv.group_order)
    if (name != "all" &&
        std::find(all.children.begin(), all.children.end(), name) == all.children.end()) {
      bool is_child = false;
      for (auto& [n, g] : inv.groups)
        if (n != "all" && std::find(g.children.begin(), g.children.end(), name) != g.children.end())
          is_child = true;
      if (!is_child) all.children.push_back(name);
    }
}

// The text of a mapping key. YAML allows a mapping or a list as a key ("? [a]"); a group,
// host or variable name must be a scalar.
std::string scalar_key(const YAML::Node& key) {
  if (!key.IsScalar() && !key.IsNull())
    throw YAML::RepresentationException(
        key.Mark(),
        "a name must be a scalar, not a " + std::string(key.IsMap() ? "mapping" : "sequence"));
  return key.as<std::string>();
}

void yaml_group(Inventory& inv, const std::string& path, const std::string& name,
                const YAML::Node& node) {
  auto where = [&](const YAML::Node& n) { return fmt::format("{}:{}", path, n.Mark().line + 1); };
  if (!inv.groups.count(name)) {
    inv.groups[name].name = name;
    inv.group_order.push_back(name);
  }
  if (!node || node.IsNull()) return;
  if (!node.IsMap())
    throw InventoryError(fmt::format("{}: group '{}': expected a mapping", where(node), name));
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = scalar_key(it->first);
    YAML::Node value = it->second;
    if (key == "hosts") {
      if (value.IsNull()) continue;
      if (!value.IsMap())
        throw InventoryError(
            fmt::format("{}: group '{}': hosts must be a mapping", where(value), name));
      for (auto h = value.begin(); h != value.end(); ++h) {
        std::string host = scalar_key(h->first);
        YAML::Node hv = h->second;
        Host* found = nullptr;
        for (auto& x : inv.hosts)
          if (x.name == host) found = &x;
        if (!found) {
          inv.hosts.push_back(Host{host, Json::object()});
          found = &inv.hosts.back();
        }
        if (hv.IsMap()) {
          for (auto v = hv.begin(); v != hv.end(); ++v) {
            std::string k = scalar_key(v->first);
            YAML::Node vv = v->second;
            Json j = yaml_to_json(vv);
            if (k == "ansible_port" && !j.is_number_integer())
              throw InventoryError(
                  fmt::format("{}: host '{}': bad key=value 'ansible_port' (expected integer)",
                              where(vv), host));
            found->vars[k] = j;
          }
        } else if (!hv.IsNull()) {
          throw InventoryError(
              fmt::format("{}: host '{}': host vars must be a mapping", where(hv), host));
        }
        auto& members = inv.groups[name].hosts;
        if (std::find(members.begin(), members.end(), host) == members.end())
          members.push_back(host);
      }
    } else if (key == "vars") {
      Json j = yaml_to_json(value);
      if (!j.is_object() && !j.is_null())
        throw InventoryError(
            fmt::format("{}: group '{}': vars must be a mapping", where(value), name));
      if (j.is_object())
        for (auto& [k, v] : j.items()) inv.groups[name].vars[k] = v;
    } else if (key == "children") {
      if (value.IsNull()) continue;
      if (!value.IsMap())
        throw InventoryError(
            fmt::format("{}: group '{}': children must be a mapping", where(value), name));
      for (auto c = value.begin(); c != value.end(); ++c) {
        std::string child = scalar_key(c->first);
        YAML::Node cv = c->second;
        yaml_group(inv, path, child, cv);
        auto& kids = inv.groups[name].children;
        if (std::find(kids.begin(), kids.end(), child) == kids.end()) kids.push_back(child);
      }
    } else {
      throw InventoryError(
          fmt::format("{}: group '{}': unknown key '{}' (expected hosts, vars, children)",
                      where(it->first), name, key));
    }
  }
}

}  // namespace

const Host* Inventory::find_host(std::string_view name) const {
  for (auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

std::vector<std::string> Inventory::group_hosts(std::string_view group) const {
  std::set<std::string> members;
  std::set<std::string> seen;
  std::vector<std::string> stack{std::string(group)};
  bool everything = group == "all";
  while (!stack.empty()) {
    std::string g = stack.back();
    stack.pop_back();
    if (!seen.insert(g).second) continue;
    auto it = groups.find(g);
    if (it == groups.end()) continue;
    members.insert(it->second.hosts.begin(), it->second.hosts.end());
    for (auto& c : it->second.children) stack.push_back(c);
  }
  std::vector<std::string> out;
  for (auto& h : hosts)
    if (everything || members.count(h.name)) out.push_back(h.name);
  return out;
}

std::vector<std::string> Inventory::host_groups(std::string_view host) const {
  // depth: longest path from "all".
  std::map<std::string, int> depth;
  std::function<void(const std::string&, int)> walk = [&](const std::string& g, int d) {
    if (depth.count(g) && depth[g] >= d) return;
    if (d > 64) return;  // cycle guard
    depth[g] = d;
    auto it = groups.find(g);
    if (it == groups.end()) return;
    for (auto& c : it->second.children) walk(c, d + 1);
  };
  walk("all", 0);
  std::vector<std::pair<int, std::string>> found;
  for (auto& [name, g] : groups) {
    if (name == "all") continue;
    auto hs = group_hosts(name);
    if (std::find(hs.begin(), hs.end(), host) != hs.end())
      found.emplace_back(depth.count(name) ? depth[name] : 1, name);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out{"all"};
  for (auto& [d, n] : found) out.push_back(n);
  return out;
}

Json Inventory::host_vars(std::string_view host) const {
  Json vars = Json::object();
  for (auto& g : host_groups(host))
    for (auto& [k, v] : groups.at(g).vars.items()) vars[k] = v;
  if (auto* h = find_host(host))
    for (auto& [k, v] : h->vars.items()) vars[k] = v;
  if (!vars.contains("ansible_host")) vars["ansible_host"] = std::string(host);
  return vars;
}

Json Inventory::groups_json() const {
  Json out = Json::object();
  for (auto& g : group_order) out[g] = group_hosts(g);
  return out;
}

Inventory parse_inventory_ini(std::string_view text, const std::string& path) {
  Inventory inv;
  inv.path = path;
  inv.dir = dir_of(path);
  IniParser(inv, path).parse(text);
  finish(inv);
  return inv;
}

Inventory parse_inventory_yaml(std::string_view text, const std::string& path) {
  Inventory inv;
  inv.path = path;
  inv.dir = dir_of(path);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw InventoryError(fmt::format("{}:{}: {}", path, e.mark.line + 1, e.msg));
  }
  if (root.IsNull()) {
    finish(inv);
    return inv;
  }
  if (!root.IsMap())
    throw InventoryError(fmt::format("{}:1: a YAML inventory is a mapping of groups", path));
  try {
    for (auto it = root.begin(); it != root.end(); ++it) {
      YAML::Node gv = it->second;
      yaml_group(inv, path, scalar_key(it->first), gv);
    }
  } catch (const YAML::Exception& e) {
    throw InventoryError(fmt::format("{}:{}: {}", path, e.mark.line + 1, e.msg));
  }
  finish(inv);
  return inv;
}

Inventory load_inventory(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InventoryError(fmt::format("{}: cannot read inventory", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".yml" || ext == ".yaml") return parse_inventory_yaml(ss.str(), path);
  return parse_inventory_ini(ss.str(), path);
}

std::vector<std::string> match_hosts(const Inventory& inv, std::string_view pattern) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : pattern) {
    if (c == ':' || c == ',') {
      if (!cur.empty()) parts.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty()) parts.push_back(trim(cur));
  std::set<std::string> include, exclude;
  for (auto& p : parts) {
    bool neg = !p.empty() && p[0] == '!';
    std::string name = neg ? p.substr(1) : p;
    std::vector<std::string> hs;
    if (name == "all" || name == "*") {
      hs = inv.group_hosts("all");
    } else if (inv.has_group(name)) {
      hs = inv.group_hosts(name);
    } else if (inv.find_host(name)) {
      hs = {name};
    } else {
      throw InventoryError(fmt::format("{}: no host or group matches '{}'", inv.path, name));
    }
    (neg ? exclude : include).insert(hs.begin(), hs.end());
  }
  std::vector<std::string> out;
  for (auto& h : inv.hosts)
    if (include.count(h.name) && !exclude.count(h.name)) out.push_back(h.name);
  return out;
}

}  // namespace zdm::deploy
