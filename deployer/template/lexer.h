// The lexer of Jinja2 expressions (the text inside "{{ }}" and after a "{% %}" keyword).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "template.h"

namespace zdm::deploy::tmpl {

struct Token {
  enum Kind { Name, Int, Float, String, Op, End } kind = End;
  std::string text;  // as written; a String's text is its value, escapes resolved
  Json value;        // Int: long long, Float: double, String: the string; null otherwise
};

// Splits `expr` into tokens, the last one End. Names are [A-Za-z_][A-Za-z0-9_]*; numbers are
// decimal integers or "digits.digits"; strings are '...' or "..." with \n, \t and \<char>
// escapes; operators are the ones of Jinja2's lexer that this subset uses
// (== != <= >= // < > + - * / % ~ | . , : ( ) [ ] { } =). Keywords (and, or, not, in, is, if,
// else) are Names.
// Throws TemplateError "file:line: ..." (line is `line`) for an unterminated string, a number out
// of long long's or double's range, or a character that starts no token.
std::vector<Token> tokenize(std::string_view expr, const Source& src, int line);

}  // namespace zdm::deploy::tmpl
