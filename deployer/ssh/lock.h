// Locks of a run: one on this machine (per inventory) and one on every host the run touches
// (a directory made with mkdir, holding who took it), so two runs never change a deployment at
// once. A second run is refused naming the holder; a lock left by a run that died on this
// machine is taken over (its pid is gone).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ssh/transport.h"

namespace zdm::deploy {

using Json = nlohmann::json;

// Who holds (or asks for) a lock.
struct LockHolder {
  std::string user;     // local user name
  std::string machine;  // this machine's host name
  long pid = 0;
  std::string command;  // the command line, secrets redacted
  std::string run_id;
  std::string started;  // UTC ISO time
  std::string message;  // `lock acquire -m`
  Json to_json() const;
  static LockHolder from_json(const Json& j);
  // "alice@laptop (pid 123, `zdm-deploy rolling-update -i inv`, since 2026-01-01T10:00:00Z)"
  std::string describe() const;
  // True when the holder is a process of this machine that no longer runs.
  bool dead_here() const;
};

LockHolder current_holder(const std::string& command, const std::string& run_id,
                          const std::string& message = {});

// The local lock file for an inventory: <state_dir>/locks/<name>-<hash>.lock.
std::string local_lock_path(const std::string& state_dir, const std::string& inventory);

// Takes the local lock; returns the holder that keeps it when refused (nullopt on success).
std::optional<LockHolder> acquire_local_lock(const std::string& path, const LockHolder& me);
// Removes it if `me` holds it (or `force`). Returns false when another run holds it.
bool release_local_lock(const std::string& path, const LockHolder& me, bool force);
std::optional<LockHolder> read_local_lock(const std::string& path);

// A host's lock directory when its home directory variable does not render (host_lock_dir):
// .zdm-deploy in the SSH user's home, which the host's shell expands.
inline constexpr const char* kFallbackHostDir = "$HOME/.zdm-deploy";

// `path`, a host directory or a path under it, as one shell word: quoted, except that the
// fallback's $HOME (kFallbackHostDir) is left for the host's shell to expand.
std::string quote_host_path(const std::string& path);

// The shell commands that take, release and show a host's lock in `dir`; their outputs parsed.
std::string host_lock_acquire_script(const std::string& dir, const LockHolder& me);
std::string host_lock_release_script(const std::string& dir, const std::string& run_id, bool force);
std::string host_lock_status_script(const std::string& dir);

struct HostLockResult {
  bool acquired = false;
  std::optional<LockHolder> holder;  // the other holder when refused / the holder for status
  std::string error;
};
// Parses the acquire (or status) script's output.
HostLockResult parse_host_lock_output(const std::string& out);

// The state directory: $ZDM_DEPLOY_STATE_DIR, else $XDG_STATE_HOME/zdm-deploy, else
// ~/.local/state/zdm-deploy.
std::string default_state_dir();

}  // namespace zdm::deploy
