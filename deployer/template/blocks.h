// The structure of a template: text, "{{ expr }}", "{% if/elif/else/endif %}",
// "{% for %}...{% else %}...{% endfor %}", "{% set %}", "{# comment #}", and Jinja2's
// whitespace control ("{%-", "-%}", trim_blocks;
// https://jinja.palletsprojects.com/en/stable/templates/#whitespace-control).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "template.h"
#include "template/parser.h"

namespace zdm::deploy::tmpl {

// A piece of template text: plain text, the inside of "{{ }}" (Var) or of "{% %}" (Block),
// whitespace control applied and the '-' markers removed. Comments leave no segment.
struct Segment {
  enum Kind { Text, Var, Block } kind;
  std::string text;
  int line;  // where the piece starts
};

// Cuts `text` into segments; src.line is the line of its first character. trim_blocks drops the
// first newline after a block or comment tag. A '{' not followed by '{', '%' or '#' is text.
// Throws TemplateError "file:line: unclosed '{{' tag" (or '{%', '{#').
std::vector<Segment> split_segments(std::string_view text, const Source& src, bool trim_blocks);

struct Node {
  enum Kind { Text, Output, If, For, Set } kind = Text;
  int line = 1;
  std::string text;                                             // Text
  ExprPtr expr;                                                 // Output, For (iterable), Set
  std::vector<std::pair<ExprPtr, std::vector<Node>>> branches;  // If: (cond, body)...
  std::vector<Node> else_body;                                  // If, For
  std::vector<std::string> vars;                                // For (loop variables), Set
  std::vector<Node> body;                                       // For
};

// Builds the node tree, parsing every expression. Throws TemplateError "file:line: ..." for an
// unknown or unexpected tag, 'if' without 'endif', 'for' without 'endfor', blocks nested deeper
// than kMaxNesting, or a syntax error in an expression (see parse_expression).
std::vector<Node> parse_template(std::vector<Segment> segments, const Source& src);

}  // namespace zdm::deploy::tmpl
