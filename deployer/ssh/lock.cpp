#include "ssh/lock.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "common/util/clock.h"

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;

using util::utc_now;

std::string machine_name() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string short_hash(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned i = 0; i < 6; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

}  // namespace

std::string quote_host_path(const std::string& path) {
  const std::string fallback = kFallbackHostDir;
  if (path == fallback || path.rfind(fallback + "/", 0) == 0)
    return "\"$HOME\"/" + shell_quote(path.substr(std::string("$HOME/").size()));
  return shell_quote(path);
}

Json LockHolder::to_json() const {
  return {{"user", user},     {"machine", machine}, {"pid", pid},        {"command", command},
          {"run_id", run_id}, {"started", started}, {"message", message}};
}

LockHolder LockHolder::from_json(const Json& j) {
  LockHolder h;
  h.user = j.value("user", "");
  h.machine = j.value("machine", "");
  h.pid = j.value("pid", 0L);
  h.command = j.value("command", "");
  h.run_id = j.value("run_id", "");
  h.started = j.value("started", "");
  h.message = j.value("message", "");
  return h;
}

std::string LockHolder::describe() const {
  std::string s =
      fmt::format("{}@{} (pid {}, `{}`, since {}", user, machine, pid, command, started);
  if (!message.empty()) s += fmt::format(", \"{}\"", message);
  return s + ")";
}

bool LockHolder::dead_here() const {
  if (machine != machine_name() || pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

LockHolder current_holder(const std::string& command, const std::string& run_id,
                          const std::string& message) {
  LockHolder h;
  h.user = local_account().user;
  h.machine = machine_name();
  h.pid = static_cast<long>(getpid());
  h.command = command;
  h.run_id = run_id;
  h.started = utc_now();
  h.message = message;
  return h;
}

std::string default_state_dir() {
  if (const char* d = std::getenv("ZDM_DEPLOY_STATE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/zdm-deploy";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/tmp") + "/.local/state/zdm-deploy";
}

std::string local_lock_path(const std::string& state_dir, const std::string& inventory) {
  std::string abs = fs::absolute(inventory).lexically_normal().string();
  return (fs::path(state_dir) / "locks" /
          fmt::format("{}-{}.lock", fs::path(abs).filename().string(), short_hash(abs)))
      .string();
}

std::optional<LockHolder> read_local_lock(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return LockHolder::from_json(Json::parse(ss.str()));
  } catch (const Json::exception&) {
    LockHolder h;
    h.command = "(unreadable lock file " + path + ")";
    return h;
  }
}

std::optional<LockHolder> acquire_local_lock(const std::string& path, const LockHolder& me) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      std::string text = me.to_json().dump() + "\n";
      (void)!::write(fd, text.data(), text.size());
      ::close(fd);
      return std::nullopt;
    }
    auto holder = read_local_lock(path);
    if (holder && holder->dead_here()) {  // left by a run that died: take it over
      ::unlink(path.c_str());
      continue;
    }
    return holder ? holder : std::optional<LockHolder>(LockHolder{});
  }
  return read_local_lock(path);
}

bool release_local_lock(const std::string& path, const LockHolder& me, bool force) {
  auto holder = read_local_lock(path);
  if (!holder) return true;
  if (!force && holder->run_id != me.run_id) return false;
  ::unlink(path.c_str());
  return true;
}

// The lock is <dir>/.zdm-deploy.lock/ with a `holder` file (one JSON line). mkdir is atomic.
std::string host_lock_acquire_script(const std::string& dir, const LockHolder& me) {
  std::string d = dir + "/.zdm-deploy.lock";
  return fmt::format(
      "mkdir -p {0} || exit 1; "
      "if mkdir {1} 2>/dev/null; then printf '%s\\n' {2} > {1}/holder && echo lock=acquired; "
      "else echo lock=held; cat {1}/holder 2>/dev/null; fi",
      quote_host_path(dir), quote_host_path(d), shell_quote(me.to_json().dump()));
}

std::string host_lock_release_script(const std::string& dir, const std::string& run_id,
                                     bool force) {
  std::string d = dir + "/.zdm-deploy.lock";
  if (force) return fmt::format("rm -rf {0} && echo lock=released", quote_host_path(d));
  return fmt::format(
      "if [ ! -d {0} ]; then echo lock=none; "
      "elif grep -qF {1} {0}/holder 2>/dev/null; then rm -rf {0} && echo lock=released; "
      "else echo lock=held; cat {0}/holder; fi",
      quote_host_path(d), shell_quote("\"run_id\":\"" + run_id + "\""));
}

std::string host_lock_status_script(const std::string& dir) {
  std::string d = dir + "/.zdm-deploy.lock";
  return fmt::format(
      "if [ -d {0} ]; then echo lock=held; cat {0}/holder 2>/dev/null; "
      "else echo lock=none; fi",
      quote_host_path(d));
}

HostLockResult parse_host_lock_output(const std::string& out) {
  HostLockResult r;
  std::istringstream in(out);
  std::string first, rest;
  std::getline(in, first);
  std::getline(in, rest);
  if (first == "lock=acquired" || first == "lock=released" || first == "lock=none") {
    r.acquired = first != "lock=none";
    return r;
  }
  if (first == "lock=held") {
    try {
      r.holder = LockHolder::from_json(Json::parse(rest));
    } catch (const Json::exception&) {
      LockHolder h;
      h.command = "(unreadable holder file)";
      r.holder = h;
    }
    return r;
  }
  r.error = out;
  return r;
}

}  // namespace zdm::deploy
