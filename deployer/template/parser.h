// The expression AST and the parser of Jinja2 expressions, with Jinja2's operator precedence
// (https://jinja.palletsprojects.com/en/stable/templates/#expressions), lowest first:
//   a if cond else b;  or;  and;  not;  == != < > <= >= in, not in, is [not] test;  ~;  + -;
//   * / // %;  unary - +;  | filter(args);  .attr [index] (call);  literals, names, ( ) [ ] { }.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "template.h"

namespace zdm::deploy::tmpl {

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

// One node of an expression. The meaning of name and args by kind:
//   Literal: value.              Name: name.
//   Attr:    args[0].name        Index: args[0][args[1]].
//   Call:    args[0](args[1..], kwargs); args[0] is a Name (function) or an Attr (method).
//   Filter:  args[0] | name(args[1..], kwargs).
//   Test:    args[0] is [not] name(args[1..]); negate for "is not".
//   Unary:   name ("not", "-") applied to args[0].
//   Binary:  args[0] name args[1]; name is the operator ("and", "or", "==", "in", "+", "~", ...).
//   List:    [args...].          Dict: {args[0]: args[1], args[2]: args[3], ...}.
//   Cond:    args[0] if args[1] else args[2] (args[2] absent: "").
struct Expr {
  enum Kind { Literal, Name, Attr, Index, Call, Filter, Test, Unary, Binary, List, Dict, Cond };
  Kind kind;
  Json value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negate = false;
};

ExprPtr make_expr(Expr::Kind k, std::string name = {}, std::vector<ExprPtr> args = {});

// Parses the whole of `text` as one expression. true/True, false/False, none/None/null are
// literals; adjacent string literals concatenate; "x is test 1" takes one literal argument
// without parentheses.
// Throws TemplateError "file:line: syntax error in expression '<text>': <what>", also for more
// than kMaxTokens tokens or nesting deeper than kMaxNesting (a bound on the recursion).
ExprPtr parse_expression(std::string_view text, const Source& src, int line);

// "{% for a, b in expr %}" after "for": the loop variables, then the iterable.
std::pair<std::vector<std::string>, ExprPtr> parse_for_header(std::string_view text,
                                                              const Source& src, int line);

// "{% set x = expr %}" after "set": the variable's name, then the value.
std::pair<std::string, ExprPtr> parse_set_header(std::string_view text, const Source& src,
                                                 int line);

}  // namespace zdm::deploy::tmpl
