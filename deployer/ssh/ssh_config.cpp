#include "ssh/ssh_config.h"
#include "common/util/strings.h"

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <fmt/format.h>

namespace zdm::deploy {

using util::lower;
using util::trim;
namespace {

// Options that change nothing for zdm-deploy (connection sharing, logging, agent forwarding,
// password authentication it never uses): accepted silently.
const std::set<std::string>& no_effect() {
  static const std::set<std::string> s = {"globalknownhostsfile",
                                          "controlmaster",
                                          "controlpath",
                                          "controlpersist",
                                          "compression",
                                          "loglevel",
                                          "hashknownhosts",
                                          "addkeystoagent",
                                          "preferredauthentications",
                                          "pubkeyauthentication",
                                          "passwordauthentication",
                                          "kbdinteractiveauthentication",
                                          "serveralivecountmax",
                                          "tcpkeepalive",
                                          "visualhostkey",
                                          "forwardagent",
                                          "forwardx11",
                                          "requesttty",
                                          "sendenv",
                                          "usekeychain",
                                          "challengeresponseauthentication",
                                          "gssapiauthentication",
                                          "batchmode",
                                          "checkhostip",
                                          "updatehostkeys",
                                          "addressfamily",
                                          "canonicalizehostname",
                                          "connectionattempts",
                                          "escapechar",
                                          "exitonforwardfailure",
                                          "verifyhostkeydns",
                                          "identityfile_"};
  return s;
}

bool glob_match(std::string_view pat, std::string_view s) {
  // '*' any run, '?' one character; case-insensitive as OpenSSH's match_pattern for hosts.
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  auto eq = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  };
  while (i < s.size()) {
    if (p < pat.size() && (pat[p] == '?' || eq(pat[p], s[i]))) {
      ++p, ++i;
    } else if (p < pat.size() && pat[p] == '*') {
      star = p++, mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1, i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

std::string expand(std::string_view value, const std::map<char, std::string>& tokens,
                   const std::string& home) {
  std::string out;
  size_t i = 0;
  if (value.size() >= 1 && value[0] == '~' && (value.size() == 1 || value[1] == '/')) {
    out = home;
    i = 1;
  }
  for (; i < value.size(); ++i) {
    if (value[i] == '%' && i + 1 < value.size()) {
      char t = value[++i];
      if (t == '%') {
        out += '%';
      } else if (auto it = tokens.find(t); it != tokens.end()) {
        out += it->second;
      } else {
        out += '%', out += t;
      }
    } else {
      out += value[i];
    }
  }
  return out;
}

class Parser {
 public:
  Parser(SshConfig& cfg, std::string home) : cfg_(cfg), home_(std::move(home)) {}

  void parse(std::string_view text, const std::string& path, int depth) {
    if (depth > 8) throw SshConfigError(fmt::format("{}: Include nested more than 8 deep", path));
    int line_no = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      std::string line = trim(text.substr(pos, nl - pos));
      pos = nl + 1;
      ++line_no;
      if (line.empty() || line[0] == '#') continue;
      // "Key value", "Key=value", "Key = value".
      size_t k = line.find_first_of(" \t=");
      std::string key = lower(line.substr(0, k));
      std::string rest = k == std::string::npos ? "" : trim(std::string_view(line).substr(k));
      if (!rest.empty() && rest[0] == '=') rest = trim(std::string_view(rest).substr(1));
      std::string where = fmt::format("{}:{}", path, line_no);
      if (key == "host") {
        SshConfig::Block b;
        b.where = where;
        b.patterns = shell_split(rest);
        cfg_.blocks.push_back(std::move(b));
        continue;
      }
      if (key == "match") {
        cfg_.warnings.push_back(fmt::format(
            "{}: 'Match {}' is not supported: the options under it are ignored", where, rest));
        SshConfig::Block b;
        b.where = where;  // no patterns: never matches
        cfg_.blocks.push_back(std::move(b));
        continue;
      }
      if (key == "include") {
        for (const auto& pattern : shell_split(rest)) include(pattern, path, depth);
        continue;
      }
      if (cfg_.blocks.empty()) {
        SshConfig::Block b;
        b.where = where;
        b.patterns = {"*"};
        cfg_.blocks.push_back(std::move(b));
      }
      auto args = shell_split(rest);
      std::string value = args.empty() ? "" : args[0];
      cfg_.blocks.back().options.emplace_back(key, value);
    }
  }

 private:
  void include(const std::string& pattern, const std::string& from, int depth) {
    std::string p = expand(pattern, {}, home_);
    if (!p.empty() && p[0] != '/') p = home_ + "/.ssh/" + p;
    glob_t g{};
    if (glob(p.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        std::ifstream in(g.gl_pathv[i]);
        std::stringstream ss;
        ss << in.rdbuf();
        parse(ss.str(), g.gl_pathv[i], depth + 1);
      }
    }
    globfree(&g);
    (void)from;
  }

  SshConfig& cfg_;
  std::string home_;
};

int to_int(const std::string& v, const std::string& what) {
  try {
    size_t used = 0;
    int n = std::stoi(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw SshConfigError(fmt::format("{}: expected a number, got '{}'", what, v));
}

bool yes(const std::string& v) {
  std::string l = lower(v);
  return l == "yes" || l == "true";
}

// Applies one "key value" option where unset (first obtained value wins).
void apply(SshOptions& o, const std::string& key, const std::string& value,
           const std::string& where) {
  auto set = [&](auto& field, auto v) {
    if (!field) field = v;
  };
  if (key == "hostname") {
    set(o.hostname, value);
  } else if (key == "port") {
    set(o.port, to_int(value, where + ": Port"));
  } else if (key == "user") {
    set(o.user, value);
  } else if (key == "identityfile") {
    if (std::find(o.identity_files.begin(), o.identity_files.end(), value) ==
        o.identity_files.end())
      o.identity_files.push_back(value);
  } else if (key == "identitiesonly") {
    set(o.identities_only, yes(value));
  } else if (key == "proxyjump") {
    set(o.proxy_jump, value);
  } else if (key == "userknownhostsfile") {
    set(o.user_known_hosts_file, value);
  } else if (key == "stricthostkeychecking") {
    set(o.strict_host_key_checking, lower(value));
  } else if (key == "connecttimeout") {
    set(o.connect_timeout, to_int(value, where + ": ConnectTimeout"));
  } else if (key == "identityagent") {
    set(o.identity_agent, value);
  } else if (key == "serveraliveinterval") {
    set(o.server_alive_interval, to_int(value, where + ": ServerAliveInterval"));
  } else if (!no_effect().count(key)) {
    std::string shown = fmt::format("{} {} ({})", key, value, where);
    if (std::find(o.unsupported.begin(), o.unsupported.end(), shown) == o.unsupported.end())
      o.unsupported.push_back(shown);
  }
}

}  // namespace

void SshOptions::fill_from(const SshOptions& later) {
  if (!hostname) hostname = later.hostname;
  if (!port) port = later.port;
  if (!user) user = later.user;
  for (const auto& f : later.identity_files)
    if (std::find(identity_files.begin(), identity_files.end(), f) == identity_files.end())
      identity_files.push_back(f);
  if (!identities_only) identities_only = later.identities_only;
  if (!proxy_jump) proxy_jump = later.proxy_jump;
  if (!user_known_hosts_file) user_known_hosts_file = later.user_known_hosts_file;
  if (!strict_host_key_checking) strict_host_key_checking = later.strict_host_key_checking;
  if (!connect_timeout) connect_timeout = later.connect_timeout;
  if (!identity_agent) identity_agent = later.identity_agent;
  if (!server_alive_interval) server_alive_interval = later.server_alive_interval;
  for (const auto& u : later.unsupported)
    if (std::find(unsupported.begin(), unsupported.end(), u) == unsupported.end())
      unsupported.push_back(u);
}

bool ssh_host_matches(const std::vector<std::string>& patterns, std::string_view host) {
  bool matched = false;
  for (const auto& list : patterns) {
    // A pattern list may itself be comma separated.
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      std::string_view p = std::string_view(list).substr(pos, comma - pos);
      pos = comma + 1;
      if (p.empty()) continue;
      if (p[0] == '!') {
        if (glob_match(p.substr(1), host)) return false;
      } else if (glob_match(p, host)) {
        matched = true;
      }
    }
  }
  return matched;
}

SshOptions SshConfig::resolve(std::string_view host, std::string_view local_user,
                              std::string_view home) const {
  SshOptions o;
  for (const auto& b : blocks) {
    if (!ssh_host_matches(b.patterns, host)) continue;
    for (const auto& [k, v] : b.options) apply(o, k, v, b.where);
  }
  std::string h(home);
  std::map<char, std::string> tokens = {
      {'n', std::string(host)}, {'h', std::string(host)}, {'u', std::string(local_user)}, {'d', h}};
  if (o.hostname) o.hostname = expand(*o.hostname, tokens, h);
  tokens['h'] = o.hostname.value_or(std::string(host));
  tokens['p'] = std::to_string(o.port.value_or(22));
  tokens['r'] = o.user.value_or(std::string(local_user));
  for (auto& f : o.identity_files) f = expand(f, tokens, h);
  if (o.user_known_hosts_file)
    o.user_known_hosts_file = expand(*o.user_known_hosts_file, tokens, h);
  if (o.identity_agent) o.identity_agent = expand(*o.identity_agent, tokens, h);
  return o;
}

SshConfig parse_ssh_config(std::string_view text, const std::string& path,
                           const std::string& home) {
  SshConfig cfg;
  Parser(cfg, home).parse(text, path, 0);
  return cfg;
}

SshConfig load_ssh_config(const std::string& path, const std::string& home) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_ssh_config(ss.str(), path, home);
}

std::vector<std::string> shell_split(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < text.size() &&
                 (text[i + 1] == '"' || text[i + 1] == '\\' || text[i + 1] == '$')) {
        cur += text[++i];
      } else {
        cur += c;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) out.push_back(cur), cur.clear(), in_word = false;
      continue;
    }
    in_word = true;
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '\\' && i + 1 < text.size()) {
      cur += text[++i];
    } else {
      cur += c;
    }
  }
  if (quote) throw SshConfigError(fmt::format("unterminated quote in '{}'", text));
  if (in_word) out.push_back(cur);
  return out;
}

SshOptions parse_ssh_args(std::string_view text, std::string* config_file) {
  SshOptions o;
  auto args = shell_split(text);
  auto need = [&](size_t& i, const std::string& opt) -> std::string {
    if (i + 1 >= args.size()) throw SshConfigError(fmt::format("ssh option {} needs a value", opt));
    return args[++i];
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-')
      throw SshConfigError(fmt::format("unexpected ssh argument '{}'", a));
    char flag = a[1];
    std::string attached = a.substr(2);
    switch (flag) {
      case 'o': {
        std::string kv = attached.empty() ? need(i, "-o") : attached;
        size_t sep = kv.find_first_of("= \t");
        if (sep == std::string::npos)
          throw SshConfigError(fmt::format("ssh option -o '{}': expected Key=Value", kv));
        std::string key = lower(kv.substr(0, sep));
        std::string value = trim(std::string_view(kv).substr(sep + 1));
        if (!value.empty() && value[0] == '=') value = trim(std::string_view(value).substr(1));
        apply(o, key, value, "-o " + kv.substr(0, sep));
        break;
      }
      case 'J':
        apply(o, "proxyjump", attached.empty() ? need(i, "-J") : attached, "-J");
        break;
      case 'p':
        apply(o, "port", attached.empty() ? need(i, "-p") : attached, "-p");
        break;
      case 'l':
        apply(o, "user", attached.empty() ? need(i, "-l") : attached, "-l");
        break;
      case 'i':
        apply(o, "identityfile", attached.empty() ? need(i, "-i") : attached, "-i");
        break;
      case 'F': {
        std::string f = attached.empty() ? need(i, "-F") : attached;
        if (config_file) *config_file = f;
        break;
      }
      case 'q':
      case 'v':
      case 'C':
      case 'T':
      case 'A':
      case 'a':
      case 'x':
      case '4':
      case '6':
        if (!attached.empty() && attached.find_first_not_of("qvCTAax46") != std::string::npos)
          throw SshConfigError(fmt::format("ssh option '{}' is not supported", a));
        break;
      default:
        throw SshConfigError(fmt::format(
            "ssh option '{}' is not supported (use -o Key=Value, -J, -p, -l, -i or -F)", a));
    }
  }
  for (const auto& u : o.unsupported)
    if (u.rfind("proxycommand", 0) == 0)
      throw SshConfigError(
          "ProxyCommand is not supported: zdm-deploy connects with libssh and runs no "
          "commands to connect; use ProxyJump (-J) for a bastion");
  return o;
}

std::vector<JumpSpec> parse_proxy_jump(std::string_view value) {
  std::vector<JumpSpec> out;
  size_t pos = 0;
  std::string v(value);
  if (lower(v) == "none") return out;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    std::string hop = trim(std::string_view(v).substr(pos, comma - pos));
    pos = comma + 1;
    if (hop.empty()) continue;
    if (hop.rfind("ssh://", 0) == 0) hop = hop.substr(6);
    JumpSpec j;
    if (auto at = hop.rfind('@'); at != std::string::npos) {
      j.user = hop.substr(0, at);
      hop = hop.substr(at + 1);
    }
    if (!hop.empty() && hop[0] == '[') {  // [v6]:port
      auto close = hop.find(']');
      if (close == std::string::npos) throw SshConfigError("ProxyJump: bad address '" + hop + "'");
      j.host = hop.substr(1, close - 1);
      if (close + 1 < hop.size() && hop[close + 1] == ':')
        j.port = to_int(hop.substr(close + 2), "ProxyJump port");
    } else if (auto colon = hop.rfind(':'); colon != std::string::npos && hop.find(':') == colon) {
      j.host = hop.substr(0, colon);
      j.port = to_int(hop.substr(colon + 1), "ProxyJump port");
    } else {
      j.host = hop;
    }
    if (j.host.empty()) throw SshConfigError("ProxyJump: empty host in '" + v + "'");
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace zdm::deploy
