// Where and how to connect to a host: its inventory variables (ansible_host, ansible_port,
// ansible_user, ansible_ssh_private_key_file, ansible_ssh_common_args, ansible_ssh_extra_args,
// ansible_connection), then ~/.ssh/config, as Ansible's ssh connection would. Pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ssh/ssh_config.h"
#include "ssh/transport.h"

namespace zdm::deploy {

// A host's connection variables, rendered; unset = not given in the inventory or vars.
struct HostSshVars {
  std::string name;  // inventory name
  std::optional<std::string> host, user, key_file, connection, common_args, extra_args;
  std::optional<int> port;
};

struct SshSettings {
  std::string known_hosts;      // --known-hosts / $ZDM_KNOWN_HOSTS ("" = ssh_config's or default)
  std::string ssh_config_path;  // --ssh-config ("" = ~/.ssh/config; "none" = no file)
  bool accept_new_host_keys = false;
  int timeout_seconds = 10;
  std::string home;        // for ~ and the default files
  std::string local_user;  // %u, and the user when none is given
};

// Resolves the parameters; `config` is the parsed ssh_config (load_ssh_config). Options that
// cannot be honoured are appended to `warnings` ("not supported: ..."); options that must not be
// ignored throw SshConfigError.
ConnectParams resolve_connect_params(const HostSshVars& vars, const SshSettings& settings,
                                     const SshConfig& config, std::vector<std::string>* warnings);

}  // namespace zdm::deploy
