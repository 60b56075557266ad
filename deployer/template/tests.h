// Jinja2's and Ansible's tests ("x is name(args)") as a table of name -> function, as Jinja2's
// DEFAULT_TESTS (jinja2/tests.py) and Ansible's test plugins
// (ansible/ansible lib/ansible/plugins/test/core.py) are. Adding a test is one entry in
// test_table() and one case in tests/unit/deployer/test_filters.cpp.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "template/evaluator.h"

namespace zdm::deploy::tmpl {

// One application of a test to a defined value.
struct TestCall {
  Evaluator& ev;
  const Expr& expr;  // the Test node: expr.args[0] is the value, expr.args[1..] the arguments
  Json value;

  const std::string& name() const { return expr.name; }
  // The i-th argument (0-based); throws "test '<name>' needs <i+1> argument(s)".
  Json arg(size_t i) const;
};

using Test = bool (*)(TestCall&);

// Every test but defined/undefined, which see an undefined value (apply_test()).
const std::map<std::string, Test, std::less<>>& test_table();
// Every test name, sorted: test_table()'s and defined, undefined.
std::vector<std::string> test_names();

// Evaluates a Test node without its negation ("is not"). Throws TemplateError
// "unknown test '<name>'", or "undefined variable '<path>'" for a test other than
// defined/undefined of an undefined value.
bool apply_test(Evaluator& ev, const Expr& e);

}  // namespace zdm::deploy::tmpl
