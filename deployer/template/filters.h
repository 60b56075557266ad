// Jinja2's and Ansible's filters ("x | name(args)") as a table of name -> function, as Jinja2's
// DEFAULT_FILTERS (jinja2/filters.py) and Ansible's filter plugins
// (ansible/ansible lib/ansible/plugins/filter/core.py) are. Adding a filter is one entry in
// filter_table() or simple_filter_table() and one case in tests/unit/deployer/test_filters.cpp.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "template/evaluator.h"

namespace zdm::deploy::tmpl {

// One application of a filter: its input (possibly undefined) and its arguments, evaluated only
// when asked for (default(x) evaluates x only when the input is undefined).
struct FilterCall {
  Evaluator& ev;
  const Expr& expr;  // the Filter node: expr.args[0] is the input, expr.args[1..] the arguments
  Val in;

  const std::string& name() const { return expr.name; }
  size_t argc() const { return expr.args.size() - 1; }
  // The i-th argument (0-based); throws "filter '<name>' needs <i+1> argument(s)".
  Json arg(size_t i);
  // The key=value argument named `key`, or nullptr.
  const Expr* kwarg(std::string_view key) const;
  // The input's value; throws "undefined variable '<path>'" if it is undefined.
  Json input() const { return ev.need(in); }
  [[noreturn]] void error(const std::string& msg) const { ev.error(msg); }
};

// A filter that sees the whole call (arguments, keywords, an undefined input).
using Filter = Val (*)(FilterCall&);
// A filter of its (defined) input alone; also usable as map('<name>') and by str methods.
using SimpleFilter = Json (*)(Evaluator&, const Json& in);

const std::map<std::string, Filter, std::less<>>& filter_table();
const std::map<std::string, SimpleFilter, std::less<>>& simple_filter_table();
// Every filter name of both tables, sorted, each once.
std::vector<std::string> filter_names();

// Evaluates a Filter node: filter_table()'s entry, else the input (which must be defined) through
// simple_filter_table()'s. Throws TemplateError "unknown filter '<name>'" for another name.
Val apply_filter(Evaluator& ev, const Expr& e);
// simple_filter_table()'s `name` applied to `in`; throws "unknown filter '<name>'".
Json apply_simple_filter(Evaluator& ev, std::string_view name, const Json& in);

}  // namespace zdm::deploy::tmpl
