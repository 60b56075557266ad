#include "engine/playbook.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "vars.h"

namespace zdm::deploy {
namespace {

int line_of(const YAML::Node& n) {
  return n.Mark().line + 1;
}

YAML::Node load_yaml_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw PlaybookError(fmt::format("{}: cannot read {}", path, what));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return YAML::Load(ss.str());
  } catch (const YAML::Exception& e) {
    throw PlaybookError(fmt::format("{}:{}: {}", path, e.mark.line + 1, e.msg));
  }
}

class PlaybookParser {
 public:
  explicit PlaybookParser(const std::string& path, int depth = 0) : path_(path), depth_(depth) {}

  std::vector<Play> plays(const YAML::Node& root) {
    std::vector<Play> out;
    if (root.IsNull()) return out;
    if (!root.IsSequence()) fail(root, "a playbook is a list of plays");
    for (const auto& p : root) {
      if (p.IsMap() && p["import_playbook"]) {
        if (p.size() != 1) fail(p, "import_playbook takes no other keywords");
        std::string file = resolve(scalar(p["import_playbook"], "import_playbook"));
        check_depth(p);
        auto more = PlaybookParser(file, depth_ + 1).plays(load_yaml_file(file, "playbook"));
        out.insert(out.end(), more.begin(), more.end());
        continue;
      }
      out.push_back(play(p));
    }
    return out;
  }

  std::vector<Task> task_file(const YAML::Node& root) { return task_list(root, "tasks"); }

 private:
  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    throw PlaybookError(fmt::format("{}:{}: {}", path_, line_of(n), msg));
  }

  // A file named by an import, relative to the importing file's directory.
  std::string resolve(const std::string& name) const {
    namespace fs = std::filesystem;
    if (fs::path(name).is_absolute()) return name;
    auto dir = fs::path(path_).parent_path();
    return (dir.empty() ? fs::path(name) : dir / name).lexically_normal().string();
  }

  void check_depth(const YAML::Node& n) const {
    if (depth_ >= 8) fail(n, "imports nested more than 8 deep (an import cycle?)");
  }

  std::string scalar(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) fail(n, fmt::format("'{}' must be a string", key));
    return n.Scalar();
  }

  bool boolean(const YAML::Node& n, const std::string& key) const {
    Json j = yaml_to_json(n);
    if (!j.is_boolean()) fail(n, fmt::format("'{}' must be true or false", key));
    return j.get<bool>();
  }

  Play play(const YAML::Node& n) {
    if (!n.IsMap()) fail(n, "a play must be a mapping");
    Play p;
    p.file = path_;
    p.line = line_of(n);
    bool has_hosts = false;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.as<std::string>();
      YAML::Node v = it->second;
      if (key == "name") {
        p.name = scalar(v, key);
      } else if (key == "hosts") {
        if (v.IsSequence()) {
          for (const auto& h : v) p.hosts += (p.hosts.empty() ? "" : ":") + scalar(h, key);
        } else {
          p.hosts = scalar(v, key);
        }
        has_hosts = true;
      } else if (key == "serial") {
        Json s = yaml_to_json(v);
        bool ok = s.is_number_integer() && s.get<long long>() >= 0;
        if (s.is_string()) {
          std::string t = s.get<std::string>();
          ok = !t.empty() && (t.back() == '%' || t.find("{{") != std::string::npos);
          if (t.back() == '%') {
            std::string num = t.substr(0, t.size() - 1);
            ok = !num.empty() && std::all_of(num.begin(), num.end(), ::isdigit);
          }
        }
        if (!ok) fail(v, "'serial' must be an integer or a percentage like \"50%\"");
        p.serial = s;
      } else if (key == "vars") {
        Json j = yaml_to_json(v);
        if (!j.is_object() && !j.is_null()) fail(v, "'vars' must be a mapping");
        if (j.is_object()) p.vars = j;
      } else if (key == "vars_files") {
        if (!v.IsSequence()) fail(v, "'vars_files' must be a list");
        for (const auto& f : v) p.vars_files.push_back(scalar(f, key));
      } else if (key == "tasks") {
        p.tasks = task_list(v, key);
      } else if (key == "handlers") {
        p.handlers = task_list(v, key);
      } else if (key == "any_errors_fatal") {
        p.any_errors_fatal = boolean(v, key);
      } else if (key == "gather_facts" || key == "become") {
        // Nothing accepted and then ignored: false is what zdm-deploy does (no facts gathered,
        // tasks run as the SSH user); true is refused by name.
        if (boolean(v, key))
          fail(v,
               fmt::format("'{}: true' is not supported: zdm-deploy {}", key,
                           key == "become" ? "runs tasks as the SSH user (give it a user that owns "
                                             "zdm_proxy_home_dir)"
                                           : "gathers no facts"));
      } else if (key == "connection") {
        if (scalar(v, key) != "ssh")
          fail(v,
               "'connection' other than ssh is not supported at play level (set "
               "ansible_connection=local on the host instead)");
      } else {
        fail(it->first, fmt::format("unknown play keyword '{}'", key));
      }
    }
    if (!has_hosts) fail(n, "play has no 'hosts'");
    check_handlers(p);
    return p;
  }

  // Ansible: "The requested handler 'x' was not found in either the main handlers list nor in
  // the listening handlers list" — here at parse time, with the notifying task's line.
  void check_handlers(const Play& p) const {
    std::set<std::string> names;
    for (const Task& h : p.handlers) {
      if (h.name.empty())
        throw PlaybookError(fmt::format("{}:{}: a handler needs a 'name'", path_, h.line));
      if (h.is_block())
        throw PlaybookError(fmt::format("{}:{}: a handler cannot be a block", path_, h.line));
      if (!names.insert(h.name).second)
        throw PlaybookError(fmt::format("{}:{}: two handlers named '{}'", path_, h.line, h.name));
    }
    std::function<void(const std::vector<Task>&)> walk = [&](const std::vector<Task>& tasks) {
      for (const Task& t : tasks) {
        for (const auto& n : t.notify)
          if (!names.count(n))
            throw PlaybookError(
                fmt::format("{}:{}: notify: no handler named '{}' in this play", path_, t.line, n));
        walk(t.block), walk(t.rescue), walk(t.always);
      }
    };
    walk(p.tasks);
    walk(p.handlers);
  }

  std::vector<Task> task_list(const YAML::Node& v, const std::string& key) {
    std::vector<Task> out;
    if (v.IsNull()) return out;
    if (!v.IsSequence()) fail(v, fmt::format("'{}' must be a list of tasks", key));
    for (const auto& t : v) out.push_back(task(t));
    return out;
  }

  // What a task's keys say beyond the Task's own fields, while they are read.
  struct TaskKeys {
    int args_line = 0;  // where the module's arguments are, for their errors
    bool has_block = false;
    Json extra_args;  // args:
  };

  Task task(const YAML::Node& n) {
    if (!n.IsMap()) fail(n, "a task must be a mapping");
    Task t;
    t.file = path_;
    t.line = line_of(n);
    TaskKeys keys;
    keys.args_line = t.line;
    for (auto it = n.begin(); it != n.end(); ++it) task_key(t, it->first, it->second, keys);
    if (keys.has_block) {
      finish_block(t, n);
      return t;
    }
    if (t.module.empty()) fail(n, "task has no module");
    if (keys.extra_args.is_object())
      for (auto& [k, v] : keys.extra_args.items()) t.args[k] = v;
    if (auto err = check_args(t); !err.empty())
      throw PlaybookError(fmt::format("{}:{}: {}", path_, keys.args_line, err));
    return t;
  }

  // One key of a task: a keyword, a block part, an import or the module.
  void task_key(Task& t, const YAML::Node& key_node, const YAML::Node& v, TaskKeys& keys) {
    std::string key = key_node.as<std::string>();
    std::string bare = key.rfind("ansible.builtin.", 0) == 0 ? key.substr(16) : key;
    const auto& modules = known_modules();
    if (task_keyword(t, key, v)) return;
    if (key == "args") {
      keys.extra_args = yaml_to_json(v);
      if (!keys.extra_args.is_object()) fail(v, "'args' must be a mapping");
    } else if (key == "block" || key == "rescue" || key == "always") {
      auto list = task_list(v, key);
      (key == "block" ? t.block : key == "rescue" ? t.rescue : t.always) = std::move(list);
      keys.has_block = true;
    } else if (key == "tags") {
      fail(v, "'tags' is not supported (zdm-deploy has no --tags; split the play instead)");
    } else if (bare == "import_tasks") {
      std::string file = resolve(scalar(v, key));
      check_depth(v);
      t.block = PlaybookParser(file, depth_ + 1).task_file(load_yaml_file(file, "task file"));
      if (t.block.empty()) fail(v, fmt::format("{}: no tasks", file));
      if (t.name.empty()) t.name = "import_tasks: " + scalar(v, key);
      keys.has_block = true;
    } else if (std::find(modules.begin(), modules.end(), bare) != modules.end()) {
      if (!t.module.empty())
        fail(key_node, fmt::format("task has two modules: '{}' and '{}'", t.module, bare));
      t.module = bare;
      keys.args_line = line_of(v);
      module_args(t, v);
    } else {
      fail(key_node, fmt::format("unknown module or task keyword '{}'", key));
    }
  }

  // A task keyword that sets one field (name, when, register, ...); false for any other key.
  bool task_keyword(Task& t, const std::string& key, const YAML::Node& v) const {
    if (key == "name") {
      t.name = scalar(v, key);
    } else if (key == "when") {
      if (v.IsSequence()) {
        for (const auto& c : v) t.when.push_back(scalar(c, key));
      } else {
        Json j = yaml_to_json(v);
        t.when.push_back(j.is_string() ? j.get<std::string>() : j.dump());
      }
    } else if (key == "register") {
      t.register_as = scalar(v, key);
    } else if (key == "retries") {
      t.retries = yaml_to_json(v);
    } else if (key == "delay") {
      t.delay = yaml_to_json(v);
    } else if (key == "until") {
      t.until = scalar(v, key);
    } else if (key == "ignore_errors") {
      t.ignore_errors = yaml_to_json(v);
    } else if (key == "changed_when" || key == "failed_when") {
      Json j = yaml_to_json(v);
      std::string cond = j.is_string() ? j.get<std::string>() : j.dump();
      if (v.IsSequence()) {
        cond.clear();
        for (const auto& c : v) cond += (cond.empty() ? "(" : " and (") + scalar(c, key) + ")";
      }
      (key == "changed_when" ? t.changed_when : t.failed_when) = cond;
    } else if (key == "run_once") {
      t.run_once = boolean(v, key);
    } else if (key == "no_log") {
      t.no_log = boolean(v, key);
    } else if (key == "notify") {
      if (v.IsSequence()) {
        for (const auto& h : v) t.notify.push_back(scalar(h, key));
      } else {
        t.notify.push_back(scalar(v, key));
      }
    } else if (key == "delegate_to") {
      t.delegate_to = scalar(v, key);
    } else if (key == "vars") {
      Json j = yaml_to_json(v);
      if (!j.is_object()) fail(v, "'vars' must be a mapping");
      t.vars = j;
    } else if (key == "loop" || key == "with_items") {
      t.loop = yaml_to_json(v);
    } else if (key == "loop_control") {
      // label/index_var: accepted; items are shown by their value
    } else if (key == "check_mode") {
      t.check_mode = boolean(v, key);
    } else if (key == "timeout") {
      t.timeout = yaml_to_json(v);
    } else {
      return false;
    }
    return true;
  }

  // A block (or an import) runs no module; its vars hold for every task inside, below the
  // task's own.
  void finish_block(Task& t, const YAML::Node& n) const {
    if (!t.module.empty()) fail(n, fmt::format("a block cannot also run module '{}'", t.module));
    if (t.block.empty()) fail(n, "'rescue'/'always' without 'block'");
    if (t.vars.empty()) return;
    std::function<void(std::vector<Task>&)> inherit = [&](std::vector<Task>& tasks) {
      for (Task& c : tasks) {
        Json merged = t.vars;
        for (auto& [k, x] : c.vars.items()) merged[k] = x;
        c.vars = merged;
        inherit(c.block), inherit(c.rescue), inherit(c.always);
      }
    };
    inherit(t.block), inherit(t.rescue), inherit(t.always);
  }

  void module_args(Task& t, const YAML::Node& v) const {
    bool free_form = t.module == "command" || t.module == "shell" || t.module == "meta";
    if (v.IsMap()) {
      t.args = yaml_to_json(v);
    } else if (v.IsScalar()) {
      try {
        t.args = parse_kv_args(v.Scalar(), free_form);
      } catch (const PlaybookError& e) {
        fail(v, fmt::format("module '{}': {}", t.module, e.what()));
      }
    } else if (v.IsNull()) {
      t.args = Json::object();
    } else {
      fail(v, fmt::format("arguments of '{}' must be a mapping or k=v text", t.module));
    }
  }

  // Unknown arguments are errors, named like Ansible's "Unsupported parameters".
  static std::string check_args(const Task& t) {
    static const std::map<std::string, std::set<std::string>> allowed = {
        {"file", {"path", "dest", "name", "state", "src", "mode", "recurse", "force"}},
        {"copy", {"src", "content", "dest", "mode", "force", "backup", "diff_from"}},
        {"template", {"src", "dest", "mode", "force", "backup", "diff_from"}},
        {"command", {"_raw_params", "cmd", "argv", "chdir", "creates", "removes", "stdin"}},
        {"shell", {"_raw_params", "cmd", "chdir", "creates", "removes", "stdin", "executable"}},
        {"uri",
         {"url", "method", "status_code", "timeout", "return_content", "body", "body_format",
          "headers", "follow_redirects", "validate_certs"}},
        {"wait_for",
         {"host", "port", "timeout", "state", "delay", "sleep", "connect_timeout", "msg"}},
        {"pause", {"seconds", "minutes", "prompt", "echo"}},
        {"debug", {"msg", "var", "verbosity"}},
        {"fail", {"msg"}},
        {"stat", {"path", "get_checksum", "checksum_algorithm", "follow"}},
        {"assert", {"that", "fail_msg", "msg", "success_msg", "quiet"}},
        {"meta", {"_raw_params"}},
    };
    if (t.module == "meta" && t.args.value("_raw_params", "") != "flush_handlers")
      return fmt::format("meta: only 'flush_handlers' is supported, not '{}'",
                         t.args.value("_raw_params", ""));
    auto it = allowed.find(t.module);
    if (it == allowed.end()) return {};  // set_fact takes any names
    if (!t.args.is_object()) return fmt::format("arguments of '{}' must be a mapping", t.module);
    for (auto& [k, v] : t.args.items())
      if (!it->second.count(k))
        return fmt::format("module '{}': unsupported parameter '{}'", t.module, k);
    return {};
  }

  const std::string path_;
  int depth_ = 0;
};

}  // namespace

std::string Task::display_name() const {
  if (!name.empty()) return name;
  return module.empty() ? "block" : module;
}

const std::vector<std::string>& known_modules() {
  static const std::vector<std::string> m = {"file", "copy",     "template", "command",  "shell",
                                             "uri",  "wait_for", "pause",    "set_fact", "debug",
                                             "fail", "stat",     "assert",   "meta"};
  return m;
}

Json parse_kv_args(std::string_view text, bool free_form) {
  Json out = Json::object();
  std::vector<std::string> tokens;
  std::vector<bool> quoted;
  std::string cur;
  bool in_tok = false, q = false;
  char quote = 0;
  int braces = 0;  // inside {{ }} or {% %}: spaces do not split
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (i + 1 < text.size() && c == '{' && (text[i + 1] == '{' || text[i + 1] == '%')) {
      ++braces;
    } else if (braces > 0 && i + 1 < text.size() && (c == '}' || c == '%') && text[i + 1] == '}') {
      --braces;
      cur += c;
      cur += text[++i];
      in_tok = true;
      continue;
    }
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
      continue;
    }
    if ((c == ' ' || c == '\t' || c == '\n') && braces == 0) {
      if (in_tok)
        tokens.push_back(cur), quoted.push_back(q), cur.clear(), in_tok = false, q = false;
      continue;
    }
    in_tok = true;
    if ((c == '"' || c == '\'') && braces == 0) {
      quote = c;
      q = true;
    } else {
      cur += c;
    }
  }
  if (in_tok) tokens.push_back(cur), quoted.push_back(q);
  auto is_kv = [&](size_t i) {
    auto eq = tokens[i].find('=');
    if (eq == std::string::npos || eq == 0) return false;
    std::string k = tokens[i].substr(0, eq);
    return std::all_of(k.begin(), k.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
  };
  if (!free_form) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (!is_kv(i)) throw PlaybookError(fmt::format("bad key=value '{}'", tokens[i]));
      auto eq = tokens[i].find('=');
      out[tokens[i].substr(0, eq)] = tokens[i].substr(eq + 1);
    }
    return out;
  }
  // Free form: the command text as written, minus known option pairs.
  static const std::set<std::string> opts = {"chdir", "creates", "removes", "executable", "stdin"};
  std::string raw(text);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!is_kv(i)) continue;
    auto eq = tokens[i].find('=');
    std::string k = tokens[i].substr(0, eq);
    if (!opts.count(k)) continue;
    out[k] = tokens[i].substr(eq + 1);
    // Remove "k=..." from the raw text (first occurrence of the key= prefix).
    size_t at = raw.find(k + "=");
    if (at != std::string::npos) {
      size_t end = at + k.size() + 1;
      char qc = end < raw.size() && (raw[end] == '"' || raw[end] == '\'') ? raw[end] : 0;
      if (qc) {
        end = raw.find(qc, end + 1);
        end = end == std::string::npos ? raw.size() : end + 1;
      } else {
        while (end < raw.size() && raw[end] != ' ' && raw[end] != '\t') ++end;
      }
      raw.erase(at, end - at);
    }
  }
  size_t b = raw.find_first_not_of(" \t\n");
  size_t e = raw.find_last_not_of(" \t\n");
  out["_raw_params"] = b == std::string::npos ? "" : raw.substr(b, e - b + 1);
  return out;
}

Playbook parse_playbook(std::string_view text, const std::string& path) {
  Playbook pb;
  pb.path = path;
  auto parent = std::filesystem::path(path).parent_path().string();
  pb.dir = parent.empty() ? "." : parent;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw PlaybookError(fmt::format("{}:{}: {}", path, e.mark.line + 1, e.msg));
  }
  try {
    pb.plays = PlaybookParser(path).plays(root);
  } catch (const PlaybookError&) {
    throw;
  } catch (const std::exception& e) {
    throw PlaybookError(fmt::format("{}: {}", path, e.what()));
  }
  return pb;
}

Playbook load_playbook(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw PlaybookError(fmt::format("{}: cannot read playbook", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_playbook(ss.str(), path);
}

}  // namespace zdm::deploy
