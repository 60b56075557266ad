// A fake transport for engine tests without sshd: every host's commands are answered by a
// function of the test, recorded in order, and every connect is counted.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ssh/transport.h"

namespace zdm::deploy::testing {

class FakeHosts : public Connector {
 public:
  // Answers one command on one host (default: rc 0, no output). May throw UnreachableError
  // (the connection is lost).
  using Answer = std::function<ExecResult(const std::string& host, const std::string& command)>;

  explicit FakeHosts(Answer answer = nullptr) : answer_(std::move(answer)) {}

  // Hosts whose connect fails (UnreachableError "HOST: connection refused").
  std::set<std::string> unreachable;

  // The host's connections so far are gone (their alive() says false; new ones are fine).
  void kill_connections(const std::string& host) {
    std::lock_guard lock(mu_);
    killed_[host] = connects_[host];
  }

  std::unique_ptr<Transport> connect(const ConnectParams& params) override;

  // Every command run, as (host, command), in the order they ran.
  std::vector<std::pair<std::string, std::string>> commands() const {
    std::lock_guard lock(mu_);
    return commands_;
  }
  // The commands of one host that contain `text`.
  std::vector<std::string> commands_on(const std::string& host,
                                       const std::string& text = "") const {
    std::vector<std::string> out;
    for (auto& [h, c] : commands())
      if (h == host && c.find(text) != std::string::npos) out.push_back(c);
    return out;
  }
  int connects(const std::string& host) const {
    std::lock_guard lock(mu_);
    auto it = connects_.find(host);
    return it == connects_.end() ? 0 : it->second;
  }
  // The most commands that ran at the same time (for --forks).
  int max_concurrent() const {
    std::lock_guard lock(mu_);
    return max_concurrent_;
  }
  std::map<std::string, std::string> uploads() const {  // "host:path" → data
    std::lock_guard lock(mu_);
    return uploads_;
  }

 private:
  friend class FakeTransport;
  Answer answer_;
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> commands_;
  std::map<std::string, int> connects_;
  std::map<std::string, int> killed_;  // connections numbered up to this one are gone
  std::map<std::string, std::string> uploads_;
  int running_ = 0, max_concurrent_ = 0;
};

class FakeTransport : public Transport {
 public:
  FakeTransport(FakeHosts& hosts, std::string host, int number)
      : hosts_(hosts), host_(std::move(host)), number_(number) {}

  bool alive() override {
    std::lock_guard lock(hosts_.mu_);
    return number_ > hosts_.killed_[host_];
  }

  ExecResult exec(const std::string& command, int = 0) override {
    {
      std::lock_guard lock(hosts_.mu_);
      hosts_.commands_.emplace_back(host_, command);
      hosts_.max_concurrent_ = std::max(hosts_.max_concurrent_, ++hosts_.running_);
    }
    struct Done {
      FakeHosts& h;
      ~Done() {
        std::lock_guard lock(h.mu_);
        --h.running_;
      }
    } done{hosts_};
    if (!hosts_.answer_) return ExecResult{0, "", "", false};
    return hosts_.answer_(host_, command);
  }
  void upload(std::string_view data, const std::string& remote_path, int) override {
    std::lock_guard lock(hosts_.mu_);
    hosts_.commands_.emplace_back(host_, "upload " + remote_path);
    hosts_.uploads_[host_ + ":" + remote_path] = std::string(data);
  }
  int stream(const std::string& command,
             const std::function<void(std::string_view line)>& on_line) override {
    ExecResult r = exec(command);
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);) on_line(l);
    return r.rc;
  }

 private:
  FakeHosts& hosts_;
  std::string host_;
  int number_;  // this host's connect count when it was opened
};

inline std::unique_ptr<Transport> FakeHosts::connect(const ConnectParams& params) {
  std::string host = params.local ? "localhost" : params.name;
  int number;
  {
    std::lock_guard lock(mu_);
    number = ++connects_[host];
  }
  if (unreachable.count(host)) throw UnreachableError(host + ": connection refused");
  return std::make_unique<FakeTransport>(*this, host, number);
}

}  // namespace zdm::deploy::testing
