#include "engine/reporter.h"

#include <algorithm>
#include <ostream>

#include <fmt/format.h>

namespace zdm::deploy {
namespace {

const char* kNoLog =
    "(the output has been hidden due to the fact that 'no_log: true' was specified for this "
    "result)";

}  // namespace

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  for (size_t pos = 0; (pos = s.find('\n', pos)) != std::string::npos;) s.replace(pos, 1, " | ");
  return s;
}

TextReporter::TextReporter(std::ostream& out, Options opts) : out_(out), opts_(std::move(opts)) {}

void TextReporter::line(const std::string& text) {
  std::string shown = opts_.redactor ? opts_.redactor->apply(text) : text;
  std::lock_guard lock(mu_);
  out_ << shown << '\n';
  out_.flush();
}

void TextReporter::header(const std::string& kind, const std::string& name) {
  std::string h = fmt::format("{} [{}] ", kind, name);
  if (h.size() < 76)
    h += std::string(79 - h.size(), '*');
  else
    h += "***";
  line("\n" + h);
}

void TextReporter::play_start(const std::string& name) {
  header("PLAY", name);
}

void TextReporter::play_no_hosts() {
  line("skipping: no hosts matched");
}

void TextReporter::task_start(const std::string& kind, const std::string& name) {
  header(kind, name);
}

void TextReporter::host_result(const Task& t, const std::string& host, const TaskResult& r,
                               bool ignored) {
  std::string text;
  if (r.unreachable) {
    text = fmt::format("unreachable: [{}] => {}", host, one_line(r.msg));
  } else if (r.skipped) {
    text = fmt::format("skipping: [{}]", host);
    if (opts_.verbosity > 0 && !r.msg.empty()) text += " => " + one_line(r.msg);
  } else if (r.failed) {
    if (t.no_log) {
      text = fmt::format("failed: [{}] => {}", host, kNoLog);
    } else {
      text = fmt::format("failed: [{}] => {}", host,
                         one_line(r.msg.empty() ? r.registered().dump() : r.msg));
      if (opts_.verbosity > 0) text += "\n" + r.registered().dump(2);
    }
    if (ignored) text += "\n...ignoring";
  } else {
    text = fmt::format("{}: [{}]", r.changed ? "changed" : "ok", host);
    if (t.no_log) {
      if (opts_.verbosity > 0) text += std::string(" => ") + kNoLog;
    } else if (r.data.contains("__debug")) {
      text += " => " + r.data["__debug"].get<std::string>();
    } else if (opts_.verbosity > 0) {
      text += " => " + r.registered().dump();
    }
  }
  if (!t.no_log && !r.diff.empty() && (opts_.diff || opts_.check || t.check_mode.value_or(false))) {
    std::string d = r.diff;
    while (!d.empty() && d.back() == '\n') d.pop_back();
    text += "\n" + d;
  }
  line(text);
}

void TextReporter::retrying(const Task& t, const std::string& host, long long retries_left,
                            const std::string& lost) {
  if (lost.empty())
    line(fmt::format("FAILED - RETRYING: [{}]: {} ({} retries left).", host, t.display_name(),
                     retries_left));
  else
    line(fmt::format("FAILED - RETRYING: [{}]: {} (connection lost: {}; {} retries left).", host,
                     t.display_name(), one_line(lost), retries_left));
}

void TextReporter::warning(const std::string& text) {
  std::lock_guard lock(mu_);
  if (std::find(warned_.begin(), warned_.end(), text) != warned_.end()) return;
  warned_.push_back(text);
  out_ << "[WARNING]: " << text << '\n';
}

void TextReporter::interrupted(const std::string& text) {
  line("\n[interrupted] " + text);
}

void TextReporter::no_more_hosts() {
  line("\nNO MORE HOSTS LEFT " + std::string(60, '*'));
}

void TextReporter::recap(const std::vector<std::pair<std::string, HostStats>>& stats,
                         const std::vector<std::pair<std::string, HostOutcome>>& outcomes) {
  std::string recap = "\nPLAY RECAP " + std::string(68, '*') + '\n';
  for (auto& [h, s] : stats)
    recap += fmt::format(
        "{} : ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}\n", h,
        s.ok, s.changed, s.unreachable, s.failed, s.skipped, s.rescued, s.ignored);
  std::string attention;
  for (auto& [h, o] : outcomes) {
    if (o.status == "failed" || o.status == "unreachable")
      attention += fmt::format("{}: {}{}: {}\n", h, o.status, o.task.empty() ? "" : " at " + o.task,
                               one_line(o.message));
    else if (o.status == "interrupted")
      attention += fmt::format("{}: not touched (interrupted before its turn)\n", h);
  }
  if (!attention.empty())
    recap += "\nHOSTS NEEDING ATTENTION " + std::string(55, '*') + '\n' + attention;
  while (!recap.empty() && recap.back() == '\n') recap.pop_back();
  line(recap);
}

void JsonReporter::summary(const Json& summary) {
  std::lock_guard lock(mu_);
  out_ << summary.dump() << '\n';
}

}  // namespace zdm::deploy
