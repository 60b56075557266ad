// Evaluation of expressions against a scope, with Jinja2's semantics where this subset has them
// (https://jinja.palletsprojects.com/en/stable/templates/) and Ansible's lazy rendering of
// variables whose values are templates.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "template.h"
#include "template/parser.h"

namespace zdm::deploy::tmpl {

// A value, or an undefined one with the name it was looked up by ("hostvars['x'].y"): Jinja2's
// Undefined, which only default(), mandatory, "is defined" and attribute access accept.
struct Val {
  Val(Json value = nullptr, bool undef = false, std::string name = {})
      : j(std::move(value)), undefined(undef), path(std::move(name)) {}
  Json j;
  bool undefined;
  std::string path;
};

class Evaluator {
 public:
  // `scope` (a JSON object; anything else has no variables), `src` (for messages) and `lookups`
  // must outlive the evaluator.
  Evaluator(const Json& scope, const Source& src, const LookupProvider& lookups)
      : scope_(scope), src_(src), lookups_(lookups) {}

  int line = 1;  // the line errors name
  // {% set %} and loop variables, innermost last; they shadow the scope.
  std::vector<std::pair<std::string, Json>> locals;

  // Throws TemplateError "file:line: msg".
  [[noreturn]] void error(const std::string& msg) const;

  // The value of `e`; throws "undefined variable '<path>'" if it is undefined.
  Json value(const Expr& e) { return need(eval(e)); }
  Json need(const Val& v) const;
  Val eval(const Expr& e);

  // A local or scope variable; a scope value that is a template is rendered first (resolve()).
  Val variable(const std::string& name);
  // obj[key] (a mapping's key, or a list's or string's index, negative from the end); undefined
  // if obj is, or if the key is missing. `shown` is appended to obj.path ("['k']", ".k").
  // Throws "index N out of range for '<path>'".
  Val member(const Val& obj, const Json& key, const std::string& shown);
  // Renders a value that is a template (or a list holding one) against the scope, as Ansible
  // renders variables lazily; a mapping's values are rendered as they are looked up (member()),
  // so an unused one never fails. Throws "recursive loop detected in variable '<name>'" past
  // 20 levels.
  Json resolve(const Json& j, const std::string& name);
  // Python's int(): numbers (doubles inside long long's range), booleans, numeric strings.
  // Throws "cannot convert <value> to int".
  long long as_int(const Json& j) const;

 private:
  Val unary(const Expr& e);
  Json binary(const Expr& e);
  Json compare(const std::string& op, const Json& a, const Json& b);
  Json arithmetic(const std::string& op, const Json& a, const Json& b);
  Json integer_arithmetic(const std::string& op, long long x, long long y);
  Json call(const Expr& e);
  Json call_function(const Expr& e, const std::string& name, const std::vector<Json>& args);
  Json call_range(const std::vector<Json>& args);
  Json call_method(const Expr& callee, const Json& obj, const std::vector<Json>& args);
  // nullopt: no such method on that type.
  std::optional<Json> list_method(const Expr& callee, const Json& obj,
                                  const std::vector<Json>& args);
  std::optional<Json> string_method(const std::string& m, const Json& obj,
                                    const std::vector<Json>& args);
  std::optional<Json> dict_method(const std::string& m, const Json& obj,
                                  const std::vector<Json>& args);
  const Json& arg(const std::string& m, const std::vector<Json>& args, size_t i) const;

  const Json& scope_;
  const Source& src_;
  const LookupProvider& lookups_;
};

// Python's str.replace: every occurrence of `from` (nothing if it is empty).
std::string replace_all(std::string s, const std::string& from, const std::string& to);

}  // namespace zdm::deploy::tmpl
