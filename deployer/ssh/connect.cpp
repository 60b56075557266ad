#include "ssh/connect.h"

#include <algorithm>

#include <fmt/format.h>

namespace zdm::deploy {
namespace {

std::string expand_home(const std::string& path, const std::string& home) {
  if (path == "~") return home;
  if (path.rfind("~/", 0) == 0) return home + path.substr(1);
  return path;
}

void warn(std::vector<std::string>* warnings, std::string text) {
  if (warnings && std::find(warnings->begin(), warnings->end(), text) == warnings->end())
    warnings->push_back(std::move(text));
}

// The settings of one machine we connect to (a host or a bastion): explicit options first, then
// the ssh_config block(s) for its name.
ConnectParams params_for(const std::string& name, const std::string& target, SshOptions opts,
                         const SshSettings& s, const SshConfig& config,
                         std::vector<std::string>* warnings) {
  opts.fill_from(config.resolve(target, s.local_user, s.home));
  ConnectParams p;
  p.name = name;
  p.host = opts.hostname.value_or(target);
  p.port = opts.port.value_or(22);
  p.user = opts.user.value_or("");
  for (const auto& f : opts.identity_files) p.identity_files.push_back(expand_home(f, s.home));
  p.identities_only = opts.identities_only.value_or(false);
  p.identity_agent = opts.identity_agent.value_or("");
  p.timeout_seconds = opts.connect_timeout.value_or(s.timeout_seconds);
  if (!s.known_hosts.empty())
    p.known_hosts = s.known_hosts;
  else if (opts.user_known_hosts_file)
    p.known_hosts = expand_home(*opts.user_known_hosts_file, s.home);
  else
    p.known_hosts = s.home + "/.ssh/known_hosts";
  p.accept_new_host_keys = s.accept_new_host_keys;
  if (auto shk = opts.strict_host_key_checking) {
    if (*shk == "accept-new") {
      p.accept_new_host_keys = true;
    } else if (*shk == "no" || *shk == "off" || *shk == "false") {
      warn(warnings,
           fmt::format("not supported: StrictHostKeyChecking {} (for {}): zdm-deploy always "
                       "checks host keys; unknown keys are added only with "
                       "--accept-new-host-keys or StrictHostKeyChecking accept-new",
                       *shk, name));
    }
  }
  for (const auto& u : opts.unsupported) {
    if (u.rfind("proxycommand", 0) == 0)
      throw SshConfigError(fmt::format(
          "{}: ProxyCommand is not supported (zdm-deploy connects with libssh and runs no "
          "command to connect): use ProxyJump for a bastion ({})",
          name, u));
    warn(warnings, fmt::format("not supported: ssh option {} (for {}): ignored", u, name));
  }
  return p;
}

}  // namespace

ConnectParams resolve_connect_params(const HostSshVars& vars, const SshSettings& settings,
                                     const SshConfig& config, std::vector<std::string>* warnings) {
  if (vars.connection && *vars.connection == "local") {
    ConnectParams p;
    p.name = vars.name;
    p.host = vars.host.value_or(vars.name);
    p.local = true;
    return p;
  }
  if (vars.connection && *vars.connection != "ssh" && *vars.connection != "paramiko" &&
      *vars.connection != "smart")
    throw SshConfigError(fmt::format("{}: ansible_connection={} is not supported (ssh, local)",
                                     vars.name, *vars.connection));
  // Ansible puts its own options first on ssh's command line (first value wins), then
  // ansible_ssh_common_args, then ansible_ssh_extra_args; ssh_config comes last.
  SshOptions opts;
  if (vars.port) opts.port = *vars.port;
  if (vars.user) opts.user = *vars.user;
  if (vars.key_file) opts.identity_files.push_back(*vars.key_file);
  for (const auto* args : {&vars.common_args, &vars.extra_args}) {
    if (!*args || (*args)->empty()) continue;
    std::string config_file;
    SshOptions more;
    try {
      more = parse_ssh_args(**args, &config_file);
    } catch (const SshConfigError& e) {
      throw SshConfigError(fmt::format(
          "{}: {}: {}", vars.name,
          args == &vars.common_args ? "ansible_ssh_common_args" : "ansible_ssh_extra_args",
          e.what()));
    }
    if (!config_file.empty())
      warn(warnings, fmt::format("not supported: ssh option -F {} in the inventory (for {}): use "
                                 "--ssh-config {}",
                                 config_file, vars.name, config_file));
    opts.fill_from(more);
  }
  std::string target = vars.host.value_or(vars.name);
  std::optional<std::string> jump = opts.proxy_jump;
  ConnectParams p = params_for(vars.name, target, opts, settings, config, warnings);
  // ProxyJump from the host's own options or its ssh_config block.
  if (!jump) jump = config.resolve(target, settings.local_user, settings.home).proxy_jump;
  if (jump) {
    for (const auto& hop : parse_proxy_jump(*jump)) {
      SshOptions hop_opts;
      if (hop.user) hop_opts.user = *hop.user;
      if (hop.port) hop_opts.port = *hop.port;
      ConnectParams j = params_for(fmt::format("{} via {}", hop.host, vars.name), hop.host,
                                   hop_opts, settings, config, warnings);
      j.name = hop.host;
      // A bastion without keys of its own is tried with the host's (the usual single key).
      if (j.identity_files.empty()) j.identity_files = p.identity_files;
      p.jumps.push_back(std::move(j));
    }
  }
  return p;
}

}  // namespace zdm::deploy
