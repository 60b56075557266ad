// The public API of deployer/template.h: rendering the node tree of blocks.h with the
// evaluator.
#include <fmt/format.h>

#include "template.h"
#include "template/blocks.h"
#include "template/common.h"
#include "template/evaluator.h"

namespace zdm::deploy {
namespace tmpl {
namespace {

void render_nodes(const std::vector<Node>& nodes, Evaluator& ev, std::string& out);

// What "{% for %}" iterates: a list's items, a mapping's keys, a string's characters; null is
// empty. Throws "cannot loop over <value>" for anything else.
Json loop_items(const Json& seq, Evaluator& ev) {
  Json items = Json::array();
  if (seq.is_array()) {
    items = seq;
  } else if (seq.is_object()) {
    for (auto& [k, v] : seq.items()) items.push_back(k);
  } else if (seq.is_string()) {
    for (char c : seq.get<std::string>()) items.push_back(std::string(1, c));
  } else if (!seq.is_null()) {
    ev.error(fmt::format("cannot loop over {}", show(seq)));
  }
  return items;
}

// Jinja2's loop variable (https://jinja.palletsprojects.com/en/stable/templates/#for).
Json loop_variable(size_t i, size_t n) {
  return {{"index", i + 1}, {"index0", i},       {"first", i == 0},       {"last", i + 1 == n},
          {"length", n},    {"revindex", n - i}, {"revindex0", n - i - 1}};
}

void render_for(const Node& n, Evaluator& ev, std::string& out) {
  Json items = loop_items(ev.value(*n.expr), ev);
  if (items.empty()) {
    render_nodes(n.else_body, ev, out);
    return;
  }
  size_t mark = ev.locals.size();
  for (size_t i = 0; i < items.size(); ++i) {
    ev.locals.resize(mark);
    ev.locals.emplace_back("loop", loop_variable(i, items.size()));
    if (n.vars.size() == 1) {
      ev.locals.emplace_back(n.vars[0], items[i]);
    } else {
      if (!items[i].is_array() || items[i].size() != n.vars.size())
        ev.error(fmt::format("cannot unpack {} into {} variables", show(items[i]), n.vars.size()));
      for (size_t k = 0; k < n.vars.size(); ++k) ev.locals.emplace_back(n.vars[k], items[i][k]);
    }
    render_nodes(n.body, ev, out);
  }
  ev.locals.resize(mark);
}

void render_if(const Node& n, Evaluator& ev, std::string& out) {
  for (auto& [cond, body] : n.branches) {
    ev.line = n.line;
    if (truthy(ev.value(*cond))) {
      render_nodes(body, ev, out);
      return;
    }
  }
  render_nodes(n.else_body, ev, out);
}

void render_nodes(const std::vector<Node>& nodes, Evaluator& ev, std::string& out) {
  for (const Node& n : nodes) {
    ev.line = n.line;
    switch (n.kind) {
      case Node::Text:
        out += n.text;
        break;
      case Node::Output:
        out += to_text(ev.value(*n.expr));
        break;
      case Node::Set:
        ev.locals.emplace_back(n.vars[0], ev.value(*n.expr));
        break;
      case Node::If:
        render_if(n, ev, out);
        break;
      case Node::For:
        render_for(n, ev, out);
        break;
    }
  }
}

// Whether `t` (trimmed) is "{{ ... }}" with no other "{{" inside.
bool is_lone_expression(const std::string& t) {
  return t.size() >= 4 && t.compare(0, 2, "{{") == 0 && t.compare(t.size() - 2, 2, "}}") == 0 &&
         t.find("{{", 2) == std::string::npos;
}

}  // namespace
}  // namespace tmpl

bool is_template(std::string_view text) {
  return text.find("{{") != std::string_view::npos || text.find("{%") != std::string_view::npos ||
         text.find("{#") != std::string_view::npos;
}

std::string to_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  return tmpl::show(v);
}

bool truthy(const Json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<long long>() != 0;
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.empty();
}

std::string render(std::string_view text, const Json& scope, const Source& src, bool trim_blocks) {
  return render(text, scope, src, trim_blocks, default_lookups());
}

std::string render(std::string_view text, const Json& scope, const Source& src, bool trim_blocks,
                   const LookupProvider& lookups) {
  if (!is_template(text)) return std::string(text);
  auto nodes = tmpl::parse_template(tmpl::split_segments(text, src, trim_blocks), src);
  tmpl::Evaluator ev(scope, src, lookups);
  std::string out;
  tmpl::render_nodes(nodes, ev, out);
  return out;
}

Json evaluate(std::string_view expr, const Json& scope, const Source& src) {
  return evaluate(expr, scope, src, default_lookups());
}

Json evaluate(std::string_view expr, const Json& scope, const Source& src,
              const LookupProvider& lookups) {
  // A condition written as "{{ x }}" is accepted too.
  std::string t = tmpl::trim_copy(expr);
  if (tmpl::is_lone_expression(t)) t = t.substr(2, t.size() - 4);
  auto e = tmpl::parse_expression(t, src, src.line);
  tmpl::Evaluator ev(scope, src, lookups);
  ev.line = src.line;
  return ev.value(*e);
}

bool evaluate_condition(std::string_view expr, const Json& scope, const Source& src) {
  return truthy(evaluate(expr, scope, src));
}

Json render_value(const Json& value, const Json& scope, const Source& src) {
  return render_value(value, scope, src, default_lookups());
}

Json render_value(const Json& value, const Json& scope, const Source& src,
                  const LookupProvider& lookups) {
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (!is_template(s)) return value;
    std::string t = tmpl::trim_copy(s);
    if (tmpl::is_lone_expression(t) && t.find("{%") == std::string::npos &&
        t.find("}}") == t.size() - 2) {
      std::string inner = t.substr(2, t.size() - 4);
      if (!inner.empty() && inner.front() == '-') inner.erase(0, 1);
      if (!inner.empty() && inner.back() == '-') inner.pop_back();
      return evaluate(inner, scope, src, lookups);
    }
    return render(s, scope, src, false, lookups);
  }
  if (value.is_array()) {
    Json out = Json::array();
    for (auto& v : value) out.push_back(render_value(v, scope, src, lookups));
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (auto& [k, v] : value.items()) out[k] = render_value(v, scope, src, lookups);
    return out;
  }
  return value;
}

}  // namespace zdm::deploy
