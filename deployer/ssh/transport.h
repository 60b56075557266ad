// Running commands and uploading files on a host: over SSH (libssh; ProxyJump through bastions
// over libssh channels, never by running `ssh`) or locally.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace zdm::deploy {

// Connection-level failure; what() is one line naming the host, e.g.
// "proxy1 (127.0.1.1:2222): host key changed (known_hosts: /x/known_hosts)".
class UnreachableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ExecResult {
  int rc = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Exit status of a command that ran out of time (as timeout(1)).
constexpr int kTimedOutRc = 124;

struct ConnectParams {
  std::string name;  // inventory name (for messages)
  std::string host;
  int port = 22;
  std::string user;                         // "" = current user
  std::vector<std::string> identity_files;  // tried in order after the agent
  bool identities_only = false;             // no default keys (~/.ssh/id_*) when none given
  std::string identity_agent;               // "" = $SSH_AUTH_SOCK, "none" = no agent
  std::string known_hosts;
  bool accept_new_host_keys = false;  // an unknown host key is added to known_hosts
  int timeout_seconds = 10;
  bool local = false;  // ansible_connection=local
  // Bastions to go through, first to last (ProxyJump); each has its own settings.
  std::vector<ConnectParams> jumps;
};

// Two implementations: SshTransport (libssh) and LocalTransport (/bin/sh -c). One host's
// transport is used by one thread at a time.
class Transport {
 public:
  virtual ~Transport() = default;
  // Runs `command`; with timeout_seconds > 0 the command is ended after that long (rc 124,
  // timed_out set). Throws UnreachableError when the connection is lost.
  virtual ExecResult exec(const std::string& command, int timeout_seconds = 0) = 0;
  // Writes `data` to `remote_path` (through a temporary name, then renamed) with `mode`.
  virtual void upload(std::string_view data, const std::string& remote_path, int mode) = 0;
  // Runs `command`, calling on_line for every complete stdout/stderr line; returns the rc.
  virtual int stream(const std::string& command,
                     const std::function<void(std::string_view line)>& on_line) = 0;
  // False when the connection is gone (an SSH session channel cannot be opened on it: one
  // round trip, nothing runs on the host). A connection kept idle across a run (the lock at the
  // start, the tasks of a later batch) is checked before it is used again.
  virtual bool alive() { return true; }
};

// Connects and authenticates; throws UnreachableError.
std::unique_ptr<Transport> connect(const ConnectParams& params);

// Opens transports: the seam between the engine (executor, locks, audit trail) and SSH. The
// default one is connect() (libssh, or /bin/sh for ConnectParams::local); tests give a fake.
class Connector {
 public:
  virtual ~Connector() = default;
  // Connects and authenticates; throws UnreachableError.
  virtual std::unique_ptr<Transport> connect(const ConnectParams& params) = 0;
};

// The connector of connect() (SshTransport, LocalTransport).
std::shared_ptr<Connector> default_connector();

// POSIX shell single-quoting.
std::string shell_quote(std::string_view s);

/// The local user running zdm-deploy (getpwuid_r: safe on the executor's --forks threads).
struct LocalAccount {
  std::string user = "?";
  std::string home = "/";
};
LocalAccount local_account();

// How a passphrase-protected key is unlocked: asked on the terminal (once per key per run), or,
// without a terminal, an error telling to use ssh-agent. Tests may install a provider.
using PassphraseProvider = std::function<std::string(const std::string& key_file)>;
void set_passphrase_provider(PassphraseProvider provider);

}  // namespace zdm::deploy
