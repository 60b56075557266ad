#include "engine/executor.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <thread>

#include <fmt/format.h>

#include "engine/interrupt.h"
#include "template.h"

namespace zdm::deploy {

struct Executor::HostState {
  Transport* transport = nullptr;  // the run's connection to the host, once a task needed it
  Json facts = Json::object();
  std::set<std::string> notified;  // handler names waiting for the next flush
  bool failed = false;
  bool unreachable = false;
  bool touched = false;  // a task ran (or was skipped) on it
  std::string last_failure, last_failed_task;
};

namespace {

long long as_int(const Json& j, long long dflt) {
  if (j.is_number()) return j.get<long long>();
  if (j.is_string()) {
    try {
      return std::stoll(j.get<std::string>());
    } catch (const std::exception&) {  // not a number: the default stands, as Ansible's int filter
    }
  }
  return dflt;
}

const char* kNoLog =
    "(the output has been hidden due to the fact that 'no_log: true' was specified for this "
    "result)";

std::mutex g_ssh_config_mu;

// ~/.ssh/config (or --ssh-config) parsed once per run.
const SshConfig& ssh_config_for(const SshSettings& s) {
  static std::map<std::string, SshConfig> cache;
  std::lock_guard lock(g_ssh_config_mu);
  std::string path = s.ssh_config_path.empty() ? s.home + "/.ssh/config" : s.ssh_config_path;
  auto it = cache.find(path);
  if (it == cache.end())
    it = cache.emplace(path, path == "none" ? SshConfig{} : load_ssh_config(path, s.home)).first;
  return it->second;
}

}  // namespace

ConnectParams connect_params(const std::string& name, const Json& scope, const SshSettings& ssh,
                             std::vector<std::string>* warnings) {
  Source src{"inventory host '" + name + "'", 1};
  auto get = [&](const char* key) -> std::optional<std::string> {
    if (!scope.contains(key) || scope[key].is_null()) return std::nullopt;
    return to_text(render_value(scope[key], scope, src));
  };
  HostSshVars v;
  v.name = name;
  v.host = get("ansible_host");
  if (auto port = get("ansible_port")) {
    long long n = as_int(*port, -1);
    if (n < 1 || n > 65535)
      throw SshConfigError(fmt::format("{}: ansible_port {} is not a port number", name, *port));
    v.port = static_cast<int>(n);
  }
  v.user = get("ansible_user");
  if (!v.user) v.user = get("ansible_ssh_user");
  v.key_file = get("ansible_ssh_private_key_file");
  if (!v.key_file) v.key_file = get("ansible_private_key_file");
  v.connection = get("ansible_connection");
  v.common_args = get("ansible_ssh_common_args");
  v.extra_args = get("ansible_ssh_extra_args");
  SshSettings s = ssh;
  if (s.home.empty()) s.home = std::getenv("HOME") ? std::getenv("HOME") : "/";
  if (s.local_user.empty()) s.local_user = local_account().user;
  return resolve_connect_params(v, s, ssh_config_for(s), warnings);
}

Executor::Executor(const Playbook& pb, Plan& plan, ExecOptions opts, Reporter& reporter)
    : pb_(pb), plan_(plan), opts_(std::move(opts)), reporter_(reporter) {
  if (!opts_.connections) opts_.connections = std::make_shared<HostConnections>();
}

namespace {
std::unique_ptr<Reporter> text_reporter(std::ostream& out, const ExecOptions& opts) {
  return std::make_unique<TextReporter>(
      out, TextReporter::Options{opts.verbosity, opts.diff, opts.check, opts.redactor});
}
}  // namespace

Executor::Executor(const Playbook& pb, Plan& plan, ExecOptions opts, std::ostream& out)
    : pb_(pb),
      plan_(plan),
      opts_(std::move(opts)),
      own_reporter_(text_reporter(out, opts_)),
      reporter_(*own_reporter_) {
  if (!opts_.connections) opts_.connections = std::make_shared<HostConnections>();
}

Executor::~Executor() = default;

bool Executor::active(const std::string& host) const {
  auto& s = *hosts_.at(host);
  return !s.failed && !s.unreachable;
}

Json Executor::facts(const std::string& host) const {
  auto it = hosts_.find(host);
  return it == hosts_.end() ? Json::object() : it->second->facts;
}

std::vector<std::pair<std::string, HostOutcome>> Executor::outcomes() const {
  std::vector<std::pair<std::string, HostOutcome>> out;
  for (auto& h : order_) {
    const HostState& s = *hosts_.at(h);
    const HostStats& st = stats_.at(h);
    HostOutcome o;
    if (s.unreachable)
      o.status = "unreachable";
    else if (s.failed)
      o.status = "failed";
    else if (!s.touched)
      o.status = interrupted_ ? "interrupted" : "untouched";
    else if (st.changed > 0)
      o.status = "changed";
    else
      o.status = "ok";
    o.message = s.last_failure;
    o.task = s.last_failed_task;
    out.emplace_back(h, o);
  }
  return out;
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
    if (interrupt_count() > 0) {
      interrupted_ = true;
      reporter_.interrupted("stopping before play '" +
                            (pp.play->name.empty() ? pp.play->hosts : pp.play->name) + "'");
      break;
    }
    run_play(pp);
  }
  std::vector<std::pair<std::string, HostStats>> stats;
  for (auto& h : order_) stats.emplace_back(h, stats_[h]);
  reporter_.recap(stats, outcomes());
  bool any_failed = false, any_unreachable = false;
  for (auto& [h, s] : stats_) {
    any_failed |= s.failed > 0;
    any_unreachable |= s.unreachable > 0;
  }
  if (any_failed) return kExitHostFailed;
  if (any_unreachable) return kExitUnreachable;
  if (interrupted_) return kExitInterrupted;
  return kExitOk;
}

void Executor::run_play(PlayPlan& pp) {
  const Play& play = *pp.play;
  reporter_.play_start(play.name.empty() ? play.hosts : play.name);
  if (pp.hosts.empty()) {
    reporter_.play_no_hosts();
    return;
  }
  abort_play_ = false;
  for (size_t b = 0; b < pp.batches.size(); ++b) {
    if (interrupt_count() > 0) {
      interrupted_ = true;
      std::string rest;
      for (size_t k = b; k < pp.batches.size(); ++k)
        for (auto& h : pp.batches[k]) rest += (rest.empty() ? "" : ", ") + h;
      reporter_.interrupted("the hosts in progress are done; not touched: " + rest);
      end_run_ = true;
      return;
    }
    std::vector<std::string> hosts;
    for (auto& h : pp.batches[b])
      if (active(h)) hosts.push_back(h);
    if (hosts.empty()) continue;
    run_list(play.tasks, hosts, pp, {});
    if (!abort_play_) run_handlers(hosts, pp);
    bool all_failed = std::none_of(hosts.begin(), hosts.end(), [&](auto& h) { return active(h); });
    if (all_failed || abort_play_) {
      reporter_.no_more_hosts();
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
  if (!t.rescue.empty()) ++rescuable_;
  run_list(t.block, entered, pp, conds);
  if (!t.rescue.empty()) --rescuable_;
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

Json Executor::live_hostvars(const PlayPlan& pp) const {
  Json hv = Json::object();
  for (auto& p : plan_.plays)
    for (auto& [h, layers] : p.vars)
      if (!hv.contains(h)) hv[h] = layers.magic.at("hostvars").value(h, Json::object());
  for (auto& [h, layers] : pp.vars) {
    Json v = layers.inventory;
    overlay(v, layers.vars_files);
    overlay(v, layers.play_vars);
    overlay(v, layers.extra);
    hv[h] = v;
  }
  for (auto& [h, s] : hosts_)
    for (auto& [k, v] : s->facts.items()) hv[h][k] = v;
  return hv;
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
  reporter_.task_start(kind, t.display_name());
  Json hostvars = live_hostvars(pp);
  std::vector<TaskResult> results(targets.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < targets.size();)
      results[i] = run_on_host(t, targets[i], pp, when, hostvars);
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
    s.touched = true;
    bool ignored = false;
    if (r.unreachable) {
      s.unreachable = true;
      st.unreachable += 1;
      s.last_failure = r.msg;
      s.last_failed_task = fmt::format("\"{}\" ({}:{})", t.display_name(), t.file, t.line);
    } else if (r.skipped) {
      st.skipped += 1;
    } else if (r.failed) {
      Json scope = pp.vars.at(h).merged();
      overlay(scope, s.facts);
      try {
        ignored = truthy(render_value(t.ignore_errors, scope, Source{t.file, t.line}));
      } catch (const TemplateError&) {
        // ignore_errors that does not render does not ignore: the failure stands.
      }
      if (ignored) {
        st.ignored += 1;
      } else {
        s.failed = true;
        st.failed += 1;
        any_failed = true;
        s.last_failure = t.no_log ? kNoLog : r.msg;
        s.last_failed_task = fmt::format("\"{}\" ({}:{})", t.display_name(), t.file, t.line);
      }
    } else {
      st.ok += 1;
      if (r.changed) {
        st.changed += 1;
        s.notified.insert(t.notify.begin(), t.notify.end());
      }
    }
    reporter_.host_result(t, h, r, ignored);
  }
  if (t.run_once) {
    // What the one host learned holds for every host of the batch (Ansible's run_once).
    const Json& first = hosts_[targets[0]]->facts;
    for (auto& h : hosts) {
      if (h == targets[0] || !active(h)) continue;
      if (!t.register_as.empty() && first.contains(t.register_as))
        hosts_[h]->facts[t.register_as] = first[t.register_as];
      if (t.module == "set_fact" && results[0].data.contains("ansible_facts"))
        for (auto& [k, v] : results[0].data["ansible_facts"].items())
          if (k != "cacheable" && first.contains(k)) hosts_[h]->facts[k] = first[k];
    }
  }
  // any_errors_fatal: a failure ends the play, except inside a block with a rescue, which
  // handles it (Ansible's rule); a failure in the rescue itself ends it.
  if (any_failed && pp.play->any_errors_fatal && rescuable_ == 0) abort_play_ = true;
}

TaskResult Executor::run_on_host(const Task& t, const std::string& host, PlayPlan& pp,
                                 const std::vector<std::string>& when, const Json& hostvars) {
  HostState& state = *hosts_.at(host);
  VarLayers layers = pp.vars.at(host);
  overlay(layers.play_vars, t.vars);
  layers.facts = state.facts;
  layers.magic["hostvars"] = hostvars;
  bool check = t.check_mode.value_or(opts_.check);
  layers.magic["ansible_check_mode"] = check;
  Json scope = layers.merged();
  Source src{t.file, t.line};
  std::vector<std::string> conds = when;
  TaskResult result;
  try {
    if (t.loop.is_null()) {
      conds.insert(conds.end(), t.when.begin(), t.when.end());
      result = run_item(t, host, pp, conds, scope, check);
      if (!t.register_as.empty() && !result.unreachable) {
        Json reg = result.registered();
        reg.erase("__debug");
        state.facts[t.register_as] = reg;
      }
      return result;
    }
    // A loop: the enclosing blocks' conditions once, the task's own per item.
    for (auto& c : conds) {
      if (!evaluate_condition(c, scope, src)) {
        result.skipped = true;
        result.msg = fmt::format("Conditional result was False: {}", c);
        if (!t.register_as.empty()) state.facts[t.register_as] = result.registered();
        return result;
      }
    }
    Json items = render_value(t.loop, scope, src);
    if (!items.is_array())
      throw TemplateError(
          fmt::format("{}:{}: loop needs a list, got {}", t.file, t.line, items.dump()));
    Json results = Json::array();
    bool all_skipped = true;
    for (const auto& item : items) {
      Json item_scope = scope;
      item_scope["item"] = item;
      TaskResult r = run_item(t, host, pp, t.when, item_scope, check);
      if (r.unreachable) return r;
      Json reg = r.registered();
      reg.erase("__debug");
      reg["item"] = item;
      results.push_back(reg);
      all_skipped &= r.skipped;
      result.changed |= r.changed;
      if (!r.diff.empty()) result.diff += r.diff;
      if (r.failed && !result.failed) {
        result.failed = true;
        result.msg = fmt::format("item {}: {}", to_text(item), r.msg);
      }
    }
    result.skipped = all_skipped && !items.empty();
    if (items.empty()) result.skipped = true;
    result.data["results"] = results;
    if (!t.register_as.empty()) state.facts[t.register_as] = result.registered();
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

namespace {

// The first of `conds` that is false, as the skip it causes; nullopt when all hold.
std::optional<TaskResult> skipped_by(const std::vector<std::string>& conds, const Json& scope,
                                     const Source& src) {
  for (auto& c : conds) {
    if (!evaluate_condition(c, scope, src)) {
      TaskResult result;
      result.skipped = true;
      result.msg = fmt::format("Conditional result was False: {}", c);
      return result;
    }
  }
  return std::nullopt;
}

// The module's arguments rendered in `scope`: assert's `that` and debug's `var` are expressions
// the module evaluates itself.
Json rendered_args(const Task& t, const Json& scope, const Source& src) {
  if (t.module == "assert") {
    Json args = t.args;
    for (auto& [k, v] : args.items())
      if (k != "that") v = render_value(v, scope, src);
    return args;
  }
  if (t.module == "debug" && t.args.contains("var")) return t.args;
  return render_value(t.args, scope, src);
}

// until:'s retries and delay (seconds); no retries without until.
struct RetryPolicy {
  long long retries = 0;
  double delay = 5;
};

RetryPolicy retry_policy(const Task& t, const Json& scope, const Source& src) {
  RetryPolicy p;
  if (t.until.empty()) return p;
  p.retries = t.retries.is_null() ? 3 : as_int(render_value(t.retries, scope, src), 3);
  if (!t.delay.is_null()) {
    Json d = render_value(t.delay, scope, src);
    p.delay = d.is_number() ? d.get<double>() : static_cast<double>(as_int(d, 5));
  }
  return p;
}

// The bound on each remote command: the task's timeout:, else the run's.
int task_timeout(const Task& t, const Json& scope, const Source& src, int dflt) {
  if (t.timeout.is_null()) return dflt;
  return static_cast<int>(as_int(render_value(t.timeout, scope, src), dflt));
}

// The scope until:, changed_when: and failed_when: see: the host's variables and facts, and the
// result registered under the task's register: name.
Json condition_scope(const Task& t, const Json& scope, const Json& facts, Json reg) {
  Json with = scope;
  overlay(with, facts);
  if (!t.register_as.empty()) with[t.register_as] = std::move(reg);
  return with;
}

// debug's output line (`var: value` or the message), shown by the reporter.
void set_debug_text(const Task& t, TaskResult& result) {
  if (t.module != "debug" || result.failed) return;
  if (t.args.contains("var")) {
    std::string var = to_text(t.args["var"]);
    result.data["__debug"] = fmt::format("{}: {}", var, result.data[var].dump());
  } else {
    result.data["__debug"] = result.msg;
  }
}

// changed_when: and failed_when: decide over the module's own verdict.
void apply_result_conditions(const Task& t, const Json& scope, const Json& facts, const Source& src,
                             TaskResult& result) {
  if (!t.changed_when && !t.failed_when) return;
  Json reg = result.registered();
  reg.erase("__debug");
  Json with = condition_scope(t, scope, facts, reg);
  if (t.changed_when) result.changed = evaluate_condition(*t.changed_when, with, src);
  if (t.failed_when) {
    result.failed = evaluate_condition(*t.failed_when, with, src);
    if (!result.failed)
      result.msg.clear();
    else if (result.msg.empty())
      result.msg = fmt::format("failed_when: {}", *t.failed_when);
  }
}

TaskResult failed_result(std::string msg) {
  TaskResult result;
  result.failed = true;
  result.msg = std::move(msg);
  return result;
}

}  // namespace

TaskResult Executor::run_item(const Task& t, const std::string& host, PlayPlan& pp,
                              const std::vector<std::string>& conds, Json& scope, bool check) {
  try {
    return run_item_unguarded(t, host, pp, conds, scope, check);
  } catch (const TemplateError& e) {
    return failed_result(e.what());
  } catch (const std::exception& e) {
    return failed_result(fmt::format("{}:{}: {}", t.file, t.line, e.what()));
  }
}

TaskResult Executor::run_item_unguarded(const Task& t, const std::string& host, PlayPlan& pp,
                                        const std::vector<std::string>& conds, const Json& scope,
                                        bool check) {
  HostState& state = *hosts_.at(host);
  Source src{t.file, t.line};
  if (auto skip = skipped_by(conds, scope, src)) return *skip;
  if (check && (t.module == "command" || t.module == "shell")) {
    TaskResult result;
    result.skipped = true;
    result.msg = "Command would have run if not in check mode";
    return result;
  }
  Json args = rendered_args(t, scope, src);
  RetryPolicy retry = retry_policy(t, scope, src);
  int timeout = task_timeout(t, scope, src, opts_.task_timeout_seconds);
  bool local = t.delegate_to == "localhost" || t.delegate_to == "127.0.0.1";
  std::unique_ptr<Transport> local_transport;
  ModuleContext ctx{host,
                    scope,
                    pp.vars.at(host).magic.at("playbook_dir").get<std::string>(),
                    src,
                    transport_for(host, scope, local, local_transport),
                    state.facts,
                    check,
                    opts_.diff,
                    timeout,
                    opts_.redactor.get()};
  TaskResult result = run_attempts(t, host, args, ctx, retry.retries, retry.delay);
  if (result.unreachable) return result;
  set_debug_text(t, result);
  apply_result_conditions(t, scope, state.facts, src, result);
  return result;
}

std::function<Transport&()> Executor::transport_for(const std::string& host, const Json& scope,
                                                    bool local,
                                                    std::unique_ptr<Transport>& local_transport) {
  HostState& state = *hosts_.at(host);
  return [this, &host, &scope, local, &local_transport, &state]() -> Transport& {
    if (local) {
      if (!local_transport) {
        ConnectParams p;
        p.local = true;
        local_transport = opts_.connections->connector().connect(p);
      }
      return *local_transport;
    }
    if (!state.transport) {
      std::vector<std::string> warnings;
      ConnectParams p;
      try {
        p = connect_params(host, scope, opts_.ssh, &warnings);
      } catch (const SshConfigError& e) {
        throw UnreachableError(e.what());
      }
      for (auto& w : warnings) reporter_.warning(w);
      state.transport = &opts_.connections->get(host, p);
    }
    return *state.transport;
  };
}

TaskResult Executor::run_attempts(const Task& t, const std::string& host, const Json& args,
                                  ModuleContext& ctx, long long retries, double delay) {
  HostState& state = *hosts_.at(host);
  Source src{t.file, t.line};
  TaskResult result;
  for (long long attempt = 1;; ++attempt) {
    try {
      result = run_module(t.module, args, ctx);
    } catch (const UnreachableError& e) {
      if (state.transport) opts_.connections->drop(host);
      state.transport = nullptr;
      // A task that polls (until:) survives a lost connection: the next attempt reconnects.
      if (!t.until.empty() && attempt <= retries) {
        reporter_.retrying(t, host, retries + 1 - attempt, e.what());
        std::this_thread::sleep_for(std::chrono::duration<double>(delay));
        continue;
      }
      result = TaskResult{};
      result.unreachable = true;
      result.msg = e.what();
      return result;
    }
    if (t.until.empty()) break;
    Json reg = result.registered();
    reg["attempts"] = attempt;
    bool done = false;
    try {
      done = evaluate_condition(t.until, condition_scope(t, ctx.scope, state.facts, reg), src);
    } catch (const TemplateError& e) {
      result.failed = true;
      result.msg = e.what();
      break;
    }
    result.data["attempts"] = attempt;
    if (done) break;
    if (attempt > retries) {
      result.failed = true;
      if (result.msg.empty()) result.msg = fmt::format("retries exhausted ({} attempts)", attempt);
      break;
    }
    reporter_.retrying(t, host, retries + 1 - attempt, "");
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
  }
  return result;
}

}  // namespace zdm::deploy
