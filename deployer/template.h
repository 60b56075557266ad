// A Jinja2 subset: {{ expr }}, {% if/elif/else/endif %}, {% for %}, {# #}, whitespace control.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

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

bool is_template(std::string_view text);

// Renders `text` against `scope` (a JSON object). Variables whose values are themselves
// templates are rendered lazily against the same scope, as Ansible does.
// trim_blocks drops the first newline after a block tag (Ansible's template module default).
std::string render(std::string_view text, const Json& scope, const Source& src,
                   bool trim_blocks = false);

// Evaluates a bare expression ("a == 1 and b is defined").
Json evaluate(std::string_view expr, const Json& scope, const Source& src);
// Jinja truthiness of evaluate().
bool evaluate_condition(std::string_view expr, const Json& scope, const Source& src);
bool truthy(const Json& value);

// Renders every string inside `value`. A string that is exactly "{{ expr }}" keeps the
// expression's type (int, list, ...), like Ansible's native conversion.
Json render_value(const Json& value, const Json& scope, const Source& src);

// The text form of a value in a template: strings as-is, true/false as True/False, null as
// None, numbers as numbers, lists/dicts as JSON (invalid UTF-8 in them shown as U+FFFD).
std::string to_text(const Json& value);

}  // namespace zdm::deploy
