#include "template/lexer.h"

#include <cctype>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace zdm::deploy::tmpl {
namespace {

bool is_digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

class Lexer {
 public:
  Lexer(std::string_view s, const Source& src, int line) : s_(s), src_(src), line_(line) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    while (true) {
      while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ >= s_.size()) break;
      char c = s_[i_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_')
        out.push_back(name());
      else if (is_digit(c))
        out.push_back(number());
      else if (c == '\'' || c == '"')
        out.push_back(string(c));
      else
        out.push_back(op(c));
    }
    out.push_back({Token::End, "", nullptr});
    return out;
  }

 private:
  [[noreturn]] void error(const std::string& msg) const {
    throw TemplateError(fmt::format("{}:{}: {} in expression '{}'", src_.name, line_, msg, s_));
  }

  Token name() {
    size_t b = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_'))
      ++i_;
    return {Token::Name, std::string(s_.substr(b, i_ - b)), nullptr};
  }

  Token number() {
    size_t b = i_;
    while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    bool is_float = false;
    if (i_ + 1 < s_.size() && s_[i_] == '.' && is_digit(s_[i_ + 1])) {
      is_float = true;
      ++i_;
      while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
    }
    std::string t(s_.substr(b, i_ - b));
    try {
      if (is_float) return {Token::Float, t, std::stod(t)};
      return {Token::Int, t, std::stoll(t)};
    } catch (const std::out_of_range&) {
      error(fmt::format("number {} out of range", t));
    }
  }

  Token string(char quote) {
    std::string v;
    ++i_;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) {
        char e = s_[++i_];
        v += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        v += s_[i_];
      }
      ++i_;
    }
    if (i_ >= s_.size()) error("unterminated string");
    ++i_;
    return {Token::String, v, v};
  }

  Token op(char c) {
    // Two-character operators first.
    static const char* ops[] = {"==", "!=", "<=", ">=", "//", "<", ">", "+", "-", "*", "/", "%",
                                "~",  "|",  ".",  ",",  ":",  "(", ")", "[", "]", "{", "}", "="};
    for (const char* o : ops) {
      size_t n = std::strlen(o);
      if (s_.substr(i_, n) == o) {
        i_ += n;
        return {Token::Op, o, nullptr};
      }
    }
    error(fmt::format("unexpected character '{}'", c));
  }

  std::string_view s_;
  const Source& src_;
  int line_;
  size_t i_ = 0;
};

}  // namespace

std::vector<Token> tokenize(std::string_view expr, const Source& src, int line) {
  return Lexer(expr, src, line).run();
}

}  // namespace zdm::deploy::tmpl
