#include "executor.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ostream>
#include <thread>

#include <fmt/format.h>

#include "template.h"

namespace zdm::deploy {

struct Executor::HostState {
  std::unique_ptr<Transport> transport;
  Json facts = Json::object();
  std::set<std::string> notified;  // handler names waiting for the next flush
  bool failed = false;
  bool unreachable = false;
};

namespace {

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  for (size_t pos = 0; (pos = s.find('\n', pos)) != std::string::npos;) s.replace(pos, 1, " | ");
  return s;
}

long long as_int(const Json& j, long long dflt) {
  if (j.is_number()) return j.get<long long>();
  if (j.is_string()) {
    try {
      return std::stoll(j.get<std::string>());
    } catch (const std::exception&) {
    }
  }
  return dflt;
}

}  // namespace

ConnectParams connect_params(const std::string& name, const Json& scope,
                             const std::string& known_hosts, int timeout_seconds) {
  ConnectParams p;
  p.name = name;
  Source src{"inventory host '" + name + "'", 1};
  auto get = [&](const char* key) -> Json {
    if (!scope.contains(key)) return nullptr;
    return render_value(scope[key], scope, src);
  };
  Json h = get("ansible_host");
  p.host = h.is_null() ? name : to_text(h);
  p.port = static_cast<int>(as_int(get("ansible_port"), 22));
  if (Json u = get("ansible_user"); !u.is_null()) p.user = to_text(u);
  if (Json k = get("ansible_ssh_private_key_file"); !k.is_null()) {
    p.key_file = to_text(k);
    if (p.key_file.rfind("~/", 0) == 0)
      if (const char* home = std::getenv("HOME")) p.key_file = home + p.key_file.substr(1);
  }
  if (Json c = get("ansible_connection"); !c.is_null()) p.local = to_text(c) == "local";
  p.known_hosts = known_hosts;
  p.timeout_seconds = timeout_seconds;
  return p;
}

Executor::Executor(const Playbook& pb, Plan& plan, ExecOptions opts, std::ostream& out)
    : pb_(pb), plan_(plan), opts_(std::move(opts)), out_(out) {}

Executor::~Executor() = default;

void Executor::line(const std::string& text) {
  std::lock_guard lock(out_mu_);
  out_ << text << '\n';
  out_.flush();
}

void Executor::header(const std::string& kind, const std::string& name) {
  std::string h = fmt::format("{} [{}] ", kind, name);
  if (h.size() < 76)
    h += std::string(79 - h.size(), '*');
  else
    h += "***";
  line("\n" + h);
}

bool Executor::active(const std::string& host) const {
  auto& s = *hosts_.at(host);
  return !s.failed && !s.unreachable;
}

int Executor::run() {
  for (auto& pp : plan_.plays) {
    for (auto& h : pp.hosts) {
      if (!hosts_.count(h)) {
        hosts_[h] = std::make_unique<HostState>();
        order_.push_back(h);
        stats_[h];
      }
    }
  }
  for (auto& pp : plan_.plays) {
    if (end_run_) break;
    run_play(pp);
  }
  {
    std::lock_guard lock(out_mu_);
    out_ << "\nPLAY RECAP " << std::string(68, '*') << '\n';
    for (auto& h : order_) {
      const HostStats& s = stats_[h];
      out_ << fmt::format(
          "{} : ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}\n", h,
          s.ok, s.changed, s.unreachable, s.failed, s.skipped, s.rescued, s.ignored);
    }
    out_.flush();
  }
  bool any_failed = false, any_unreachable = false;
  for (auto& [h, s] : stats_) {
    any_failed |= s.failed > 0;
    any_unreachable |= s.unreachable > 0;
  }
  if (any_failed) return kExitHostFailed;
  if (any_unreachable) return kExitUnreachable;
  return kExitOk;
}

void Executor::run_play(PlayPlan& pp) {
  const Play& play = *pp.play;
  header("PLAY", play.name.empty() ? play.hosts : play.name);
  if (pp.hosts.empty()) {
    line("skipping: no hosts matched");
    return;
  }
  abort_play_ = false;
  for (auto& batch : pp.batches) {
    std::vector<std::string> hosts;
    for (auto& h : batch)
      if (active(h)) hosts.push_back(h);
    if (hosts.empty()) continue;
    run_list(play.tasks, hosts, pp, {});
    if (!abort_play_) run_handlers(hosts, pp);
    bool all_failed = std::none_of(hosts.begin(), hosts.end(), [&](auto& h) { return active(h); });
    if (all_failed || abort_play_) {
      line("\nNO MORE HOSTS LEFT " + std::string(60, '*'));
      end_run_ = true;
      return;
    }
  }
}

void Executor::run_list(const std::vector<Task>& tasks, const std::vector<std::string>& hosts,
                        PlayPlan& pp, const std::vector<std::string>& when) {
  for (const Task& t : tasks) {
    if (abort_play_) return;
    if (std::none_of(hosts.begin(), hosts.end(), [&](auto& h) { return active(h); })) return;
    if (t.is_block())
      run_block(t, hosts, pp, when);
    else
      run_task(t, hosts, pp, when);
  }
}

void Executor::run_block(const Task& t, const std::vector<std::string>& hosts, PlayPlan& pp,
                         const std::vector<std::string>& when) {
  std::vector<std::string> conds = when;
  conds.insert(conds.end(), t.when.begin(), t.when.end());
  std::vector<std::string> entered;
  for (auto& h : hosts)
    if (active(h)) entered.push_back(h);
  run_list(t.block, entered, pp, conds);
  std::vector<std::string> block_failed;
  for (auto& h : entered)
    if (hosts_[h]->failed) block_failed.push_back(h);
  if (!t.rescue.empty() && !block_failed.empty() && !abort_play_) {
    for (auto& h : block_failed) {
      hosts_[h]->failed = false;
      stats_[h].failed -= 1;
      stats_[h].rescued += 1;
    }
    run_list(t.rescue, block_failed, pp, conds);
  }
  if (!t.always.empty()) {
    std::vector<std::string> failed_now;
    for (auto& h : entered)
      if (hosts_[h]->failed) failed_now.push_back(h), hosts_[h]->failed = false;
    bool aborted = abort_play_;
    abort_play_ = false;
    run_list(t.always, entered, pp, conds);
    abort_play_ = abort_play_ || aborted;
    for (auto& h : failed_now) hosts_[h]->failed = true;
  }
}

void Executor::run_handlers(const std::vector<std::string>& hosts, PlayPlan& pp) {
  for (const Task& h : pp.play->handlers) {
    if (abort_play_) return;
    std::vector<std::string> targets;
    for (auto& host : hosts) {
      if (!active(host)) continue;
      if (hosts_[host]->notified.erase(h.name)) targets.push_back(host);
    }
    if (!targets.empty()) run_task(h, targets, pp, {}, "RUNNING HANDLER");
  }
}

void Executor::run_task(const Task& t, const std::vector<std::string>& hosts, PlayPlan& pp,
                        const std::vector<std::string>& when, const char* kind) {
  if (t.module == "meta") {  // flush_handlers, the only meta task the parser accepts
    run_handlers(hosts, pp);
    return;
  }
  std::vector<std::string> targets;
  for (auto& h : hosts)
    if (active(h)) targets.push_back(h);
  if (targets.empty()) return;
  if (t.run_once) targets.resize(1);
  header(kind, t.display_name());
  std::vector<TaskResult> results(targets.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < targets.size();)
      results[i] = run_on_host(t, targets[i], pp, when);
  };
  size_t n = std::min<size_t>(std::max(1, opts_.forks), targets.size());
  if (n == 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < n; ++i) threads.emplace_back(worker);
    for (auto& th : threads) th.join();
  }
  bool any_failed = false;
  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string& h = targets[i];
    TaskResult& r = results[i];
    HostState& s = *hosts_[h];
    HostStats& st = stats_[h];
    bool ignored = false;
    if (r.unreachable) {
      s.unreachable = true;
      st.unreachable += 1;
    } else if (r.skipped) {
      st.skipped += 1;
    } else if (r.failed) {
      Json scope = pp.vars.at(h).merged();
      overlay(scope, s.facts);
      try {
        ignored = truthy(render_value(t.ignore_errors, scope, Source{t.file, t.line}));
      } catch (const TemplateError&) {
      }
      if (ignored) {
        st.ignored += 1;
      } else {
        s.failed = true;
        st.failed += 1;
        any_failed = true;
      }
    } else {
      st.ok += 1;
      if (r.changed) {
        st.changed += 1;
        s.notified.insert(t.notify.begin(), t.notify.end());
      }
    }
    report(t, h, r, ignored);
  }
  if (t.run_once && !t.register_as.empty()) {
    Json reg = hosts_[targets[0]]->facts[t.register_as];
    for (auto& h : hosts)
      if (h != targets[0] && active(h)) hosts_[h]->facts[t.register_as] = reg;
  }
  if (any_failed && pp.play->any_errors_fatal) abort_play_ = true;
}

void Executor::report(const Task&, const std::string& host, const TaskResult& r, bool ignored) {
  std::string text;
  if (r.unreachable) {
    text = fmt::format("unreachable: [{}] => {}", host, one_line(r.msg));
  } else if (r.skipped) {
    text = fmt::format("skipping: [{}]", host);
  } else if (r.failed) {
    text = fmt::format("failed: [{}] => {}", host,
                       one_line(r.msg.empty() ? r.registered().dump() : r.msg));
    if (opts_.verbosity > 0) text += "\n" + r.registered().dump(2);
    if (ignored) text += "\n...ignoring";
  } else {
    text = fmt::format("{}: [{}]", r.changed ? "changed" : "ok", host);
    if (r.data.contains("__debug")) {
      text += " => " + r.data["__debug"].get<std::string>();
    } else if (opts_.verbosity > 0) {
      text += " => " + r.registered().dump();
    }
  }
  line(text);
}

TaskResult Executor::run_on_host(const Task& t, const std::string& host, PlayPlan& pp,
                                 const std::vector<std::string>& when) {
  HostState& state = *hosts_.at(host);
  VarLayers layers = pp.vars.at(host);
  overlay(layers.play_vars, t.vars);
  layers.facts = state.facts;
  Json scope = layers.merged();
  Source src{t.file, t.line};
  TaskResult result;
  try {
    std::vector<std::string> conds = when;
    conds.insert(conds.end(), t.when.begin(), t.when.end());
    for (auto& c : conds) {
      if (!evaluate_condition(c, scope, src)) {
        result.skipped = true;
        result.msg = fmt::format("Conditional result was False: {}", c);
        if (!t.register_as.empty()) state.facts[t.register_as] = result.registered();
        return result;
      }
    }
    Json args;
    if (t.module == "assert") {
      args = t.args;
      for (auto& [k, v] : args.items())
        if (k != "that") v = render_value(v, scope, src);
    } else if (t.module == "debug" && t.args.contains("var")) {
      args = t.args;
    } else {
      args = render_value(t.args, scope, src);
    }
    long long retries = 0;
    double delay = 5;
    if (!t.until.empty()) {
      retries = t.retries.is_null() ? 3 : as_int(render_value(t.retries, scope, src), 3);
      if (!t.delay.is_null()) {
        Json d = render_value(t.delay, scope, src);
        delay = d.is_number() ? d.get<double>() : static_cast<double>(as_int(d, 5));
      }
    }
    bool local = t.delegate_to == "localhost" || t.delegate_to == "127.0.0.1";
    std::unique_ptr<Transport> local_transport;
    ModuleContext ctx{host,
                      scope,
                      pp.vars.at(host).magic.at("playbook_dir").get<std::string>(),
                      src,
                      [&]() -> Transport& {
                        if (local) {
                          if (!local_transport) {
                            ConnectParams p;
                            p.local = true;
                            local_transport = connect(p);
                          }
                          return *local_transport;
                        }
                        if (!state.transport)
                          state.transport = connect(connect_params(host, scope, opts_.known_hosts,
                                                                   opts_.connect_timeout_seconds));
                        return *state.transport;
                      },
                      state.facts};
    for (long long attempt = 1;; ++attempt) {
      try {
        result = run_module(t.module, args, ctx);
      } catch (const UnreachableError& e) {
        result = TaskResult{};
        result.unreachable = true;
        result.msg = e.what();
        state.transport.reset();
        return result;
      }
      if (t.until.empty()) break;
      Json reg = result.registered();
      reg["attempts"] = attempt;
      Json with = scope;
      overlay(with, state.facts);
      if (!t.register_as.empty()) with[t.register_as] = reg;
      bool done = false;
      try {
        done = evaluate_condition(t.until, with, src);
      } catch (const TemplateError& e) {
        result.failed = true;
        result.msg = e.what();
        break;
      }
      result.data["attempts"] = attempt;
      if (done) break;
      if (attempt > retries) {
        result.failed = true;
        if (result.msg.empty())
          result.msg = fmt::format("retries exhausted ({} attempts)", attempt);
        break;
      }
      line(fmt::format("FAILED - RETRYING: [{}]: {} ({} retries left).", host, t.display_name(),
                       retries + 1 - attempt));
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    }
    if (t.module == "debug" && !result.failed) {
      if (t.args.contains("var")) {
        std::string var = to_text(t.args["var"]);
        result.data["__debug"] = fmt::format("{}: {}", var, result.data[var].dump());
      } else {
        result.data["__debug"] = result.msg;
      }
    }
    Json reg = result.registered();
    reg.erase("__debug");
    if (!t.register_as.empty()) state.facts[t.register_as] = reg;
    if (t.changed_when || t.failed_when) {
      Json with = scope;
      overlay(with, state.facts);
      if (!t.register_as.empty()) with[t.register_as] = reg;
      if (t.changed_when) result.changed = evaluate_condition(*t.changed_when, with, src);
      if (t.failed_when) {
        result.failed = evaluate_condition(*t.failed_when, with, src);
        if (!result.failed)
          result.msg.clear();
        else if (result.msg.empty())
          result.msg = fmt::format("failed_when: {}", *t.failed_when);
      }
      if (!t.register_as.empty()) {
        state.facts[t.register_as]["changed"] = result.changed;
        state.facts[t.register_as]["failed"] = result.failed;
      }
    }
  } catch (const TemplateError& e) {
    result = TaskResult{};
    result.failed = true;
    result.msg = e.what();
  } catch (const std::exception& e) {
    result = TaskResult{};
    result.failed = true;
    result.msg = fmt::format("{}:{}: {}", t.file, t.line, e.what());
  }
  return result;
}

}  // namespace zdm::deploy
