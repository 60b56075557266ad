// deployer/template/lexer.h: the tokens of Jinja2 expressions.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "template/lexer.h"

using namespace zdm::deploy;
using namespace zdm::deploy::tmpl;

namespace {

const Source kSrc{"t.j2", 1};

// "Kind:text" per token, End included.
std::vector<std::string> kinds(std::string_view expr) {
  static const char* names[] = {"Name", "Int", "Float", "String", "Op", "End"};
  std::vector<std::string> out;
  for (const Token& t : tokenize(expr, kSrc, 1))
    out.push_back(std::string(names[t.kind]) + ":" + t.text);
  return out;
}

}  // namespace

TEST_CASE("lexer: names, numbers, strings and operators") {
  CHECK(kinds("a_1.b | default(2) ~ 'x'") ==
        std::vector<std::string>{"Name:a_1", "Op:.", "Name:b", "Op:|", "Name:default", "Op:(",
                                 "Int:2", "Op:)", "Op:~", "String:x", "End:"});
  CHECK(kinds("") == std::vector<std::string>{"End:"});
  CHECK(kinds("  \t\n ") == std::vector<std::string>{"End:"});
}

TEST_CASE("lexer: two-character operators win over their first character") {
  CHECK(kinds("a==b!=c<=d>=e//f<g>h=i") ==
        std::vector<std::string>{"Name:a", "Op:==", "Name:b", "Op:!=", "Name:c", "Op:<=", "Name:d",
                                 "Op:>=", "Name:e", "Op://", "Name:f", "Op:<", "Name:g", "Op:>",
                                 "Name:h", "Op:=", "Name:i", "End:"});
  CHECK(kinds("+-*/%,:[]{}") == std::vector<std::string>{"Op:+", "Op:-", "Op:*", "Op:/", "Op:%",
                                                         "Op:,", "Op::", "Op:[", "Op:]", "Op:{",
                                                         "Op:}", "End:"});
}

TEST_CASE("lexer: number values") {
  auto toks = tokenize("42 2.5 7.x", kSrc, 1);
  REQUIRE(toks.size() == 6);
  CHECK(toks[0].value == 42);
  CHECK(toks[0].value.is_number_integer());
  CHECK(toks[1].kind == Token::Float);
  CHECK(toks[1].value == 2.5);
  // "7." without a digit after the dot is an Int and an attribute access.
  CHECK(toks[2].kind == Token::Int);
  CHECK(toks[3].text == ".");
  CHECK(toks[4].text == "x");
}

TEST_CASE("lexer: string escapes and both quotes") {
  auto toks = tokenize(R"('a\nb\t\'c' "d'e\\")", kSrc, 1);
  REQUIRE(toks.size() == 3);
  CHECK(toks[0].kind == Token::String);
  CHECK(toks[0].value == "a\nb\t'c");
  CHECK(toks[1].value == "d'e\\");
}

TEST_CASE("lexer: errors name file, line and expression") {
  CHECK_THROWS_WITH_AS(tokenize("'abc", Source{"x.j2", 1}, 7),
                       "x.j2:7: unterminated string in expression ''abc'", TemplateError);
  CHECK_THROWS_WITH_AS(tokenize("a ? b", kSrc, 2),
                       "t.j2:2: unexpected character '?' in expression 'a ? b'", TemplateError);
  CHECK_THROWS_WITH_AS(tokenize("99999999999999999999", kSrc, 1),
                       "t.j2:1: number 99999999999999999999 out of range in expression "
                       "'99999999999999999999'",
                       TemplateError);
}
