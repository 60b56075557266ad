// Running commands and uploading files on a host: over SSH (libssh) or locally.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

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
};

struct ConnectParams {
  std::string name;  // inventory name (for messages)
  std::string host;
  int port = 22;
  std::string user;      // "" = current user
  std::string key_file;  // "" = agent / default keys
  std::string known_hosts;
  int timeout_seconds = 10;
  bool local = false;  // ansible_connection=local
};

// Two implementations: SshTransport (libssh) and LocalTransport (/bin/sh -c). One host's
// transport is used by one thread at a time.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual ExecResult exec(const std::string& command) = 0;
  // Writes `data` to `remote_path` (through a temporary name, then renamed) with `mode`.
  virtual void upload(std::string_view data, const std::string& remote_path, int mode) = 0;
  // Runs `command`, calling on_line for every complete stdout/stderr line; returns the rc.
  virtual int stream(const std::string& command,
                     const std::function<void(std::string_view line)>& on_line) = 0;
};

// Connects and authenticates; throws UnreachableError.
std::unique_ptr<Transport> connect(const ConnectParams& params);

// POSIX shell single-quoting.
std::string shell_quote(std::string_view s);

}  // namespace zdm::deploy
