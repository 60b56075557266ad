#include "inventory/inventory.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "inventory/vault.h"
#include "inventory/zdm_vars.h"
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

// Python's int() of a range bound: surrounding blanks, a sign, digits (with single '_'
// between them). False when Python would raise ValueError.
bool python_int(std::string_view s, long long& out) {
  std::string t = trim(s);
  std::string digits;
  size_t i = (!t.empty() && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
  if (i == t.size()) return false;
  for (size_t k = i; k < t.size(); ++k) {
    if (t[k] >= '0' && t[k] <= '9') {
      digits += t[k];
    } else if (t[k] == '_' && k > i && k + 1 < t.size() && t[k - 1] != '_' && t[k + 1] != '_') {
      continue;
    } else {
      return false;
    }
  }
  if (digits.size() > 15) return false;  // a host range of more than 10^15: refused below anyway
  out = std::stoll(digits) * (t[0] == '-' ? -1 : 1);
  return true;
}

// Python's str.zfill.
std::string zfill(std::string s, size_t width) {
  if (s.size() >= width) return s;
  size_t at = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  s.insert(at, width - s.size(), '0');
  return s;
}

// A pattern expands to at most this many hosts (Ansible has no bound; a typo such as
// [1:1000000000] would exhaust memory).
constexpr size_t kMaxRangeHosts = 10000;

// ansible.plugins.inventory.expand_hostname_range: the first [..] is expanded, each result
// again until none is left.
void expand_ranges(const std::string& line, std::vector<std::string>& out) {
  size_t open = line.find('[');
  if (open == std::string::npos) {
    if (out.size() >= kMaxRangeHosts)
      throw std::invalid_argument(fmt::format("more than {} hosts", kMaxRangeHosts));
    out.push_back(line);
    return;
  }
  size_t close = line.find(']');
  if (close == std::string::npos || close < open || line.find('|') != std::string::npos)
    throw std::invalid_argument("a host range is [begin:end] or [begin:end:step]");
  std::string head = line.substr(0, open);
  std::string range = line.substr(open + 1, close - open - 1);
  std::string tail = line.substr(close + 1);
  std::vector<std::string> bounds;
  for (size_t b = 0;;) {
    size_t c = range.find(':', b);
    bounds.push_back(range.substr(b, c == std::string::npos ? std::string::npos : c - b));
    if (c == std::string::npos) break;
    b = c + 1;
  }
  if (bounds.size() != 2 && bounds.size() != 3)
    throw std::invalid_argument("host range must be begin:end or begin:end:step");
  std::string beg = bounds[0].empty() ? "0" : bounds[0];
  const std::string& end = bounds[1];
  if (end.empty()) throw std::invalid_argument("host range must specify end value");
  size_t width = 0;
  if (beg[0] == '0' && beg.size() > 1) {
    width = beg.size();
    if (width != end.size())
      throw std::invalid_argument("host range must specify equal-length begin and end formats");
  }
  long long step = 1;
  bool step_ok = bounds.size() == 2 || python_int(bounds[2], step);
  std::vector<std::string> seq;
  static const std::string letters =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";  // string.ascii_letters
  size_t ib = letters.find(beg), ie = letters.find(end);
  if (ib != std::string::npos && ie != std::string::npos && step_ok && step != 0) {
    // An alphabetic range: ascii_letters[ib:ie + 1:step] (begin and end are found as substrings).
    if (ib > ie) throw std::invalid_argument("host range must have begin <= end");
    if (step > 0)
      for (size_t i = ib; i <= ie; i += static_cast<size_t>(step)) seq.emplace_back(1, letters[i]);
  } else {
    long long b = 0, e = 0;
    if (!python_int(beg, b) || !python_int(end, e) || !step_ok)
      throw std::invalid_argument(
          fmt::format("host range [{}]: bounds are numbers or letters, the step a number", range));
    if (step == 0) throw std::invalid_argument("host range step must not be zero");
    // range(b, e + 1, step)
    for (long long i = b; step > 0 ? i < e + 1 : i > e + 1; i += step) {
      if (seq.size() >= kMaxRangeHosts)
        throw std::invalid_argument(fmt::format("more than {} hosts", kMaxRangeHosts));
      seq.push_back(width ? zfill(std::to_string(i), width) : std::to_string(i));
    }
  }
  for (auto& x : seq) expand_ranges(head + x + tail, out);
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

// The inventory's host of that name, added at the end when new.
Host& add_host(Inventory& inv, std::map<std::string, size_t>& index, const std::string& name) {
  auto [it, inserted] = index.try_emplace(name, inv.hosts.size());
  if (inserted) inv.hosts.push_back(Host{name, Json::object(), {}});
  return inv.hosts[it->second];
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
    std::string pattern = tokens[0];
    pattern.erase(std::remove(pattern.begin(), pattern.end(), '\x01'), pattern.end());
    if (pattern.find('=') != std::string::npos)
      fail(fmt::format("bad host name '{}' (a host line starts with the host's name)", pattern));
    if (pattern == "---")
      fail("bad host name '---' (a YAML document marker: is this a YAML inventory?)");
    std::vector<std::string> names;
    int port = 0;
    try {
      names = expand_host_pattern(pattern, &port);
    } catch (const std::invalid_argument& e) {
      fail(fmt::format("host '{}': {}", pattern, e.what()));
    }
    Json vars = Json::object();
    if (port) vars["ansible_port"] = port;
    std::string who = fmt::format("host '{}'", pattern);
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
      vars[key] = value;
    }
    auto& members = group(section).hosts;
    std::set<std::string> present(members.begin(), members.end());
    for (auto& name : names) {
      Host& host = add_host(inv_, index_, name);
      for (auto& [k, v] : vars.items()) host.vars[k] = v;
      if (present.insert(name).second) members.push_back(name);
    }
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
  std::map<std::string, size_t> index_;  // host name → position in inv_.hosts
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

void yaml_group(Inventory& inv, std::map<std::string, size_t>& index, const std::string& path,
                const std::string& name, const YAML::Node& node) {
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
        std::string pattern = scalar_key(h->first);
        YAML::Node hv = h->second;
        std::vector<std::string> names;
        int port = 0;
        try {
          names = expand_host_pattern(pattern, &port);
        } catch (const std::invalid_argument& e) {
          throw InventoryError(
              fmt::format("{}: host '{}': {}", where(h->first), pattern, e.what()));
        }
        Json vars = Json::object();
        if (port) vars["ansible_port"] = port;
        if (hv.IsMap()) {
          for (auto v = hv.begin(); v != hv.end(); ++v) {
            std::string k = scalar_key(v->first);
            YAML::Node vv = v->second;
            Json j = yaml_to_json(vv);
            if (k == "ansible_port" && !j.is_number_integer())
              throw InventoryError(
                  fmt::format("{}: host '{}': bad key=value 'ansible_port' (expected integer)",
                              where(vv), pattern));
            vars[k] = j;
          }
        } else if (!hv.IsNull()) {
          throw InventoryError(
              fmt::format("{}: host '{}': host vars must be a mapping", where(hv), pattern));
        }
        auto& members = inv.groups[name].hosts;
        std::set<std::string> present(members.begin(), members.end());
        for (auto& host : names) {
          Host& found = add_host(inv, index, host);
          for (auto& [k, v] : vars.items()) found.vars[k] = v;
          if (present.insert(host).second) members.push_back(host);
        }
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
        yaml_group(inv, index, path, child, cv);
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

Host& host_named(Inventory& inv, const std::string& name) {
  for (auto& h : inv.hosts)
    if (h.name == name) return h;
  throw std::logic_error("no host " + name);
}

// Ansible's DataLoader._get_dir_vars_files: the files under a directory, sorted, recursively;
// hidden files, backups (~) and names with an extension other than .yml/.yaml/.json skipped.
void dir_vars_files(const std::filesystem::path& dir, std::vector<std::string>& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> entries;
  for (auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  for (auto& p : entries) {
    std::string name = p.filename().string();
    if (name.empty() || name[0] == '.' || name.back() == '~') continue;
    std::string ext = p.extension().string();
    if (fs::is_directory(p, ec)) {
      if (ext.empty()) dir_vars_files(p, out);
    } else if (fs::is_regular_file(p, ec) &&
               (ext.empty() || ext == ".yml" || ext == ".yaml" || ext == ".json")) {
      out.push_back(p.string());
    }
  }
}

// Ansible's DataLoader.find_vars_files: the first of <name> (a file, or a directory of files),
// <name>.yml, <name>.yaml, <name>.json. The later ones that exist too go to `shadowed`.
std::vector<std::string> find_vars_files(const std::filesystem::path& base, const std::string& name,
                                         std::string& chosen, std::vector<std::string>& shadowed) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> out;
  bool found = false;
  for (const char* ext : {"", ".yml", ".yaml", ".json"}) {
    fs::path p = base / (name + ext);
    if (!fs::exists(p, ec)) continue;
    if (found) {
      shadowed.push_back(p.string());
      continue;
    }
    found = true;
    chosen = p.string();
    if (fs::is_directory(p, ec)) {
      dir_vars_files(p, out);
    } else {
      out.push_back(p.string());
    }
  }
  return out;
}

// One group_vars/ or host_vars/ file: YAML (JSON is YAML), possibly vault-encrypted as a whole
// or per value (!vault). Errors name the file, the line and the key.
Json load_dir_vars_file(const std::string& path, const std::string& who) {
  std::ifstream in(path);
  if (!in) throw InventoryError(fmt::format("{}: cannot read vars file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  try {
    if (is_vault_text(text)) text = vault_decrypt_for(text, path);
  } catch (const VaultError& e) {
    throw InventoryError(e.what());
  }
  Json out = Json::object();
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return out;
    if (!root.IsMap())
      throw InventoryError(fmt::format("{}:{}: {}: a vars file must be a mapping, not a {}", path,
                                       root.Mark().line + 1, who,
                                       root.IsSequence() ? "list" : "scalar"));
    for (auto it = root.begin(); it != root.end(); ++it) {
      std::string key = scalar_key(it->first);
      YAML::Node value = it->second;
      int line = value.Mark().line >= 0 ? value.Mark().line + 1 : it->first.Mark().line + 1;
      Json j;
      try {
        if (value.IsScalar() && value.Tag() == "!vault")
          j = vault_decrypt_for(value.Scalar(),
                                fmt::format("{}:{}: {}: '{}'", path, line, who, key));
        else
          j = yaml_to_json(value);
      } catch (const VaultError& e) {
        throw InventoryError(e.what());
      } catch (const VarsError& e) {
        throw InventoryError(fmt::format("{}:{}: {}: '{}': {}", path, line, who, key, e.what()));
      }
      if (key == "ansible_port" &&
          (!j.is_number_integer() || j.get<long long>() < 1 || j.get<long long>() > 65535))
        throw InventoryError(fmt::format(
            "{}:{}: {}: bad key=value 'ansible_port' (expected integer)", path, line, who));
      out[key] = std::move(j);
    }
  } catch (const YAML::Exception& e) {
    throw InventoryError(fmt::format("{}:{}: {}", path, e.mark.line + 1, e.msg));
  }
  return out;
}

}  // namespace

std::vector<std::string> expand_host_pattern(std::string_view pattern, int* port) {
  // ansible.parsing.utils.addresses.parse_address: "[addr]:PORT", then "name:PORT" where the
  // name holds no ':' outside a [..] range. (Scanned by hand: libstdc++'s std::regex recurses
  // per character and overflows the stack on long names.)
  std::string text(pattern);
  std::string address = text, port_text;
  auto digits_from = [&](size_t at) {
    return at < text.size() && std::all_of(text.begin() + static_cast<std::ptrdiff_t>(at),
                                           text.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  size_t close = text.rfind("]:");
  if (text.size() > 3 && text[0] == '[' && close != std::string::npos && close > 1 &&
      digits_from(close + 2)) {
    address = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    bool in_range = false, ok = true;
    size_t colon = std::string::npos;
    for (size_t i = 0; i < text.size() && ok; ++i) {
      char c = text[i];
      if (in_range) {
        if (c == ']') in_range = false;
      } else if (c == '[') {
        in_range = true;
      } else if (c == ']') {
        ok = colon != std::string::npos;  // only in the port, where digits_from refuses it
      } else if (c == ':') {
        if (colon != std::string::npos) ok = false;
        colon = i;
      }
    }
    if (ok && !in_range && colon != std::string::npos && digits_from(colon + 1)) {
      address = text.substr(0, colon);
      port_text = text.substr(colon + 1);
    }
  }
  if (port) {
    *port = 0;
    if (!port_text.empty()) {
      long long p = port_text.size() > 6 ? 0 : std::stoll(port_text);
      if (p < 1 || p > 65535)
        throw std::invalid_argument(fmt::format("bad port '{}' (expected 1-65535)", port_text));
      *port = static_cast<int>(p);
    }
  }
  std::vector<std::string> out;
  expand_ranges(address, out);
  return out;
}

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
  // Ansible's sort_groups: (depth, ansible_group_priority, name).
  std::vector<std::tuple<int, long long, std::string>> found;
  for (auto& [name, g] : groups) {
    if (name == "all") continue;
    auto hs = group_hosts(name);
    if (std::find(hs.begin(), hs.end(), host) == hs.end()) continue;
    long long priority = 1;
    if (auto p = g.vars.find("ansible_group_priority"); p != g.vars.end()) {
      if (p->is_number_integer()) {
        priority = p->get<long long>();
      } else if (p->is_string()) {
        python_int(p->get<std::string>(), priority);
      }
    }
    found.emplace_back(depth.count(name) ? depth[name] : 1, priority, name);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out{"all"};
  for (auto& [d, p, n] : found) out.push_back(n);
  return out;
}

Json Inventory::host_vars(std::string_view host) const {
  Json vars = Json::object();
  auto apply = [&](const std::vector<VarsFile>& files) {
    for (auto& f : files) overlay(vars, f.vars);
  };
  std::vector<std::string> hg = host_groups(host);
  for (auto& g : hg) overlay(vars, groups.at(g).vars);
  const Group& all = groups.at("all");
  apply(all.dir_vars.inventory_adjacent);
  apply(all.dir_vars.playbook_adjacent);
  for (auto& g : hg)
    if (g != "all") apply(groups.at(g).dir_vars.inventory_adjacent);
  for (auto& g : hg)
    if (g != "all") apply(groups.at(g).dir_vars.playbook_adjacent);
  if (auto* h = find_host(host)) {
    overlay(vars, h->vars);
    apply(h->dir_vars.inventory_adjacent);
    apply(h->dir_vars.playbook_adjacent);
  }
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
  std::map<std::string, size_t> index;
  try {
    for (auto it = root.begin(); it != root.end(); ++it) {
      YAML::Node gv = it->second;
      yaml_group(inv, index, path, scalar_key(it->first), gv);
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
  Inventory inv = ext == ".yml" || ext == ".yaml" ? parse_inventory_yaml(ss.str(), path)
                                                  : parse_inventory_ini(ss.str(), path);
  load_vars_dirs(inv, inv.dir, false);
  return inv;
}

void load_vars_dirs(Inventory& inv, const std::string& dir, bool playbook_adjacent) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* sub : {"group_vars", "host_vars"}) {
    bool groups = std::string_view(sub) == "group_vars";
    fs::path base = fs::path(dir) / sub;
    if (!fs::exists(base, ec)) continue;
    if (!fs::is_directory(base, ec)) {
      inv.warnings.push_back(fmt::format("{}: not a directory, not read", base.string()));
      continue;
    }
    std::vector<std::string> names;
    if (groups) {
      names = inv.group_order;
    } else {
      for (auto& h : inv.hosts) names.push_back(h.name);
    }
    std::set<std::string> used;  // entries of base read for a group or host
    for (auto& name : names) {
      if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        continue;
      std::string chosen;
      std::vector<std::string> shadowed;
      std::vector<std::string> files = find_vars_files(base, name, chosen, shadowed);
      if (!chosen.empty()) used.insert(fs::path(chosen).filename().string());
      for (auto& sh : shadowed)
        inv.warnings.push_back(
            fmt::format("{}: not read: {} is (Ansible reads only the first of {name}, {name}.yml, "
                        "{name}.yaml, {name}.json)",
                        sh, chosen, fmt::arg("name", name)));
      std::string who = fmt::format("{} '{}'", groups ? "group" : "host", name);
      DirVars& dv = groups ? inv.groups.at(name).dir_vars : host_named(inv, name).dir_vars;
      auto& into = playbook_adjacent ? dv.playbook_adjacent : dv.inventory_adjacent;
      for (auto& f : files) into.push_back(VarsFile{f, load_dir_vars_file(f, who)});
    }
    // Entries that name no group or host: Ansible ignores them; say so.
    std::vector<std::string> entries;
    for (auto& e : fs::directory_iterator(base, ec))
      entries.push_back(e.path().filename().string());
    std::sort(entries.begin(), entries.end());
    for (auto& e : entries) {
      if (used.count(e) || e.empty() || e[0] == '.' || e.back() == '~') continue;
      std::string stem = e;
      for (const char* ext : {".yml", ".yaml", ".json"})
        if (stem.size() > std::strlen(ext) && stem.ends_with(ext)) {
          stem.resize(stem.size() - std::strlen(ext));
          break;
        }
      if (std::find(names.begin(), names.end(), stem) != names.end()) continue;  // shadowed: said
      std::string near;
      size_t best = 4;  // within three edits, as the [proxies] check suggests
      for (auto& n : names)
        if (size_t d = edit_distance(stem, n); d < best) best = d, near = n;
      inv.warnings.push_back(
          fmt::format("{}: not read: the inventory has no {} '{}'{}", (base / e).string(),
                      groups ? "group" : "host", stem,
                      near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near)));
    }
  }
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
