#include "lookup.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const Source& src, const std::string& msg) {
  throw TemplateError(fmt::format("{}:{}: {}", src.name, src.line, msg));
}

std::string read_file(const std::string& path, const Source& src) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(src, fmt::format("lookup: cannot read '{}'", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A file named in a lookup: absolute, else under <playbook_dir>/<sub>, <playbook_dir>, or the
// working directory (Ansible's search path, shortened).
std::string find(const std::string& name, const Json& scope, const std::string& sub,
                 const Source& src) {
  if (fs::path(name).is_absolute()) return name;
  std::string dir = scope.contains("playbook_dir") ? to_text(scope["playbook_dir"]) : ".";
  for (fs::path p : {fs::path(dir) / sub / name, fs::path(dir) / name, fs::path(name)})
    if (fs::exists(p)) return p.string();
  fail(src, fmt::format("lookup: '{}' not found in {}/{}, {} or the working directory", name, dir,
                        sub, dir));
}

// Ansible's password lookup, for "/dev/null" only (a fresh value each time, never stored):
// length=N (default 20), chars=[ascii_letters, digits, hexdigits, ...] or a literal string.
std::string password(const std::vector<Json>& args, const Json& kwargs, const Source& src) {
  std::string term = args.empty() ? "" : to_text(args[0]);
  Json opts = kwargs;
  // "path length=32 chars=hexdigits" in one term, as Ansible also accepts.
  std::istringstream words(term);
  std::string path, w;
  words >> path;
  while (words >> w) {
    auto eq = w.find('=');
    if (eq == std::string::npos) fail(src, fmt::format("lookup('password'): bad option '{}'", w));
    opts[w.substr(0, eq)] = w.substr(eq + 1);
  }
  if (path != "/dev/null")
    fail(src,
         "lookup('password'): only '/dev/null' is supported (zdm-deploy stores no secrets in "
         "files on this machine)");
  size_t length = 20;
  if (opts.contains("length")) {
    try {
      length = std::stoul(to_text(opts["length"]));
    } catch (const std::exception&) {
      fail(src, "lookup('password'): length must be a number");
    }
  }
  if (length == 0 || length > 4096) fail(src, "lookup('password'): length must be 1..4096");
  std::string alphabet;
  Json chars = opts.value("chars", Json::array({"ascii_letters", "digits"}));
  if (chars.is_string()) {
    std::string s = chars.get<std::string>();
    chars = Json::array();
    std::string cur;
    for (char c : s) {
      if (c == ',') {
        chars.push_back(cur), cur.clear();
      } else {
        cur += c;
      }
    }
    chars.push_back(cur);
  }
  for (const auto& c : chars) {
    std::string set = to_text(c);
    if (set == "ascii_letters")
      alphabet += "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    else if (set == "ascii_lowercase")
      alphabet += "abcdefghijklmnopqrstuvwxyz";
    else if (set == "ascii_uppercase")
      alphabet += "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    else if (set == "digits")
      alphabet += "0123456789";
    else if (set == "hexdigits")
      alphabet += "0123456789abcdef";
    else
      alphabet += set;
  }
  if (alphabet.empty()) fail(src, "lookup('password'): empty chars");
  return random_string(length, alphabet);
}

}  // namespace

Json lookup_plugin(const std::string& name, const std::vector<Json>& args, const Json& kwargs,
                   const Json& scope, const Source& src) {
  if (args.empty()) fail(src, "lookup() needs a plugin name");
  std::string plugin = to_text(args[0]);
  std::vector<Json> terms(args.begin() + 1, args.end());
  bool wantlist = name != "lookup" || (kwargs.contains("wantlist") && truthy(kwargs["wantlist"]));
  Json results = Json::array();
  if (plugin == "file" || plugin == "template") {
    for (const auto& t : terms) {
      std::string path = find(to_text(t), scope, plugin == "file" ? "files" : "templates", src);
      std::string text = read_file(path, src);
      if (plugin == "template") {
        text = render(text, scope, Source{path, 1}, /*trim_blocks=*/true);
      } else if (!kwargs.contains("rstrip") || truthy(kwargs["rstrip"])) {
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      }
      results.push_back(text);
    }
  } else if (plugin == "vars") {
    // A variable by a name computed at run time; default= when it is not defined.
    for (const auto& t : terms) {
      std::string n = to_text(t);
      if (scope.contains(n)) {
        results.push_back(render_value(scope[n], scope, src));
      } else if (kwargs.contains("default")) {
        results.push_back(kwargs["default"]);
      } else {
        fail(src, fmt::format("lookup('vars'): undefined variable '{}'", n));
      }
    }
  } else if (plugin == "env") {
    for (const auto& t : terms) {
      const char* v = std::getenv(to_text(t).c_str());
      results.push_back(v ? std::string(v) : kwargs.value("default", std::string()));
    }
  } else if (plugin == "password") {
    results.push_back(password(terms, kwargs, src));
  } else {
    fail(src,
         fmt::format("unknown lookup plugin '{}' (file, template, vars, env, password)", plugin));
  }
  if (wantlist) return results;
  if (results.size() == 1) return results[0];
  std::string joined;
  for (size_t i = 0; i < results.size(); ++i) joined += (i ? "," : "") + to_text(results[i]);
  return joined;
}

namespace {

// The template engine's lookups: lookup_plugin().
class PluginLookups : public LookupProvider {
 public:
  Json call(const std::string& function, const std::vector<Json>& args, const Json& kwargs,
            const Json& scope, const Source& src) const override {
    return lookup_plugin(function, args, kwargs, scope, src);
  }
};

}  // namespace

const LookupProvider& default_lookups() {
  static const PluginLookups lookups;
  return lookups;
}

}  // namespace zdm::deploy
