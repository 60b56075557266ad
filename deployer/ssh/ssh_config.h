// SSH settings as operators have them: OpenSSH's client configuration (~/.ssh/config: Host
// blocks, Include) and the command-line options Ansible passes in ansible_ssh_common_args /
// ansible_ssh_extra_args (-o Key=Value, -J, -p, -l, -i, -F). Pure: text in, settings out.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace zdm::deploy {

class SshConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One source of settings, OpenSSH's "first obtained value wins": a later source fills only what
// earlier ones left unset. IdentityFile accumulates, as in OpenSSH.
struct SshOptions {
  std::optional<std::string> hostname;
  std::optional<int> port;
  std::optional<std::string> user;
  std::vector<std::string> identity_files;
  std::optional<bool> identities_only;
  std::optional<std::string> proxy_jump;  // "none" or "[user@]host[:port][,...]"
  std::optional<std::string> user_known_hosts_file;
  std::optional<std::string> strict_host_key_checking;  // yes, no, accept-new, ask
  std::optional<int> connect_timeout;
  std::optional<std::string> identity_agent;  // socket path, "none" or "SSH_AUTH_SOCK"
  std::optional<int> server_alive_interval;
  // Options zdm-deploy does not implement, as "Key value" (reported, never silently dropped).
  std::vector<std::string> unsupported;

  // Fills what is unset here from `later` (OpenSSH's precedence).
  void fill_from(const SshOptions& later);
};

// A parsed ssh_config: its Host blocks in file order (Includes expanded).
struct SshConfig {
  struct Block {
    std::vector<std::string> patterns;  // "Host" patterns; "!x" negates; "*" and "?" glob
    std::vector<std::pair<std::string, std::string>> options;  // lower-case key, value
    std::string where;                                         // file:line of the Host line
  };
  std::vector<Block> blocks;  // options before the first Host line are a block for "*"
  std::vector<std::string> warnings;

  // The options for `host` (the name given on the command line: ansible_host), with %h, %p,
  // %r, %u, %d and ~ expanded in file names. Later blocks fill what earlier ones left unset.
  SshOptions resolve(std::string_view host, std::string_view local_user,
                     std::string_view home) const;
};

// Parses ssh_config text. `path` names it in messages; `read_include` returns the text of an
// included file (or throws); `home` expands "~" in Include paths.
SshConfig parse_ssh_config(std::string_view text, const std::string& path,
                           const std::string& home = {});
// Reads and parses a file; a missing file is an empty config.
SshConfig load_ssh_config(const std::string& path, const std::string& home);

// OpenSSH's Host pattern matching: comma or space separated patterns with * and ?, "!" negates
// (a negated match excludes the block whatever else matches).
bool ssh_host_matches(const std::vector<std::string>& patterns, std::string_view host);

// Splits a command-line string as a POSIX shell would (quotes, backslashes), without expansion.
std::vector<std::string> shell_split(std::string_view text);

// ansible_ssh_common_args / ansible_ssh_extra_args: -o Key=Value, -oKey=Value, -o "Key Value",
// -J jump, -p port, -l user, -i file, -F config file; -q, -v, -C, -T, -A, -4, -6 are accepted
// and have no effect. Anything else throws SshConfigError naming the option.
// `config_file` receives -F.
SshOptions parse_ssh_args(std::string_view text, std::string* config_file);

// "[user@]host[:port]" hops of a ProxyJump value, in order.
struct JumpSpec {
  std::string host;
  std::optional<std::string> user;
  std::optional<int> port;
};
std::vector<JumpSpec> parse_proxy_jump(std::string_view value);

}  // namespace zdm::deploy
