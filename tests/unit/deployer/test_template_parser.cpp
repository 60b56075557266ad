// deployer/template/parser.h and blocks.h: the shapes of expressions and of templates.
#include <doctest/doctest.h>

#include <string>

#include "template/blocks.h"
#include "template/parser.h"

using namespace zdm::deploy;
using namespace zdm::deploy::tmpl;

namespace {

const Source kSrc{"t.j2", 1};

// An S-expression of the AST: (op args...), literals as JSON, names bare.
std::string sexp(const Expr& e) {
  auto rest = [&](size_t from) {
    std::string s;
    for (size_t i = from; i < e.args.size(); ++i) s += " " + sexp(*e.args[i]);
    for (auto& [k, v] : e.kwargs) s += " " + k + "=" + sexp(*v);
    return s;
  };
  switch (e.kind) {
    case Expr::Literal:
      return e.value.dump();
    case Expr::Name:
      return e.name;
    case Expr::Attr:
      return "(. " + sexp(*e.args[0]) + " " + e.name + ")";
    case Expr::Index:
      return "([]" + rest(0) + ")";
    case Expr::Call:
      return "(call" + rest(0) + ")";
    case Expr::Filter:
      return "(| " + e.name + rest(0) + ")";
    case Expr::Test:
      return std::string(e.negate ? "(is-not " : "(is ") + e.name + rest(0) + ")";
    case Expr::Unary:
    case Expr::Binary:
      return "(" + e.name + rest(0) + ")";
    case Expr::List:
      return "(list" + rest(0) + ")";
    case Expr::Dict:
      return "(dict" + rest(0) + ")";
    case Expr::Cond:
      return "(if" + rest(0) + ")";
  }
  return "?";
}

std::string p(std::string_view text) {
  return sexp(*parse_expression(text, kSrc, 1));
}

}  // namespace

TEST_CASE("parser: operator precedence, lowest first") {
  CHECK(p("1 + 2 * 3") == "(+ 1 (* 2 3))");
  CHECK(p("(1 + 2) * 3") == "(* (+ 1 2) 3)");
  CHECK(p("a - b - c") == "(- (- a b) c)");
  CHECK(p("a or b and not c") == "(or a (and b (not c)))");
  CHECK(p("a ~ b + c") == "(~ a (+ b c))");
  CHECK(p("a == b ~ c") == "(== a (~ b c))");
  CHECK(p("-x | abs") == "(- (| abs x))");
  CHECK(p("x // 2 % 3 / 4") == "(/ (% (// x 2) 3) 4)");
  CHECK(p("'a' if c else 'b'") == R"((if "a" c "b"))");
  CHECK(p("'a' if c") == R"((if "a" c))");
}

TEST_CASE("parser: membership and tests") {
  CHECK(p("a in b") == "(in a b)");
  CHECK(p("a not in b") == "(not (in a b))");
  CHECK(p("x is defined") == "(is defined x)");
  CHECK(p("x is not defined") == "(is-not defined x)");
  CHECK(p("x is eq(1)") == "(is eq x 1)");
  CHECK(p("x is divisibleby 3") == "(is divisibleby x 3)");
}

TEST_CASE("parser: postfix, filters, calls") {
  CHECK(p("a.b[0].c") == "(. ([] (. a b) 0) c)");
  CHECK(p("a.0") == "([] a 0)");
  CHECK(p("x | default('d') | upper") == R"((| upper (| default x "d")))");
  CHECK(p("x | map(attribute='a')") == R"((| map x attribute="a"))");
  CHECK(p("lookup('env', 'HOME', default='')") == R"((call lookup "env" "HOME" default=""))");
  CHECK(p("h.index(n)") == "(call (. h index) n)");
}

TEST_CASE("parser: literals") {
  CHECK(p("[1, 'a', [],]") == R"((list 1 "a" (list)))");
  CHECK(p("{'k': 1, 2: v}") == R"((dict "k" 1 2 v))");
  CHECK(p("True") == "true");
  CHECK(p("false") == "false");
  CHECK(p("None") == "null");
  CHECK(p("null") == "null");
  CHECK(p("'a' 'b' \"c\"") == R"("abc")");
  CHECK(p("2.5") == "2.5");
}

TEST_CASE("parser: for and set headers") {
  auto [vars, iter] = parse_for_header("k, v in d.items()", kSrc, 1);
  CHECK(vars == std::vector<std::string>{"k", "v"});
  CHECK(sexp(*iter) == "(call (. d items))");
  auto [name, value] = parse_set_header("x = 1 + y", kSrc, 1);
  CHECK(name == "x");
  CHECK(sexp(*value) == "(+ 1 y)");
  CHECK_THROWS_WITH_AS(parse_for_header("x of y", kSrc, 3),
                       "t.j2:3: syntax error in expression 'x of y': expected 'in'", TemplateError);
  CHECK_THROWS_WITH_AS(parse_set_header("x 1", kSrc, 1),
                       "t.j2:1: syntax error in expression 'x 1': expected '='", TemplateError);
}

TEST_CASE("parser: syntax errors") {
  CHECK_THROWS_WITH_AS(p("a +"),
                       "t.j2:1: syntax error in expression 'a +': unexpected end of expression",
                       TemplateError);
  CHECK_THROWS_WITH_AS(p("a b"), "t.j2:1: syntax error in expression 'a b': unexpected 'b'",
                       TemplateError);
  CHECK_THROWS_WITH_AS(p("f(1"), "t.j2:1: syntax error in expression 'f(1': expected ')'",
                       TemplateError);
  CHECK_THROWS_WITH_AS(
      p("x | 1"), "t.j2:1: syntax error in expression 'x | 1': expected a filter name after '|'",
      TemplateError);
  CHECK_THROWS_WITH_AS(
      p("x is 1"), "t.j2:1: syntax error in expression 'x is 1': expected a test name after 'is'",
      TemplateError);
}

TEST_CASE("blocks: segments with whitespace control and lines") {
  auto segs = split_segments("a\n{{ x }} {#c#}\n {%- if y -%}\n b{% endif %}\n", kSrc, false);
  REQUIRE(segs.size() == 7);
  CHECK(segs[0].kind == Segment::Text);
  CHECK(segs[0].text == "a\n");
  CHECK(segs[1].kind == Segment::Var);
  CHECK(segs[1].text == " x ");
  CHECK(segs[1].line == 2);
  CHECK(segs[2].text == " ");  // before the comment; "\n " after it is stripped by "{%-"
  CHECK(segs[3].kind == Segment::Block);
  CHECK(segs[3].text == " if y ");
  CHECK(segs[3].line == 3);
  CHECK(segs[4].text == "b");  // "-%}" stripped "\n "
  CHECK(segs[5].text == " endif ");
  CHECK(segs[6].text == "\n");
  // trim_blocks drops the newline after a block tag, not after "}}".
  auto trimmed = split_segments("{% if y %}\nA{{ x }}\nB", kSrc, true);
  REQUIRE(trimmed.size() == 4);
  CHECK(trimmed[1].text == "A");
  CHECK(trimmed[3].text == "\nB");
  CHECK(split_segments("{ not a tag }", kSrc, false).size() == 1);
  CHECK_THROWS_WITH_AS(split_segments("x\n{% if", kSrc, false), "t.j2:2: unclosed '{%' tag",
                       TemplateError);
}

TEST_CASE("blocks: the node tree") {
  auto nodes = parse_template(
      split_segments("{% if a %}1{% elif b %}2{% else %}3{% endif %}"
                     "{% for k, v in d %}{{ k }}{% else %}none{% endfor %}{% set z = 1 %}",
                     kSrc, false),
      kSrc);
  REQUIRE(nodes.size() == 3);
  CHECK(nodes[0].kind == Node::If);
  REQUIRE(nodes[0].branches.size() == 2);
  CHECK(sexp(*nodes[0].branches[1].first) == "b");
  CHECK(nodes[0].else_body.at(0).text == "3");
  CHECK(nodes[1].kind == Node::For);
  CHECK(nodes[1].vars == std::vector<std::string>{"k", "v"});
  CHECK(nodes[1].body.at(0).kind == Node::Output);
  CHECK(nodes[1].else_body.at(0).text == "none");
  CHECK(nodes[2].kind == Node::Set);
  CHECK(nodes[2].vars == std::vector<std::string>{"z"});
  auto parse = [](std::string_view t) {
    return parse_template(split_segments(t, kSrc, false), kSrc);
  };
  CHECK_THROWS_WITH_AS(parse("{% for x in y %}"), "t.j2:1: 'for' without 'endfor'", TemplateError);
  CHECK_THROWS_WITH_AS(parse("\n{% endif %}"), "t.j2:2: unknown or unexpected tag 'endif'",
                       TemplateError);
  CHECK_THROWS_WITH_AS(parse("{% include 'x' %}"), "t.j2:1: unknown or unexpected tag 'include'",
                       TemplateError);
}
