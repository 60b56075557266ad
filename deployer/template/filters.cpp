// The filters that see the whole call: Jinja2's builtin filters
// (https://jinja.palletsprojects.com/en/stable/templates/#list-of-builtin-filters) and Ansible's
// (https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_filters.html). The filters of
// a value alone are in simple_filters.cpp.
#include "template/filters.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "digest.h"
#include "template/common.h"

namespace zdm::deploy::tmpl {

Json FilterCall::arg(size_t i) {
  if (i >= argc()) error(fmt::format("filter '{}' needs {} argument(s)", name(), i + 1));
  return ev.value(*expr.args[i + 1]);
}

const Expr* FilterCall::kwarg(std::string_view key) const {
  for (auto& [k, v] : expr.kwargs)
    if (k == key) return v.get();
  return nullptr;
}

namespace {

// "[k]" or "['k']" as a path shows an index.
std::string index_shown(const Json& key) {
  return "[" + (key.is_string() ? "'" + key.get<std::string>() + "'" : show(key)) + "]";
}

// default(value='', boolean=false): the value when the input is undefined (or, with boolean,
// falsy).
Val default_filter(FilterCall& c) {
  bool boolean = c.argc() > 1 && truthy(c.arg(1));
  if (c.in.undefined || (boolean && !truthy(c.in.j)) || (c.in.j.is_null() && boolean))
    return {c.argc() > 0 ? c.arg(0) : Json("")};
  return c.in;
}

// Ansible's mandatory(msg): an undefined input is an error.
Val mandatory(FilterCall& c) {
  if (c.in.undefined)
    c.error(c.argc() > 0 ? to_text(c.arg(0))
                         : fmt::format("mandatory variable '{}' is not defined", c.in.path));
  return c.in;
}

Val join(FilterCall& c) {
  Json v = c.input();
  std::string sep = c.argc() > 0 ? to_text(c.arg(0)) : "";
  if (!v.is_array()) c.error(fmt::format("join needs a list, not {}", show(v)));
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + to_text(v[i]);
  return {out};
}

// map(attribute='a.b'), map('extract', container[, key]) (Ansible's extract), map('<filter>').
Val map(FilterCall& c) {
  Json v = c.input();
  if (!v.is_array()) v = v.is_object() ? keys_of(v) : Json::array();
  Json out = Json::array();
  if (const Expr* attr = c.kwarg("attribute")) {
    // A dotted path ("item.role") walks into nested mappings.
    std::string path = to_text(c.ev.value(*attr));
    for (auto& item : v) {
      Val cur{item, false, c.in.path};
      size_t pos = 0;
      while (pos <= path.size()) {
        size_t dot = path.find('.', pos);
        std::string key = path.substr(pos, dot == std::string::npos ? dot : dot - pos);
        cur = c.ev.member(cur, key, "." + key);
        if (dot == std::string::npos) break;
        pos = dot + 1;
      }
      out.push_back(c.ev.need(cur));
    }
    return {out};
  }
  std::string f = to_text(c.arg(0));
  if (f == "extract") {
    Json container = c.arg(1);
    for (auto& item : v) {
      Val got = c.ev.member({container, false, c.expr.args[2]->name}, item, index_shown(item));
      if (c.argc() > 2) {
        Json key = c.arg(2);
        got = c.ev.member(got, key, "." + to_text(key));
      }
      out.push_back(c.ev.need(got));
    }
    return {out};
  }
  for (auto& item : v) out.push_back(apply_simple_filter(c.ev, f, item));
  return {out};
}

Val replace(FilterCall& c) {
  Json v = c.input();
  return {replace_all(to_text(v), to_text(c.arg(0)), to_text(c.arg(1)))};
}

// Ansible's ternary(true_value, false_value): only the chosen one is evaluated.
Val ternary(FilterCall& c) {
  Json v = c.input();
  return {truthy(v) ? c.arg(0) : c.arg(1)};
}

// Ansible's combine(dict...): later keys win (not recursive).
Val combine(FilterCall& c) {
  Json out = c.input();
  for (size_t i = 0; i < c.argc(); ++i) {
    Json more = c.arg(i);
    if (!more.is_object()) c.error(fmt::format("combine needs dicts, not {}", show(more)));
    for (auto& [k, x] : more.items()) out[k] = x;
  }
  return {out};
}

// Ansible's hash(algorithm='sha1'): the hex digest of the text.
Val hash(FilterCall& c) {
  Json v = c.input();
  try {
    return {digest_hex(c.argc() > 0 ? to_text(c.arg(0)) : "sha1", to_text(v))};
  } catch (const std::invalid_argument& ex) {
    c.error(ex.what());
  }
}

// select()/reject() keep/drop truthy items; select('equalto'|'ne'|'match'|'search'|'in', arg)
// and select('defined'|'string'|'number') apply that test.
Val select(FilterCall& c) {
  Json v = c.input();
  const std::string& name = c.name();
  if (!v.is_array()) c.error(fmt::format("{} needs a list, not {}", name, v.dump()));
  std::string t = c.argc() > 0 ? to_text(c.arg(0)) : "";
  Json out = Json::array();
  for (auto& item : v) {
    bool keep;
    if (t.empty())
      keep = truthy(item);
    else if (t == "equalto" || t == "eq" || t == "==")
      keep = item == c.arg(1);
    else if (t == "ne" || t == "!=")
      keep = item != c.arg(1);
    else if (t == "in")
      keep = c.arg(1).is_array() &&
             std::find(c.arg(1).begin(), c.arg(1).end(), item) != c.arg(1).end();
    else if (t == "match" || t == "search")
      keep = std::regex_search(to_text(item), std::regex(to_text(c.arg(1))),
                               t == "match" ? std::regex_constants::match_continuous
                                            : std::regex_constants::match_default);
    else if (t == "defined" || t == "string" || t == "number")
      keep = t == "defined" || (t == "string" ? item.is_string() : item.is_number());
    else
      c.error(fmt::format("{}: unsupported test '{}'", name, t));
    if (keep == (name == "select")) out.push_back(item);
  }
  return {out};
}

// selectattr('a') keeps items whose a is truthy; selectattr('a', 'equalto'|'ne', x),
// selectattr('a', 'defined'|'undefined') test it. rejectattr drops them.
Val selectattr(FilterCall& c) {
  Json v = c.input();
  const std::string& name = c.name();
  if (!v.is_array()) c.error(fmt::format("{} needs a list, not {}", name, v.dump()));
  std::string attr = to_text(c.arg(0));
  std::string t = c.argc() > 1 ? to_text(c.arg(1)) : "";
  Json out = Json::array();
  for (auto& item : v) {
    Val got = c.ev.member({item, false, c.in.path}, attr, "." + attr);
    bool keep;
    if (t.empty())
      keep = !got.undefined && truthy(got.j);
    else if (t == "defined")
      keep = !got.undefined;
    else if (t == "undefined")
      keep = got.undefined;
    else if (t == "equalto" || t == "eq" || t == "==")
      keep = !got.undefined && got.j == c.arg(2);
    else if (t == "ne" || t == "!=")
      keep = got.undefined || got.j != c.arg(2);
    else
      c.error(fmt::format("{}: unsupported test '{}'", name, t));
    if (keep == (name == "selectattr")) out.push_back(item);
  }
  return {out};
}

// zdm's own: "k=v" lines (zdmctl's output) as a mapping; other lines are skipped.
Val from_kv(FilterCall& c) {
  Json out = Json::object();
  std::string text = to_text(c.input());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string ln = text.substr(pos, nl == std::string::npos ? nl : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    auto eq = ln.find('=');
    if (eq != std::string::npos && eq > 0) out[ln.substr(0, eq)] = ln.substr(eq + 1);
  }
  return {out};
}

// Ansible's zip(list...): rows up to the shortest list.
Val zip(FilterCall& c) {
  Json v = c.input();
  if (!v.is_array()) c.error("zip needs lists");
  Json out = Json::array();
  std::vector<Json> others;
  for (size_t i = 0; i < c.argc(); ++i) others.push_back(c.arg(i));
  for (size_t i = 0; i < v.size(); ++i) {
    Json row = Json::array({v[i]});
    bool complete = true;
    for (auto& o : others) {
      if (!o.is_array() || i >= o.size())
        complete = false;
      else
        row.push_back(o[i]);
    }
    if (!complete) break;
    out.push_back(row);
  }
  return {out};
}

// Ansible's items2dict(key_name='key', value_name='value') and dict2items(...).
Val items2dict(FilterCall& c) {
  Json v = c.input();
  const bool to_dict = c.name() == "items2dict";
  std::string key_name = "key", value_name = "value";
  if (const Expr* k = c.kwarg("key_name")) key_name = to_text(c.ev.value(*k));
  if (const Expr* k = c.kwarg("value_name")) value_name = to_text(c.ev.value(*k));
  Json out = to_dict ? Json::object() : Json::array();
  if (to_dict) {
    for (auto& item : v)
      if (item.is_object() && item.contains(key_name))
        out[to_text(item[key_name])] = item.value(value_name, Json());
  } else if (v.is_object()) {
    for (auto& [k, x] : v.items()) out.push_back({{key_name, k}, {value_name, x}});
  }
  return {out};
}

// Ansible's set theory filters: difference, intersect, union (first occurrences, in order).
Val set_operation(FilterCall& c) {
  Json v = c.input();
  const std::string& name = c.name();
  Json other = c.arg(0);
  if (!v.is_array() || !other.is_array()) c.error(fmt::format("{} needs two lists", name));
  auto in_other = [&](const Json& x) {
    return std::find(other.begin(), other.end(), x) != other.end();
  };
  Json out = Json::array();
  auto add = [&](const Json& x) {
    if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
  };
  for (auto& x : v)
    if (name == "union" || in_other(x) == (name == "intersect")) add(x);
  if (name == "union")
    for (auto& x : other) add(x);
  return {out};
}

// Ansible's regex_replace(pattern, replacement): ECMAScript regexes; Python's "\\1"
// backreferences, as Ansible writes them, become ECMAScript's "$1".
Val regex_replace(FilterCall& c) {
  Json v = c.input();
  try {
    std::string fmt_text = c.argc() > 1 ? to_text(c.arg(1)) : "";
    std::string repl;
    for (size_t i = 0; i < fmt_text.size(); ++i) {
      if (fmt_text[i] == '\\' && i + 1 < fmt_text.size() &&
          std::isdigit(static_cast<unsigned char>(fmt_text[i + 1]))) {
        repl += '$';
      } else if (fmt_text[i] == '$') {
        repl += "$$";
      } else {
        repl += fmt_text[i];
      }
    }
    return {std::regex_replace(to_text(v), std::regex(to_text(c.arg(0))), repl)};
  } catch (const std::regex_error& ex) {
    c.error(fmt::format("regex_replace: {}", ex.what()));
  }
}

// int(default): the default when the input does not convert; int alone is simple_filters.cpp's.
Val int_filter(FilterCall& c) {
  Json v = c.input();
  if (c.argc() == 0) return {apply_simple_filter(c.ev, "int", v)};
  try {
    return {c.ev.as_int(v)};
  } catch (const TemplateError&) {
    return {c.arg(0)};
  }
}

}  // namespace

// Sorted by name. An input that is undefined reaches only default/d and mandatory: every other
// filter asks for input() first.
const std::map<std::string, Filter, std::less<>>& filter_table() {
  static const std::map<std::string, Filter, std::less<>> table = {
      {"combine", combine},
      {"d", default_filter},  // Jinja2's alias of default
      {"default", default_filter},
      {"dict2items", items2dict},
      {"difference", set_operation},
      {"from_kv", from_kv},
      {"hash", hash},
      {"int", int_filter},
      {"intersect", set_operation},
      {"items2dict", items2dict},
      {"join", join},
      {"mandatory", mandatory},
      {"map", map},
      {"regex_replace", regex_replace},
      {"reject", select},
      {"rejectattr", selectattr},
      {"replace", replace},
      {"select", select},
      {"selectattr", selectattr},
      {"ternary", ternary},
      {"union", set_operation},
      {"zip", zip},
  };
  return table;
}

std::vector<std::string> filter_names() {
  std::set<std::string> names;
  for (const auto& [name, f] : filter_table()) names.insert(name);
  for (const auto& [name, f] : simple_filter_table()) names.insert(name);
  return {names.begin(), names.end()};
}

Val apply_filter(Evaluator& ev, const Expr& e) {
  FilterCall call{ev, e, ev.eval(*e.args[0])};
  const auto& table = filter_table();
  if (auto it = table.find(e.name); it != table.end()) return it->second(call);
  Json v = call.input();
  return {apply_simple_filter(ev, e.name, v)};
}

}  // namespace zdm::deploy::tmpl
