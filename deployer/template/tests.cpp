// Jinja2's builtin tests
// (https://jinja.palletsprojects.com/en/stable/templates/#list-of-builtin-tests) and Ansible's task
// result tests (https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_tests.html).
#include "template/tests.h"

#include <algorithm>
#include <regex>

#include <fmt/format.h>

#include "template/common.h"

namespace zdm::deploy::tmpl {

Json TestCall::arg(size_t i) const {
  if (i + 1 >= expr.args.size())
    ev.error(fmt::format("test '{}' needs {} argument(s)", name(), i + 1));
  return ev.value(*expr.args[i + 1]);
}

namespace {

// A task result's flag (register: r; r is failed).
bool flag(const Json& v, const char* key) {
  return v.is_object() && v.contains(key) && truthy(v[key]);
}

bool none(TestCall& t) {
  return t.value.is_null();
}
bool number(TestCall& t) {
  return t.value.is_number();
}
bool integer(TestCall& t) {
  return t.value.is_number_integer();
}
bool string(TestCall& t) {
  return t.value.is_string();
}
bool mapping(TestCall& t) {
  return t.value.is_object();
}
bool sequence(TestCall& t) {
  return t.value.is_array() || t.value.is_string() || t.value.is_object();
}
bool boolean(TestCall& t) {
  return t.value.is_boolean();
}
bool even(TestCall& t) {
  return t.ev.as_int(t.value) % 2 == 0;
}
bool odd(TestCall& t) {
  return t.ev.as_int(t.value) % 2 != 0;
}
bool failed(TestCall& t) {
  return flag(t.value, "failed");
}
bool succeeded(TestCall& t) {
  return !flag(t.value, "failed");
}
bool changed(TestCall& t) {
  return flag(t.value, "changed");
}
bool skipped(TestCall& t) {
  return flag(t.value, "skipped");
}
bool eq(TestCall& t) {
  return t.value == t.arg(0);
}
bool ne(TestCall& t) {
  return t.value != t.arg(0);
}

// x is in(list) or in(text).
bool in(TestCall& t) {
  Json c = t.arg(0);
  return c.is_array() ? std::find(c.begin(), c.end(), t.value) != c.end()
                      : to_text(c).find(to_text(t.value)) != std::string::npos;
}

// Ansible's match (at the start) and search (anywhere), ECMAScript regexes.
bool regex(TestCall& t) {
  try {
    std::regex re(to_text(t.arg(0)));
    std::string s = to_text(t.value);
    return t.name() == "match" ? std::regex_search(s, re, std::regex_constants::match_continuous)
                               : std::regex_search(s, re);
  } catch (const std::regex_error& ex) {
    t.ev.error(fmt::format("{}: {}", t.name(), ex.what()));
  }
}

}  // namespace

// Sorted by name.
const std::map<std::string, Test, std::less<>>& test_table() {
  static const std::map<std::string, Test, std::less<>> table = {
      {"boolean", boolean},
      {"change", changed},  // Ansible's alias
      {"changed", changed},
      {"eq", eq},
      {"equalto", eq},  // Jinja2's alias
      {"even", even},
      {"failed", failed},
      {"failure", failed},  // Ansible's alias
      {"in", in},
      {"integer", integer},
      {"iterable", sequence},
      {"mapping", mapping},
      {"match", regex},
      {"ne", ne},
      {"none", none},
      {"number", number},
      {"odd", odd},
      {"sameas", eq},
      {"search", regex},
      {"sequence", sequence},
      {"skip", skipped},  // Ansible's alias
      {"skipped", skipped},
      {"string", string},
      {"succeeded", succeeded},
      {"success", succeeded},  // Ansible's alias
  };
  return table;
}

std::vector<std::string> test_names() {
  std::vector<std::string> names = {"defined", "undefined"};
  for (const auto& [name, t] : test_table()) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

bool apply_test(Evaluator& ev, const Expr& e) {
  Val in = ev.eval(*e.args[0]);
  if (e.name == "defined") return !in.undefined;
  if (e.name == "undefined") return in.undefined;
  TestCall call{ev, e, ev.need(in)};
  const auto& table = test_table();
  auto it = table.find(e.name);
  if (it == table.end()) ev.error(fmt::format("unknown test '{}'", e.name));
  return it->second(call);
}

}  // namespace zdm::deploy::tmpl
