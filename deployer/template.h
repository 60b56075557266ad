// A Jinja2 subset (https://jinja.palletsprojects.com/en/stable/templates/): {{ expr }},
// {% if/elif/else/endif %}, {% for %}...{% else %}...{% endfor %}, {% set %}, {# #}, whitespace
// control; Ansible's filters, tests and lookups that the playbooks use
// (https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_templating.html).
// The engine is in template/: lexer, parser (the AST), blocks (the template's structure),
// evaluator, filters and tests (tables of name -> function), render (this API).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace zdm::deploy {

using Json = nlohmann::json;

// what() is "file:line: message", e.g. "templates/x.j2:3: undefined variable 'foo'".
class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where a piece of template text comes from (for error messages).
struct Source {
  std::string name;
  int line = 1;
};

// Where lookup(), query() and q() in a template go: Ansible's lookup plugins
// (https://docs.ansible.com/ansible/latest/plugins/lookup.html). The template engine knows them
// only through this interface; lookup.cpp implements it.
class LookupProvider {
 public:
  virtual ~LookupProvider() = default;
  // `function` is "lookup", "query" or "q"; args[0] names the plugin, args[1..] are its terms,
  // `kwargs` (a JSON object) the key=value arguments. `scope` is the template's variables, `src`
  // the file and line errors name. Throws TemplateError "file:line: message".
  virtual Json call(const std::string& function, const std::vector<Json>& args, const Json& kwargs,
                    const Json& scope, const Source& src) const = 0;
};

// The lookups render(), evaluate() and render_value() use when given none: lookup.h's
// lookup_plugin(). Defined in lookup.cpp.
const LookupProvider& default_lookups();

// Whether `text` holds "{{", "{%" or "{#".
bool is_template(std::string_view text);

// Renders `text` against `scope` (a JSON object). Variables whose values are themselves
// templates are rendered lazily against the same scope, as Ansible does.
// trim_blocks drops the first newline after a block tag (Ansible's template module default).
// Throws TemplateError "file:line: message" (src.line is the line of text's first character):
// a syntax error, an undefined variable, an unknown filter/test/function, a type error.
std::string render(std::string_view text, const Json& scope, const Source& src,
                   bool trim_blocks = false);
std::string render(std::string_view text, const Json& scope, const Source& src, bool trim_blocks,
                   const LookupProvider& lookups);

// Evaluates a bare expression ("a == 1 and b is defined"; "{{ a == 1 }}" is accepted too).
// Throws TemplateError "file:line: message" with src.line.
Json evaluate(std::string_view expr, const Json& scope, const Source& src);
Json evaluate(std::string_view expr, const Json& scope, const Source& src,
              const LookupProvider& lookups);
// Jinja truthiness of evaluate().
bool evaluate_condition(std::string_view expr, const Json& scope, const Source& src);
// Python's truthiness (Jinja2's): null, false, 0, 0.0, "", [] and {} are false.
bool truthy(const Json& value);

// Renders every string inside `value`. A string that is exactly "{{ expr }}" keeps the
// expression's type (int, list, ...), like Ansible's native conversion.
// Throws TemplateError as render().
Json render_value(const Json& value, const Json& scope, const Source& src);
Json render_value(const Json& value, const Json& scope, const Source& src,
                  const LookupProvider& lookups);

// The text form of a value in a template: strings as-is, true/false as True/False, null as
// None, numbers as numbers, lists/dicts as JSON (invalid UTF-8 in them shown as U+FFFD).
std::string to_text(const Json& value);

}  // namespace zdm::deploy
