#include "transport.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>

namespace zdm::deploy {

std::string shell_quote(std::string_view s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789@%+=:,./-_") == std::string_view::npos)
    return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\"'\"'";
    else
      out += c;
  }
  return out + "'";
}

namespace {

std::string temp_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format(".zdm-tmp-{:x}", rng() & 0xffffffffffULL);
}

// Splits buffered output into lines for stream().
class LineSplitter {
 public:
  explicit LineSplitter(const std::function<void(std::string_view)>& cb) : cb_(cb) {}
  void feed(const char* data, size_t n) {
    buf_.append(data, n);
    size_t pos;
    while ((pos = buf_.find('\n')) != std::string::npos) {
      cb_(std::string_view(buf_).substr(0, pos));
      buf_.erase(0, pos + 1);
    }
  }
  void finish() {
    if (!buf_.empty()) cb_(buf_);
    buf_.clear();
  }

 private:
  const std::function<void(std::string_view)>& cb_;
  std::string buf_;
};

// exec() and stream() are the same for every transport: run() with a different sink.
class RunTransport : public Transport {
 public:
  ExecResult exec(const std::string& command) override {
    ExecResult r;
    r.rc = run(command, &r.out, &r.err, nullptr);
    return r;
  }

  int stream(const std::string& command,
             const std::function<void(std::string_view)>& on_line) override {
    LineSplitter lines(on_line);
    int rc = run(command, nullptr, nullptr, &lines);
    lines.finish();
    return rc;
  }

 protected:
  // Runs `command`; output goes to out/err, or line by line to `lines` when it is set.
  virtual int run(const std::string& command, std::string* out, std::string* err,
                  LineSplitter* lines) = 0;
};

// ---------------------------------------------------------------- SSH

class SshTransport : public RunTransport {
 public:
  explicit SshTransport(const ConnectParams& p) : p_(p) {}
  ~SshTransport() override {
    if (sftp_) sftp_free(sftp_);
    if (session_) {
      ssh_disconnect(session_);
      ssh_free(session_);
    }
  }

  void open() {
    session_ = ssh_new();
    if (!session_) fail("cannot create SSH session");
    int verbosity = SSH_LOG_NOLOG;
    int process_config = 0;
    long timeout = p_.timeout_seconds;
    unsigned int port = static_cast<unsigned int>(p_.port);
    ssh_options_set(session_, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
    ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &process_config);
    ssh_options_set(session_, SSH_OPTIONS_HOST, p_.host.c_str());
    ssh_options_set(session_, SSH_OPTIONS_PORT, &port);
    ssh_options_set(session_, SSH_OPTIONS_TIMEOUT, &timeout);
    // Small SFTP writes and exec requests wait on delayed ACKs without TCP_NODELAY (~40 ms
    // each: a 40 MB upload took 37 s); with it the same upload is bounded by SFTP itself.
    int nodelay = 1;
    ssh_options_set(session_, SSH_OPTIONS_NODELAY, &nodelay);
    if (!p_.user.empty()) ssh_options_set(session_, SSH_OPTIONS_USER, p_.user.c_str());
    ssh_options_set(session_, SSH_OPTIONS_KNOWNHOSTS, p_.known_hosts.c_str());
    ssh_options_set(session_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    if (ssh_connect(session_) != SSH_OK) {
      std::string err = ssh_get_error(session_);
      if (err.find("refused") != std::string::npos) fail("connection refused");
      if (err.find("imeout") != std::string::npos || err.find("timed out") != std::string::npos)
        fail("connection timed out");
      fail(fmt::format("cannot connect: {}", err));
    }
    switch (ssh_session_is_known_server(session_)) {
      case SSH_KNOWN_HOSTS_OK:
        break;
      case SSH_KNOWN_HOSTS_CHANGED:
        fail(fmt::format("host key changed (known_hosts: {})", p_.known_hosts));
      case SSH_KNOWN_HOSTS_OTHER:
        fail(
            fmt::format("host key changed: the server offered a key of another type than the "
                        "one in known_hosts ({})",
                        p_.known_hosts));
      case SSH_KNOWN_HOSTS_NOT_FOUND:
        fail(fmt::format("unknown host key (known_hosts file {} does not exist)", p_.known_hosts));
      case SSH_KNOWN_HOSTS_UNKNOWN:
        fail(fmt::format("unknown host key (not in {})", p_.known_hosts));
      case SSH_KNOWN_HOSTS_ERROR:
        fail(fmt::format("cannot check host key: {}", ssh_get_error(session_)));
    }
    int rc = SSH_AUTH_DENIED;
    if (!p_.key_file.empty()) {
      ssh_key key = nullptr;
      if (ssh_pki_import_privkey_file(p_.key_file.c_str(), nullptr, nullptr, nullptr, &key) !=
          SSH_OK)
        fail(fmt::format("auth failed: cannot read private key {}", p_.key_file));
      rc = ssh_userauth_publickey(session_, nullptr, key);
      ssh_key_free(key);
    } else {
      rc = ssh_userauth_publickey_auto(session_, nullptr, nullptr);
    }
    if (rc != SSH_AUTH_SUCCESS)
      fail(fmt::format("auth failed for user '{}'{}", user(),
                       p_.key_file.empty() ? "" : fmt::format(" with key {}", p_.key_file)));
  }

  void upload(std::string_view data, const std::string& remote_path, int mode) override {
    if (!sftp_) {
      sftp_ = sftp_new(session_);
      if (!sftp_ || sftp_init(sftp_) != SSH_OK) {
        std::string err = ssh_get_error(session_);
        if (sftp_) sftp_free(sftp_);
        sftp_ = nullptr;
        throw std::runtime_error(fmt::format("SFTP unavailable on {}: {}", p_.name, err));
      }
    }
    std::string tmp = remote_path + temp_suffix();
    sftp_file f = sftp_open(sftp_, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (!f)
      throw std::runtime_error(
          fmt::format("cannot create {}: {}", tmp, sftp_error_text(sftp_get_error(sftp_))));
    size_t off = 0;
    while (off < data.size()) {
      size_t n = std::min<size_t>(data.size() - off, 32768);
      ssize_t w = sftp_write(f, data.data() + off, n);
      if (w <= 0) {
        sftp_close(f);
        sftp_unlink(sftp_, tmp.c_str());
        throw std::runtime_error(
            fmt::format("write to {} failed: {}", tmp, ssh_get_error(session_)));
      }
      off += static_cast<size_t>(w);
    }
    sftp_close(f);
    sftp_chmod(sftp_, tmp.c_str(), static_cast<mode_t>(mode));
    ExecResult mv = exec(fmt::format("mv -f {} {}", shell_quote(tmp), shell_quote(remote_path)));
    if (mv.rc != 0)
      throw std::runtime_error(fmt::format("cannot move {} into place: {}", remote_path, mv.err));
  }

 private:
  static const char* sftp_error_text(int code) {
    switch (code) {
      case SSH_FX_NO_SUCH_FILE:
        return "no such file or directory";
      case SSH_FX_PERMISSION_DENIED:
        return "permission denied";
      case SSH_FX_FAILURE:
        return "failure";
      default:
        return "SFTP error";
    }
  }

  std::string user() const {
    if (!p_.user.empty()) return p_.user;
    if (auto* pw = getpwuid(getuid())) return pw->pw_name;
    return "?";
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw UnreachableError(fmt::format("{} ({}:{}): {}", p_.name, p_.host, p_.port, why));
  }

  int run(const std::string& command, std::string* out, std::string* err,
          LineSplitter* lines) override {
    ssh_channel ch = ssh_channel_new(session_);
    if (!ch)
      throw UnreachableError(
          fmt::format("{}: cannot open channel: {}", p_.name, ssh_get_error(session_)));
    struct Closer {
      ssh_channel ch;
      ~Closer() {
        ssh_channel_close(ch);
        ssh_channel_free(ch);
      }
    } closer{ch};
    if (ssh_channel_open_session(ch) != SSH_OK)
      throw UnreachableError(
          fmt::format("{}: cannot open session: {}", p_.name, ssh_get_error(session_)));
    if (ssh_channel_request_exec(ch, command.c_str()) != SSH_OK)
      throw UnreachableError(fmt::format("{}: exec failed: {}", p_.name, ssh_get_error(session_)));
    ssh_channel_send_eof(ch);
    char buf[16384];
    auto deliver = [&](int n, int is_stderr) {
      if (lines)
        lines->feed(buf, static_cast<size_t>(n));
      else
        (is_stderr ? err : out)->append(buf, static_cast<size_t>(n));
    };
    while (true) {
      // Blocks up to 50 ms for stdout; stderr packets read meanwhile are buffered by libssh.
      int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 50);
      if (n == SSH_ERROR)
        throw UnreachableError(
            fmt::format("{}: connection lost: {}", p_.name, ssh_get_error(session_)));
      if (n > 0) deliver(n, 0);
      int e;
      while ((e = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1)) > 0) deliver(e, 1);
      if (e == SSH_ERROR)
        throw UnreachableError(
            fmt::format("{}: connection lost: {}", p_.name, ssh_get_error(session_)));
      if (n == 0 && (ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch))) break;
    }
    int rc = ssh_channel_get_exit_status(ch);
    return rc;
  }

  ConnectParams p_;
  ssh_session session_ = nullptr;
  sftp_session sftp_ = nullptr;
};

// ---------------------------------------------------------------- local

class LocalTransport : public RunTransport {
 public:
  void upload(std::string_view data, const std::string& remote_path, int mode) override {
    std::string tmp = remote_path + temp_suffix();
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      if (!f)
        throw std::runtime_error(fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
      f.write(data.data(), static_cast<std::streamsize>(data.size()));
      if (!f) throw std::runtime_error(fmt::format("write to {} failed", tmp));
    }
    ::chmod(tmp.c_str(), static_cast<mode_t>(mode));
    if (::rename(tmp.c_str(), remote_path.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      throw std::runtime_error(
          fmt::format("cannot move {} into place: {}", remote_path, std::strerror(e)));
    }
  }

 private:
  int run(const std::string& command, std::string* out, std::string* err,
          LineSplitter* lines) override {
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0)
      throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
      dup2(po[1], 1);
      dup2(pe[1], 2);
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    ::close(po[1]);
    ::close(pe[1]);
    pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    char buf[16384];
    while (open_fds > 0) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
          continue;
        }
        if (lines)
          lines->feed(buf, static_cast<size_t>(n));
        else
          (i == 0 ? out : err)->append(buf, static_cast<size_t>(n));
      }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }
};

}  // namespace

std::unique_ptr<Transport> connect(const ConnectParams& params) {
  if (params.local) return std::make_unique<LocalTransport>();
  auto t = std::make_unique<SshTransport>(params);
  t->open();
  return t;
}

}  // namespace zdm::deploy
