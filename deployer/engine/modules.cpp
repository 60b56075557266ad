#include "engine/modules.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "engine/interrupt.h"
#include "http.h"

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;

TaskResult failed(std::string msg, Json data = Json::object()) {
  TaskResult r;
  r.failed = true;
  r.msg = std::move(msg);
  r.data = std::move(data);
  return r;
}

std::string str_arg(const Json& args, const char* key, const std::string& dflt = {}) {
  if (!args.contains(key) || args[key].is_null()) return dflt;
  return to_text(args[key]);
}

double num_arg(const Json& args, const char* key, double dflt) {
  if (!args.contains(key) || args[key].is_null()) return dflt;
  const Json& v = args[key];
  if (v.is_number()) return v.get<double>();
  try {
    return std::stod(to_text(v));
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format("'{}' must be a number, got {}", key, v.dump()));
  }
}

bool bool_arg(const Json& args, const char* key, bool dflt) {
  if (!args.contains(key) || args[key].is_null()) return dflt;
  const Json& v = args[key];
  if (v.is_boolean()) return v.get<bool>();
  std::string s = to_text(v);
  return s == "yes" || s == "true" || s == "True" || s == "1" || s == "on";
}

std::string chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

Json lines(const std::string& s) {
  Json out = Json::array();
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::string read_local(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read local file '{}'", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Finds a controller-side file: absolute, else <playbook_dir>/<sub>/<name>, <playbook_dir>/<name>,
// then relative to the working directory.
std::string find_local(const std::string& name, const std::string& playbook_dir,
                       const std::string& sub) {
  if (fs::path(name).is_absolute()) return name;
  for (fs::path p :
       {fs::path(playbook_dir) / sub / name, fs::path(playbook_dir) / name, fs::path(name)})
    if (fs::exists(p)) return p.string();
  throw std::runtime_error(fmt::format("could not find '{}' in {}/{}, {} or the working directory",
                                       name, playbook_dir, sub, playbook_dir));
}

// Remote `file` state changes, as one shell script printing "changed" or "ok".
TaskResult file_module(const Json& args, ModuleContext& ctx) {
  std::string path = str_arg(args, "path", str_arg(args, "dest", str_arg(args, "name")));
  if (path.empty()) return failed("file: 'path' is required");
  std::string state = str_arg(args, "state", "file");
  int mode = parse_mode(args.value("mode", Json()));
  std::string p = shell_quote(path);
  // Every change goes through `run`, which a dry run (--check) turns into nothing.
  std::string script = ctx.check ? "run() { :; }; " : "run() { \"$@\"; }; ";
  std::string chmod = mode >= 0 ? fmt::format(
                                      "if [ \"$(stat -c %a {0} 2>/dev/null)\" != \"{1:o}\" ]; then "
                                      "run chmod {1:o} {0} && c=changed; fi; ",
                                      p, mode)
                                : "";
  if (state == "directory") {
    script += fmt::format(
        "c=ok; if [ ! -d {0} ]; then run mkdir -p {0} || exit 1; c=changed; fi; {1}echo $c", p,
        chmod);
  } else if (state == "link") {
    std::string src = str_arg(args, "src");
    if (src.empty()) return failed("file: state=link needs 'src'");
    std::string s = shell_quote(src);
    script += fmt::format(
        "c=ok; if [ \"$(readlink {0} 2>/dev/null)\" != {1} ]; then "
        "if [ -d {0} ] && [ ! -L {0} ]; then echo \"{0} is a directory\" >&2; exit 1; fi; "
        "run ln -sfn {1} {0} || exit 1; c=changed; fi; echo $c",
        p, s);
  } else if (state == "absent") {
    script += fmt::format(
        "if [ -e {0} ] || [ -L {0} ]; then run rm -rf {0} || exit 1; echo changed; else echo ok; "
        "fi",
        p);
  } else if (state == "touch") {
    script += fmt::format("run touch {0} || exit 1; {1}echo changed", p, chmod);
  } else if (state == "file") {
    script += fmt::format(
        "c=ok; if [ ! -e {0} ]; then echo \"file {0} does not exist\" >&2; exit 1; fi; {1}echo $c",
        p, chmod);
  } else {
    return failed(
        fmt::format("file: unknown state '{}' (directory, link, absent, touch, file)", state));
  }
  ExecResult r = ctx.transport().exec(script, ctx.timeout_seconds);
  Json data = {{"path", path}, {"state", state}};
  if (r.rc != 0) return failed(chomp(r.err.empty() ? r.out : r.err), data);
  TaskResult res;
  res.changed = chomp(r.out).ends_with("changed");
  res.data = data;
  return res;
}

bool is_text(std::string_view s) {
  return s.size() <= (1u << 20) && s.find('\0') == std::string_view::npos;
}

// The diff shown for a changed file (--diff, --check): text files only, secrets redacted.
std::string content_diff(const std::string& before, const std::string& after,
                         const std::string& dest, bool existed) {
  if (!is_text(before) || !is_text(after))
    return fmt::format("--- {0}\n+++ {0}\n@@ binary content changed ({1} -> {2} bytes) @@\n", dest,
                       before.size(), after.size());
  return unified_diff(redact_secret_lines(before), redact_secret_lines(after),
                      existed ? dest + " (on the host)" : "/dev/null", dest + " (new)");
}

// Uploads `content` to `dest` unless the remote sha256 (and mode) already match; checks the
// checksum of what arrived. `diff_from` (a remote path, default dest) is what --diff compares.
TaskResult put_content(const std::string& content, const std::string& dest, int mode,
                       ModuleContext& ctx, const std::string& diff_from = {}) {
  if (dest.empty()) return failed("'dest' is required");
  std::string sum = sha256_hex(content);
  std::string d = shell_quote(dest);
  ExecResult probe =
      ctx.transport().exec(fmt::format("if [ -d {0} ]; then echo isdir; elif [ -f {0} ]; then "
                                       "sha256sum < {0} | cut -c1-64; stat -c %a {0}; fi",
                                       d),
                           ctx.timeout_seconds);
  Json data = {{"dest", dest}, {"checksum", sum}, {"size", content.size()}};
  std::istringstream in(probe.out);
  std::string remote_sum, remote_mode;
  std::getline(in, remote_sum);
  std::getline(in, remote_mode);
  if (remote_sum == "isdir")
    return failed(fmt::format("destination {} is a directory", dest), data);
  TaskResult res;
  res.data = data;
  int want_mode = mode >= 0 ? mode : 0644;
  if (remote_sum == sum) {
    if (mode >= 0 && remote_mode != fmt::format("{:o}", mode)) {
      if (!ctx.check) {
        ExecResult c = ctx.transport().exec(fmt::format("chmod {:o} {}", mode, d));
        if (c.rc != 0) return failed(chomp(c.err), data);
      }
      res.changed = true;
      res.diff = fmt::format("mode of {}: {} -> {:o}\n", dest, remote_mode, mode);
    }
    return res;
  }
  if (ctx.diff || ctx.check) {
    std::string base = diff_from.empty() ? dest : diff_from;
    std::string before;
    bool existed = false;
    if (is_text(content)) {
      ExecResult cat = ctx.transport().exec(fmt::format("[ -f {0} ] && cat {0}", shell_quote(base)),
                                            ctx.timeout_seconds);
      existed = cat.rc == 0;
      before = existed ? cat.out : "";
    }
    res.diff = content_diff(before, content, base, existed);
  }
  if (ctx.check) {
    res.changed = true;
    return res;
  }
  try {
    ctx.transport().upload(content, dest, want_mode);
  } catch (const UnreachableError&) {
    throw;
  } catch (const std::exception& e) {
    return failed(e.what(), data);
  }
  ExecResult verify =
      ctx.transport().exec(fmt::format("sha256sum < {} | cut -c1-64", d), ctx.timeout_seconds);
  if (chomp(verify.out) != sum)
    return failed(
        fmt::format("checksum of {} after upload is {}, expected {}", dest, chomp(verify.out), sum),
        data);
  res.changed = true;
  return res;
}

// A local directory, as Ansible's copy does it: "dir/" copies what is inside into dest, "dir"
// copies the directory itself (dest/dir/...). Files are compared by checksum one by one.
TaskResult copy_tree(const std::string& dir, bool contents_only, const std::string& dest, int mode,
                     ModuleContext& ctx) {
  if (dest.empty()) return failed("'dest' is required");
  fs::path root = contents_only ? fs::path(dest) : fs::path(dest) / fs::path(dir).filename();
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), dir));
  std::sort(files.begin(), files.end());
  std::set<std::string> dirs = {root.string()};
  for (const auto& f : files) dirs.insert((root / f).parent_path().string());
  if (!ctx.check) {
    std::string mkdir = "mkdir -p";
    for (const auto& d : dirs) mkdir += " " + shell_quote(d);
    ExecResult m = ctx.transport().exec(mkdir, ctx.timeout_seconds);
    if (m.rc != 0) return failed(chomp(m.err));
  }
  TaskResult res;
  Json changed_files = Json::array();
  for (const auto& f : files) {
    TaskResult one =
        put_content(read_local((fs::path(dir) / f).string()), (root / f).string(), mode, ctx);
    if (one.failed) return one;
    if (one.changed) changed_files.push_back((root / f).string());
    res.diff += one.diff;
  }
  res.changed = !changed_files.empty();
  res.data = {{"dest", root.string()}, {"files", files.size()}, {"changed_files", changed_files}};
  return res;
}

TaskResult copy_module(const Json& args, ModuleContext& ctx) {
  std::string content;
  if (args.contains("content")) {
    const Json& c = args["content"];
    content = c.is_string() ? c.get<std::string>() : c.dump();
  } else if (args.contains("src")) {
    std::string src = str_arg(args, "src");
    try {
      std::string path = find_local(src, ctx.playbook_dir, "files");
      if (fs::is_directory(path))
        return copy_tree(path, src.ends_with("/"), str_arg(args, "dest"),
                         parse_mode(args.value("mode", Json())), ctx);
      content = read_local(path);
    } catch (const std::exception& e) {
      return failed(e.what());
    }
  } else {
    return failed("copy: 'src' or 'content' is required");
  }
  return put_content(content, str_arg(args, "dest"), parse_mode(args.value("mode", Json())), ctx,
                     str_arg(args, "diff_from"));
}

TaskResult template_module(const Json& args, ModuleContext& ctx) {
  std::string src = str_arg(args, "src");
  if (src.empty()) return failed("template: 'src' is required");
  std::string path;
  std::string text;
  try {
    path = find_local(src, ctx.playbook_dir, "templates");
    text = read_local(path);
  } catch (const std::exception& e) {
    return failed(e.what());
  }
  std::string shown = fs::path(path).lexically_relative(fs::current_path()).string();
  if (shown.empty() || shown.rfind("..", 0) == 0) shown = path;
  std::string rendered;
  try {
    rendered = render(text, ctx.scope, Source{shown, 1}, /*trim_blocks=*/true);
  } catch (const TemplateError& e) {
    return failed(e.what());
  }
  return put_content(rendered, str_arg(args, "dest"), parse_mode(args.value("mode", Json())), ctx,
                     str_arg(args, "diff_from"));
}

TaskResult command_module(const std::string& module, const Json& args, ModuleContext& ctx) {
  std::string cmd;
  if (args.contains("argv") && args["argv"].is_array()) {
    for (auto& a : args["argv"]) cmd += (cmd.empty() ? "" : " ") + shell_quote(to_text(a));
  } else {
    cmd = str_arg(args, "cmd", str_arg(args, "_raw_params"));
  }
  if (cmd.empty()) return failed(fmt::format("{}: no command given", module));
  std::string creates = str_arg(args, "creates"), removes = str_arg(args, "removes");
  if (!creates.empty() || !removes.empty()) {
    std::string check = !creates.empty() ? fmt::format("[ -e {} ]", shell_quote(creates))
                                         : fmt::format("[ ! -e {} ]", shell_quote(removes));
    if (ctx.transport().exec(check, ctx.timeout_seconds).rc == 0) {
      TaskResult r;
      r.msg = !creates.empty() ? fmt::format("skipped, since {} exists", creates)
                               : fmt::format("skipped, since {} does not exist", removes);
      r.data = {{"cmd", cmd},
                {"rc", 0},
                {"stdout", ""},
                {"stderr", ""},
                {"stdout_lines", Json::array()},
                {"stderr_lines", Json::array()}};
      return r;
    }
  }
  std::string full = "sh -c " + shell_quote(cmd);
  if (args.contains("chdir"))
    full = fmt::format("cd {} && {}", shell_quote(str_arg(args, "chdir")), full);
  if (args.contains("stdin"))
    full = fmt::format("printf %s {} | {}", shell_quote(str_arg(args, "stdin")), full);
  else
    full += " < /dev/null";
  ExecResult e = ctx.transport().exec(full, ctx.timeout_seconds);
  TaskResult r;
  r.changed = true;
  std::string out = chomp(e.out), err = chomp(e.err);
  r.data = {{"cmd", cmd},
            {"rc", e.rc},
            {"stdout", out},
            {"stderr", err},
            {"stdout_lines", lines(out)},
            {"stderr_lines", lines(err)}};
  if (e.rc != 0) {
    r.failed = true;
    r.msg = fmt::format("non-zero return code {}{}", e.rc, err.empty() ? "" : ": " + err);
  }
  return r;
}

TaskResult stat_module(const Json& args, ModuleContext& ctx) {
  std::string path = str_arg(args, "path");
  if (path.empty()) return failed("stat: 'path' is required");
  bool checksum = bool_arg(args, "get_checksum", true);
  std::string p = shell_quote(path);
  std::string script = fmt::format(
      "if [ -e {0} ] || [ -L {0} ]; then echo exists=1; "
      "[ -d {0} ] && echo isdir=1; [ -f {0} ] && echo isreg=1; "
      "[ -L {0} ] && echo \"lnk_target=$(readlink {0})\"; "
      "{1}"
      "echo \"mode=$(stat -L -c %a {0} 2>/dev/null)\"; echo \"size=$(stat -L -c %s {0} "
      "2>/dev/null)\"; "
      "else echo exists=0; fi",
      p,
      checksum ? fmt::format("[ -f {0} ] && echo \"checksum=$(sha256sum < {0} | cut -c1-64)\"; ", p)
               : "");
  ExecResult e = ctx.transport().exec(script, ctx.timeout_seconds);
  if (e.rc != 0) return failed(chomp(e.err));
  Json st = {{"exists", false}, {"path", path}};
  std::istringstream in(e.out);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "exists")
      st["exists"] = v == "1";
    else if (k == "isdir")
      st["isdir"] = true;
    else if (k == "isreg")
      st["isreg"] = true;
    else if (k == "lnk_target")
      st["islnk"] = true, st["lnk_target"] = v;
    else if (k == "checksum")
      st["checksum"] = v;
    else if (k == "mode")
      st["mode"] = v.size() < 4 ? std::string(4 - v.size(), '0') + v : v;
    else if (k == "size" && !v.empty())
      st["size"] = std::stoll(v);
  }
  if (st["exists"].get<bool>()) {
    for (const char* k : {"isdir", "isreg", "islnk"})
      if (!st.contains(k)) st[k] = false;
  }
  TaskResult r;
  r.data = {{"stat", st}};
  return r;
}

TaskResult uri_module(const Json& args, ModuleContext&) {
  std::string url = str_arg(args, "url");
  if (url.empty()) return failed("uri: 'url' is required");
  std::string method = str_arg(args, "method", "GET");
  if (method != "GET")
    return failed(fmt::format("uri: only method GET is supported, not {}", method));
  double timeout = num_arg(args, "timeout", 30);
  std::vector<int> codes;
  Json sc = args.value("status_code", Json(200));
  for (const Json& c : sc.is_array() ? sc : Json::array({sc})) {
    if (c.is_number_integer()) {
      codes.push_back(c.get<int>());
    } else {
      try {
        codes.push_back(std::stoi(to_text(c)));
      } catch (const std::exception&) {
        return failed(fmt::format("uri: bad status_code {}", c.dump()));
      }
    }
  }
  HttpResult h = http_get(url, timeout);
  TaskResult r;
  r.data = {{"url", url}, {"status", h.status}, {"content", h.body}};
  if (h.status > 0) {
    try {
      r.data["json"] = Json::parse(h.body);
    } catch (const Json::exception&) {
      // A body that is not JSON: the result has no "json" key and the status decides, as in
      // Ansible's uri module (ansible/ansible lib/ansible/modules/uri.py), which also ignores a
      // json.loads failure.
    }
  }
  std::string want;
  for (size_t i = 0; i < codes.size(); ++i) want += (i ? ", " : "") + std::to_string(codes[i]);
  if (std::find(codes.begin(), codes.end(), h.status) == codes.end()) {
    r.failed = true;
    r.msg = h.status < 0
                ? fmt::format("Status code was -1 and not [{}]: Request failed: {}", want, h.error)
                : fmt::format("Status code was {} and not [{}]: {}", h.status, want, url);
  } else {
    r.msg = fmt::format("OK ({} bytes)", h.body.size());
  }
  return r;
}

TaskResult wait_for_module(const Json& args, ModuleContext&) {
  std::string host = str_arg(args, "host", "127.0.0.1");
  int port = static_cast<int>(num_arg(args, "port", 0));
  double timeout = num_arg(args, "timeout", 300);
  double delay = num_arg(args, "delay", 0);
  double sleep = num_arg(args, "sleep", 0.5);
  std::string state = str_arg(args, "state", "started");
  if (port <= 0) return failed("wait_for: 'port' is required");
  if (state != "started" && state != "stopped")
    return failed(fmt::format("wait_for: unsupported state '{}' (started, stopped)", state));
  std::this_thread::sleep_for(std::chrono::duration<double>(delay));
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(timeout));
  while (true) {
    bool up = tcp_connectable(host, port, std::min(5.0, std::max(0.1, timeout)));
    if (up == (state == "started")) {
      TaskResult r;
      r.data = {{"host", host},
                {"port", port},
                {"state", state},
                {"elapsed",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
      return r;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return failed(str_arg(
          args, "msg", fmt::format("Timeout when waiting for {}:{} to be {}", host, port, state)));
    std::this_thread::sleep_for(std::chrono::duration<double>(sleep));
  }
}

}  // namespace

Json TaskResult::registered() const {
  Json out = data.is_object() ? data : Json::object();
  out["changed"] = changed;
  out["failed"] = failed;
  if (skipped) out["skipped"] = true;
  if (!msg.empty()) out["msg"] = msg;
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

int parse_mode(const Json& mode) {
  if (mode.is_null()) return -1;
  std::string s = mode.is_number_integer() ? std::to_string(mode.get<long long>()) : to_text(mode);
  if (s.empty() || s.size() > 5 || s.find_first_not_of("01234567") != std::string::npos)
    throw std::invalid_argument(
        fmt::format("bad mode {} (expected octal like \"0755\")", mode.dump()));
  return std::stoi(s, nullptr, 8);
}

TaskResult run_module(const std::string& module, const Json& args, ModuleContext& ctx) {
  try {
    if (module == "file") return file_module(args, ctx);
    if (module == "copy") return copy_module(args, ctx);
    if (module == "template") return template_module(args, ctx);
    if (module == "command" || module == "shell") return command_module(module, args, ctx);
    if (module == "stat") return stat_module(args, ctx);
    if (module == "uri") return uri_module(args, ctx);
    if (module == "wait_for") return wait_for_module(args, ctx);
    if (module == "pause") {
      double secs = num_arg(args, "seconds", 0) + 60 * num_arg(args, "minutes", 0);
      TaskResult r;
      if (ctx.check) {
        r.msg = fmt::format("would pause for {} seconds", secs);
        return r;
      }
      auto start = std::chrono::steady_clock::now();
      bool whole = sleep_unless_interrupted(std::chrono::duration<double>(secs));
      double slept =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      r.msg = whole ? fmt::format("Paused for {} seconds", secs)
                    : fmt::format("Pause cut short by an interrupt after {:.1f} s", slept);
      r.data = {{"delta", slept}};
      return r;
    }
    if (module == "set_fact") {
      TaskResult r;
      for (auto& [k, v] : args.items()) {
        if (k == "cacheable") continue;
        ctx.facts[k] = v;
        if (ctx.redactor && is_secret_name(k) && v.is_string())
          ctx.redactor->add(v.get<std::string>());
      }
      r.data = {{"ansible_facts", args}};
      return r;
    }
    if (module == "debug") {
      TaskResult r;
      if (args.contains("var")) {
        std::string var = str_arg(args, "var");
        Json v;
        try {
          v = evaluate(var, ctx.scope, ctx.src);
        } catch (const TemplateError&) {
          v = "VARIABLE IS NOT DEFINED!";
        }
        r.data = {{var, v}};
      } else {
        r.msg = str_arg(args, "msg", "Hello world!");
        if (args.contains("msg") && !args["msg"].is_string()) r.data = {{"msg_value", args["msg"]}};
      }
      return r;
    }
    if (module == "fail") return failed(str_arg(args, "msg", "Failed as requested from task"));
    if (module == "assert") {
      Json that = args.value("that", Json::array());
      if (!that.is_array()) that = Json::array({that});
      for (auto& cond : that) {
        std::string expr = cond.is_string() ? cond.get<std::string>() : to_text(cond);
        bool ok =
            cond.is_boolean() ? cond.get<bool>() : evaluate_condition(expr, ctx.scope, ctx.src);
        if (!ok) {
          std::string msg = str_arg(args, "fail_msg", str_arg(args, "msg", "Assertion failed"));
          return failed(msg, {{"assertion", expr}, {"evaluated_to", false}});
        }
      }
      TaskResult r;
      r.msg = str_arg(args, "success_msg", "All assertions passed");
      return r;
    }
  } catch (const UnreachableError&) {
    throw;
  } catch (const TemplateError& e) {
    return failed(e.what());
  } catch (const std::exception& e) {
    return failed(fmt::format("{}: {}", module, e.what()));
  }
  return failed(fmt::format("unknown module '{}'", module));
}

}  // namespace zdm::deploy
