#include "ssh/transport.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>

namespace zdm::deploy {

LocalAccount local_account() {
  // getpwuid_r, not getpwuid: the executor opens connections on --forks threads at once, and
  // getpwuid's static result is overwritten by each call (a data race TSan reported).
  LocalAccount a;
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &found) == 0 && found) {
    a.user = found->pw_name;
    a.home = found->pw_dir;
  }
  return a;
}

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

using Clock = std::chrono::steady_clock;

std::string temp_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format(".zdm-tmp-{:x}", rng() & 0xffffffffffULL);
}

std::string home_dir() {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  return local_account().home;
}

// ---------------------------------------------------------------- passphrases

std::mutex g_passphrase_mu;
PassphraseProvider g_passphrase_provider;
std::map<std::string, std::string> g_passphrases;  // key file → passphrase, for this run

// Asks on the controlling terminal with echo off; throws when there is none.
std::string ask_on_tty(const std::string& key_file) {
  int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error(fmt::format(
        "private key {} is protected by a passphrase and there is no terminal to ask for it: "
        "add it to ssh-agent (ssh-add {}) or run zdm-deploy from a terminal",
        key_file, key_file));
  std::string prompt = fmt::format("Enter passphrase for key '{}': ", key_file);
  (void)!::write(fd, prompt.data(), prompt.size());
  termios old{};
  bool restore = tcgetattr(fd, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n' && c != '\r') line += c;
  if (restore) tcsetattr(fd, TCSAFLUSH, &old);
  (void)!::write(fd, "\n", 1);
  ::close(fd);
  return line;
}

std::string passphrase_for(const std::string& key_file) {
  std::lock_guard lock(g_passphrase_mu);  // one prompt at a time, asked once per key
  if (auto it = g_passphrases.find(key_file); it != g_passphrases.end()) return it->second;
  std::string p = g_passphrase_provider ? g_passphrase_provider(key_file) : ask_on_tty(key_file);
  g_passphrases[key_file] = p;
  return p;
}

void forget_passphrase(const std::string& key_file) {
  std::lock_guard lock(g_passphrase_mu);
  g_passphrases.erase(key_file);
}

// True when a private key file's text says it is encrypted (PEM headers, PKCS#8, or an
// OpenSSH key whose cipher is not "none").
bool key_is_encrypted(const std::string& text) {
  if (text.find("ENCRYPTED") != std::string::npos) return true;
  const std::string begin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  auto b = text.find(begin);
  if (b == std::string::npos) return false;
  auto e = text.find("-----END", b + begin.size());
  std::string b64;
  for (size_t i = b + begin.size(); i < e && i < text.size(); ++i)
    if (!std::isspace(static_cast<unsigned char>(text[i]))) b64 += text[i];
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bin;
  unsigned buf = 0;
  int bits = 0;
  for (char ch : b64.substr(0, 64)) {  // the magic and the cipher name come first
    auto pos = alphabet.find(ch);
    if (pos == std::string::npos) break;
    buf = (buf << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bin += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  const std::string magic("openssh-key-v1\0", 15);
  if (bin.compare(0, magic.size(), magic) != 0 || bin.size() < magic.size() + 4) return false;
  size_t n = (static_cast<unsigned char>(bin[15]) << 24) |
             (static_cast<unsigned char>(bin[16]) << 16) |
             (static_cast<unsigned char>(bin[17]) << 8) | static_cast<unsigned char>(bin[18]);
  return bin.compare(19, n, "none") != 0 || n != 4;
}

// ---------------------------------------------------------------- line splitting

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
  ExecResult exec(const std::string& command, int timeout_seconds) override {
    ExecResult r;
    r.rc = run(command, &r.out, &r.err, nullptr, timeout_seconds);
    if (r.rc == kTimedOutRc && timed_out_) {
      r.timed_out = true;
      r.err += fmt::format("{}timed out after {} s", r.err.empty() ? "" : "\n", timeout_seconds);
    }
    return r;
  }

  int stream(const std::string& command,
             const std::function<void(std::string_view)>& on_line) override {
    LineSplitter lines(on_line);
    int rc = run(command, nullptr, nullptr, &lines, 0);
    lines.finish();
    return rc;
  }

 protected:
  // Runs `command`; output goes to out/err, or line by line to `lines` when it is set.
  virtual int run(const std::string& command, std::string* out, std::string* err,
                  LineSplitter* lines, int timeout_seconds) = 0;
  bool timed_out_ = false;
};

// ---------------------------------------------------------------- SSH sessions

[[noreturn]] void unreachable(const ConnectParams& p, const std::string& why) {
  throw UnreachableError(fmt::format("{} ({}:{}): {}", p.name, p.host, p.port, why));
}

std::string local_user() {
  return local_account().user;
}

// The session's options for `p`, in the order libssh is given them; `fd` >= 0: a connected
// socket to use instead of connecting to p.host.
void set_session_options(ssh_session s, const ConnectParams& p, int fd) {
  int verbosity = SSH_LOG_NOLOG;
  int process_config = 0;
  long timeout = p.timeout_seconds;
  unsigned int port = static_cast<unsigned int>(p.port);
  ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &process_config);  // ours resolves ssh_config
  ssh_options_set(s, SSH_OPTIONS_HOST, p.host.c_str());
  ssh_options_set(s, SSH_OPTIONS_PORT, &port);
  ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout);
  // Small SFTP writes and exec requests wait on delayed ACKs without TCP_NODELAY (~40 ms
  // each: a 40 MB upload took 37 s); with it the same upload is bounded by SFTP itself.
  int nodelay = 1;
  ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay);
  if (!p.user.empty()) ssh_options_set(s, SSH_OPTIONS_USER, p.user.c_str());
  ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, p.known_hosts.c_str());
  ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  if (!p.identity_agent.empty() && p.identity_agent != "none" &&
      p.identity_agent != "SSH_AUTH_SOCK")
    ssh_options_set(s, SSH_OPTIONS_IDENTITY_AGENT, p.identity_agent.c_str());
  if (fd >= 0) ssh_options_set(s, SSH_OPTIONS_FD, &fd);
}

void connect_session(ssh_session s, const ConnectParams& p) {
  if (ssh_connect(s) == SSH_OK) return;
  std::string err = ssh_get_error(s);
  if (err.find("refused") != std::string::npos) unreachable(p, "connection refused");
  if (err.find("imeout") != std::string::npos || err.find("timed out") != std::string::npos)
    unreachable(p, "connection timed out");
  unreachable(p, fmt::format("cannot connect: {}", err));
}

// The server's key against known_hosts: a changed key is refused, an unknown one added only with
// --accept-new-host-keys.
void verify_host_key(ssh_session s, const ConnectParams& p) {
  switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
      break;
    case SSH_KNOWN_HOSTS_CHANGED:
      unreachable(p, fmt::format("host key changed (known_hosts: {})", p.known_hosts));
    case SSH_KNOWN_HOSTS_OTHER:
      unreachable(p, fmt::format("host key changed: the server offered a key of another type "
                                 "than the one in known_hosts ({})",
                                 p.known_hosts));
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
      if (p.accept_new_host_keys) {
        namespace fs = std::filesystem;
        std::error_code ec;
        auto dir = fs::path(p.known_hosts).parent_path();
        if (!dir.empty()) fs::create_directories(dir, ec);
        if (ssh_session_update_known_hosts(s) != SSH_OK)
          unreachable(
              p, fmt::format("cannot add the host key to {}: {}", p.known_hosts, ssh_get_error(s)));
        break;
      }
      unreachable(p, fmt::format("unknown host key (not in {}; add it, e.g. with ssh-keyscan, "
                                 "or run with --accept-new-host-keys)",
                                 p.known_hosts));
    case SSH_KNOWN_HOSTS_ERROR:
      unreachable(p, fmt::format("cannot check host key: {}", ssh_get_error(s)));
  }
}

// The identity files to offer: the given ones, else the default keys that exist (unless
// IdentitiesOnly).
std::vector<std::string> identity_files(const ConnectParams& p) {
  std::vector<std::string> files = p.identity_files;
  if (files.empty() && !p.identities_only)
    for (const char* n : {"id_ed25519", "id_ecdsa", "id_rsa"}) {
      std::string f = home_dir() + "/.ssh/" + n;
      if (::access(f.c_str(), R_OK) == 0) files.push_back(f);
    }
  return files;
}

// An identity file's private key, asking for its passphrase where one is needed (three tries);
// null, with the reason added to `tried`, when the file cannot be read or is no key libssh reads.
ssh_key load_private_key(const ConnectParams& p, const std::string& file,
                         std::vector<std::string>& tried) {
  std::ifstream in(file);
  if (!in) {
    if (!p.identity_files.empty()) tried.push_back(file + " (cannot read)");
    return nullptr;
  }
  std::stringstream text;
  text << in.rdbuf();
  ssh_key key = nullptr;
  if (key_is_encrypted(text.str())) {
    for (int attempt = 0; attempt < 3 && !key; ++attempt) {
      std::string pass;
      try {
        pass = passphrase_for(file);
      } catch (const std::exception& e) {
        unreachable(p, e.what());
      }
      if (ssh_pki_import_privkey_file(file.c_str(), pass.c_str(), nullptr, nullptr, &key) !=
          SSH_OK) {
        key = nullptr;
        forget_passphrase(file);
      }
    }
    if (!key) unreachable(p, fmt::format("wrong passphrase for private key {}", file));
  } else if (ssh_pki_import_privkey_file(file.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK) {
    tried.push_back(file + " (not a private key libssh can read)");
    return nullptr;
  }
  return key;
}

// Authentication, as OpenSSH orders it: the agent's keys, then the identity files (asking
// for a passphrase where one is needed), then the default keys when none are given. Throws
// UnreachableError naming what was tried when none is accepted.
void authenticate(ssh_session s, const ConnectParams& p) {
  std::vector<std::string> tried;
  bool use_agent = p.identity_agent != "none" && !(p.identities_only && !p.identity_files.empty());
  if (use_agent && (std::getenv("SSH_AUTH_SOCK") || !p.identity_agent.empty())) {
    if (ssh_userauth_agent(s, nullptr) == SSH_AUTH_SUCCESS) return;
    tried.push_back("ssh-agent");
  }
  for (const auto& file : identity_files(p)) {
    ssh_key key = load_private_key(p, file, tried);
    if (!key) continue;
    int rc = ssh_userauth_publickey(s, nullptr, key);
    ssh_key_free(key);
    if (rc == SSH_AUTH_SUCCESS) return;
    tried.push_back(file);
  }
  std::string user = p.user.empty() ? local_user() : p.user;
  if (tried.empty())
    unreachable(p, fmt::format("auth failed for user '{}': no ssh-agent and no private key "
                               "(ansible_ssh_private_key_file, IdentityFile, ~/.ssh/id_*)",
                               user));
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  unreachable(p, fmt::format("auth failed for user '{}' (tried {})", user, list));
}

// One authenticated libssh session, connected directly or over `fd` (a bastion's channel).
ssh_session open_session(const ConnectParams& p, int fd) {
  ssh_session s = ssh_new();
  if (!s) unreachable(p, "cannot create SSH session");
  struct Guard {
    ssh_session s;
    bool keep = false;
    ~Guard() {
      if (!keep) {
        ssh_disconnect(s);
        ssh_free(s);
      }
    }
  } guard{s};
  set_session_options(s, p, fd);
  connect_session(s, p);
  verify_host_key(s, p);
  authenticate(s, p);
  guard.keep = true;
  return s;
}

// A bastion's direct-tcpip channel to the next hop, pumped to one end of a socket pair whose
// other end is the next session's socket (what `ssh -J` does, in a thread of ours).
class Tunnel {
 public:
  Tunnel(ssh_session via, const ConnectParams& via_params, const ConnectParams& to) : via_(via) {
    ch_ = ssh_channel_new(via_);
    if (!ch_) unreachable(via_params, "cannot open a channel");
    if (ssh_channel_open_forward(ch_, to.host.c_str(), to.port, "127.0.0.1", 0) != SSH_OK) {
      std::string err = ssh_get_error(via_);
      ssh_channel_free(ch_);
      ch_ = nullptr;
      unreachable(to, fmt::format("cannot reach it through {}: {}", via_params.name, err));
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_) != 0) {
      ssh_channel_free(ch_);
      unreachable(to, fmt::format("socketpair: {}", std::strerror(errno)));
    }
    thread_ = std::thread([this] { pump(); });
  }
  ~Tunnel() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fds_[1] >= 0) ::close(fds_[1]);
    if (ch_) {
      ssh_channel_close(ch_);
      ssh_channel_free(ch_);
    }
    ssh_disconnect(via_);
    ssh_free(via_);
  }
  // The end the next session reads and writes (libssh owns it from then on).
  int session_fd() const { return fds_[0]; }

 private:
  void pump() {
    char buf[32768];
    int mine = fds_[1];
    while (!stop_) {
      pollfd p[2] = {{mine, POLLIN, 0}, {ssh_get_fd(via_), POLLIN, 0}};
      ::poll(p, 2, 20);
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::read(mine, buf, sizeof buf);
        if (n <= 0) {
          ssh_channel_send_eof(ch_);
          break;
        }
        if (ssh_channel_write(ch_, buf, static_cast<uint32_t>(n)) == SSH_ERROR) break;
      }
      int n;
      while ((n = ssh_channel_read_nonblocking(ch_, buf, sizeof buf, 0)) > 0) {
        for (int off = 0; off < n;) {
          ssize_t w = ::write(mine, buf + off, static_cast<size_t>(n - off));
          if (w <= 0) {
            if (errno == EINTR) continue;
            n = SSH_ERROR;
            break;
          }
          off += static_cast<int>(w);
        }
        if (n == SSH_ERROR) break;
      }
      if (n == SSH_ERROR || ssh_channel_is_eof(ch_) || ssh_channel_is_closed(ch_)) break;
    }
    ::shutdown(mine, SHUT_RDWR);  // the session over it sees the connection end
  }

  ssh_session via_;
  ssh_channel ch_ = nullptr;
  int fds_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

class SshTransport : public RunTransport {
 public:
  explicit SshTransport(const ConnectParams& p) : p_(p) {}
  ~SshTransport() override {
    if (sftp_) sftp_free(sftp_);
    if (session_) {
      ssh_disconnect(session_);
      ssh_free(session_);
    }
    while (!tunnels_.empty()) tunnels_.pop_back();  // last hop first
  }

  void open() {
    int fd = -1;
    if (!p_.jumps.empty()) {
      // First bastion directly, each next hop through the previous one's channel.
      ssh_session via = open_session(p_.jumps[0], -1);
      for (size_t i = 0; i < p_.jumps.size(); ++i) {
        const ConnectParams& next = i + 1 < p_.jumps.size() ? p_.jumps[i + 1] : p_;
        try {
          tunnels_.push_back(std::make_unique<Tunnel>(via, p_.jumps[i], next));
        } catch (...) {
          ssh_disconnect(via);
          ssh_free(via);
          throw;
        }
        fd = tunnels_.back()->session_fd();
        if (i + 1 < p_.jumps.size()) via = open_session(p_.jumps[i + 1], fd);
      }
    }
    session_ = open_session(p_, fd);
  }

  bool alive() override {
    ssh_channel ch = ssh_channel_new(session_);
    if (!ch) return false;
    bool ok = ssh_channel_open_session(ch) == SSH_OK;
    if (ok) ssh_channel_close(ch);
    ssh_channel_free(ch);
    return ok;
  }

  void upload(std::string_view data, const std::string& remote_path, int mode) override {
    if (!sftp_) {
      sftp_ = sftp_new(session_);
      if (!sftp_ || sftp_init(sftp_) != SSH_OK) {
        std::string err = ssh_get_error(session_);
        if (sftp_) sftp_free(sftp_);
        sftp_ = nullptr;
        if (ssh_is_connected(session_) == 0)
          throw UnreachableError(fmt::format("{}: connection lost: {}", p_.name, err));
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
        if (ssh_is_connected(session_) == 0)
          throw UnreachableError(
              fmt::format("{}: connection lost: {}", p_.name, ssh_get_error(session_)));
        sftp_unlink(sftp_, tmp.c_str());
        throw std::runtime_error(
            fmt::format("write to {} failed: {}", tmp, ssh_get_error(session_)));
      }
      off += static_cast<size_t>(w);
    }
    sftp_close(f);
    sftp_chmod(sftp_, tmp.c_str(), static_cast<mode_t>(mode));
    ExecResult mv = exec(fmt::format("mv -f {} {}", shell_quote(tmp), shell_quote(remote_path)), 0);
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

  [[noreturn]] void lost(const char* what) const {
    throw UnreachableError(fmt::format("{}: {}: {}", p_.name, what, ssh_get_error(session_)));
  }

  int run(const std::string& command, std::string* out, std::string* err, LineSplitter* lines,
          int timeout_seconds) override {
    timed_out_ = false;
    ssh_channel ch = ssh_channel_new(session_);
    if (!ch) lost("cannot open channel");
    struct Closer {
      ssh_channel ch;
      ~Closer() {
        ssh_channel_close(ch);
        ssh_channel_free(ch);
      }
    } closer{ch};
    if (ssh_channel_open_session(ch) != SSH_OK) lost("connection lost (cannot open session)");
    if (ssh_channel_request_exec(ch, command.c_str()) != SSH_OK) lost("exec failed");
    ssh_channel_send_eof(ch);
    char buf[16384];
    auto deliver = [&](int n, int is_stderr) {
      if (lines)
        lines->feed(buf, static_cast<size_t>(n));
      else
        (is_stderr ? err : out)->append(buf, static_cast<size_t>(n));
    };
    auto deadline = timeout_seconds > 0 ? Clock::now() + std::chrono::seconds(timeout_seconds)
                                        : Clock::time_point::max();
    while (true) {
      // Blocks up to 50 ms for stdout; stderr packets read meanwhile are buffered by libssh.
      int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 50);
      if (n == SSH_ERROR) lost("connection lost");
      if (n > 0) deliver(n, 0);
      int e;
      while ((e = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1)) > 0) deliver(e, 1);
      if (e == SSH_ERROR) lost("connection lost");
      if (n == 0 && (ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch))) break;
      if (Clock::now() >= deadline) {
        ssh_channel_request_send_signal(ch, "TERM");
        timed_out_ = true;
        return kTimedOutRc;
      }
    }
    return ssh_channel_get_exit_status(ch);
  }

  ConnectParams p_;
  std::vector<std::unique_ptr<Tunnel>> tunnels_;
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
  int run(const std::string& command, std::string* out, std::string* err, LineSplitter* lines,
          int timeout_seconds) override {
    timed_out_ = false;
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0)
      throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
      // A session of its own: the terminal's Ctrl-C is for zdm-deploy, which finishes the
      // host in progress; it must not kill the commands that do it.
      setsid();
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
    auto deadline = timeout_seconds > 0 ? Clock::now() + std::chrono::seconds(timeout_seconds)
                                        : Clock::time_point::max();
    while (open_fds > 0) {
      int wait_ms = -1;
      if (deadline != Clock::time_point::max()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
          timed_out_ = true;
          ::kill(-pid, SIGTERM);
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          ::kill(-pid, SIGKILL);
          break;
        }
        wait_ms = static_cast<int>(left.count());
      }
      if (poll(fds, 2, wait_ms) < 0) {
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
    for (auto& f : fds)
      if (f.fd >= 0) ::close(f.fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out_) return kTimedOutRc;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }
};

}  // namespace

void set_passphrase_provider(PassphraseProvider provider) {
  std::lock_guard lock(g_passphrase_mu);
  g_passphrase_provider = std::move(provider);
  g_passphrases.clear();
}

std::unique_ptr<Transport> connect(const ConnectParams& params) {
  if (params.local) return std::make_unique<LocalTransport>();
  auto t = std::make_unique<SshTransport>(params);
  t->open();
  return t;
}

std::shared_ptr<Connector> default_connector() {
  struct Default : Connector {
    std::unique_ptr<Transport> connect(const ConnectParams& params) override {
      return zdm::deploy::connect(params);
    }
  };
  static const std::shared_ptr<Connector> instance = std::make_shared<Default>();
  return instance;
}

}  // namespace zdm::deploy
