#include "template/parser.h"

#include <algorithm>

#include <fmt/format.h>

#include "template/common.h"
#include "template/lexer.h"

namespace zdm::deploy::tmpl {

ExprPtr make_expr(Expr::Kind k, std::string name, std::vector<ExprPtr> args) {
  auto e = std::make_shared<Expr>();
  e->kind = k;
  e->name = std::move(name);
  e->args = std::move(args);
  return e;
}

namespace {

// A recursive-descent parser, one method per precedence level.
class Parser {
 public:
  Parser(std::string_view text, const Source& src, int line)
      : text_(text), src_(src), line_(line), toks_(tokenize(text, src, line)) {
    // "a.b.c...", "x + x + ..." nest one level per operator without recursing in the parser;
    // evaluating and freeing them does recurse.
    if (toks_.size() > kMaxTokens) error(fmt::format("longer than {} tokens", kMaxTokens));
  }

  ExprPtr parse_all() {
    auto e = expr();
    expect_end();
    return e;
  }

  std::pair<std::vector<std::string>, ExprPtr> parse_for() {
    std::vector<std::string> vars;
    do {
      if (peek().kind != Token::Name) error("expected a loop variable");
      vars.push_back(next().text);
    } while (accept_op(","));
    if (!accept_name("in")) error("expected 'in'");
    auto e = expr();
    expect_end();
    return {vars, e};
  }

  std::pair<std::string, ExprPtr> parse_set() {
    if (peek().kind != Token::Name) error("expected a variable name");
    std::string name = next().text;
    if (!accept_op("=")) error("expected '='");
    auto e = expr();
    expect_end();
    return {name, e};
  }

 private:
  [[noreturn]] void error(const std::string& msg) const {
    throw TemplateError(
        fmt::format("{}:{}: syntax error in expression '{}': {}", src_.name, line_, text_, msg));
  }
  const Token& peek(size_t ahead = 0) const {
    return toks_[std::min(pos_ + ahead, toks_.size() - 1)];
  }
  const Token& next() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).kind == Token::Op && peek(ahead).text == op;
  }
  bool is_name(const char* n, size_t ahead = 0) const {
    return peek(ahead).kind == Token::Name && peek(ahead).text == n;
  }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    ++pos_;
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    ++pos_;
    return true;
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) error(fmt::format("expected '{}'", op));
  }
  void expect_end() {
    if (peek().kind != Token::End) error(fmt::format("unexpected '{}'", peek().text));
  }
  void nest() {
    if (depth_ > kMaxNesting) error(fmt::format("nested deeper than {} levels", kMaxNesting));
  }

  ExprPtr expr() {
    NestingGuard guard(depth_);
    nest();
    auto e = or_expr();
    if (accept_name("if")) {
      auto cond = or_expr();
      ExprPtr otherwise;
      if (accept_name("else")) otherwise = expr();
      auto c = make_expr(Expr::Cond, {}, {e, cond});
      if (otherwise) c->args.push_back(otherwise);
      return c;
    }
    return e;
  }
  ExprPtr or_expr() {
    auto e = and_expr();
    while (accept_name("or")) e = make_expr(Expr::Binary, "or", {e, and_expr()});
    return e;
  }
  ExprPtr and_expr() {
    auto e = not_expr();
    while (accept_name("and")) e = make_expr(Expr::Binary, "and", {e, not_expr()});
    return e;
  }
  ExprPtr not_expr() {
    NestingGuard guard(depth_);
    nest();
    if (accept_name("not")) return make_expr(Expr::Unary, "not", {not_expr()});
    return compare();
  }
  ExprPtr compare() {
    auto e = concat();
    while (true) {
      static const char* cmp[] = {"==", "!=", "<=", ">=", "<", ">"};
      bool done = true;
      for (const char* op : cmp) {
        if (accept_op(op)) {
          e = make_expr(Expr::Binary, op, {e, concat()});
          done = false;
          break;
        }
      }
      if (!done) continue;
      if (accept_name("in")) {
        e = make_expr(Expr::Binary, "in", {e, concat()});
      } else if (is_name("not") && is_name("in", 1)) {
        pos_ += 2;
        e = make_expr(Expr::Unary, "not", {make_expr(Expr::Binary, "in", {e, concat()})});
      } else if (accept_name("is")) {
        e = test(e);
      } else {
        return e;
      }
    }
  }
  // After "x is": [not] name, then (args) or one literal argument.
  ExprPtr test(const ExprPtr& subject) {
    bool negate = accept_name("not");
    if (peek().kind != Token::Name) error("expected a test name after 'is'");
    auto t = make_expr(Expr::Test, next().text, {subject});
    t->negate = negate;
    if (accept_op("(")) {
      call_args(*t);
    } else if (peek().kind == Token::Int || peek().kind == Token::String ||
               peek().kind == Token::Float) {
      t->args.push_back(primary());
    }
    return t;
  }
  ExprPtr concat() {
    auto e = additive();
    while (accept_op("~")) e = make_expr(Expr::Binary, "~", {e, additive()});
    return e;
  }
  ExprPtr additive() {
    auto e = mult();
    while (true) {
      if (accept_op("+"))
        e = make_expr(Expr::Binary, "+", {e, mult()});
      else if (accept_op("-"))
        e = make_expr(Expr::Binary, "-", {e, mult()});
      else
        return e;
    }
  }
  ExprPtr mult() {
    auto e = unary();
    while (true) {
      if (accept_op("*"))
        e = make_expr(Expr::Binary, "*", {e, unary()});
      else if (accept_op("//"))
        e = make_expr(Expr::Binary, "//", {e, unary()});
      else if (accept_op("/"))
        e = make_expr(Expr::Binary, "/", {e, unary()});
      else if (accept_op("%"))
        e = make_expr(Expr::Binary, "%", {e, unary()});
      else
        return e;
    }
  }
  ExprPtr unary() {
    NestingGuard guard(depth_);
    nest();
    if (accept_op("-")) return make_expr(Expr::Unary, "-", {unary()});
    if (accept_op("+")) return unary();
    return filtered();
  }
  ExprPtr filtered() {
    auto e = postfix();
    while (accept_op("|")) {
      if (peek().kind != Token::Name) error("expected a filter name after '|'");
      auto f = make_expr(Expr::Filter, next().text, {e});
      if (accept_op("(")) call_args(*f);
      e = f;
    }
    return e;
  }
  // After "(": positional and key=value arguments up to ")".
  void call_args(Expr& target) {
    if (accept_op(")")) return;
    do {
      if (peek().kind == Token::Name && is_op("=", 1)) {
        std::string key = next().text;
        next();
        target.kwargs.emplace_back(key, expr());
      } else {
        target.args.push_back(expr());
      }
    } while (accept_op(","));
    expect_op(")");
  }
  ExprPtr postfix() {
    auto e = primary();
    while (true) {
      if (accept_op(".")) {
        if (peek().kind != Token::Name && peek().kind != Token::Int)
          error("expected an attribute name after '.'");
        const Token& t = next();
        if (t.kind == Token::Int) {  // "x.0" is x[0]
          auto lit = make_expr(Expr::Literal);
          lit->value = t.value;
          e = make_expr(Expr::Index, {}, {e, lit});
        } else {
          e = make_expr(Expr::Attr, t.text, {e});
        }
      } else if (accept_op("[")) {
        auto idx = expr();
        expect_op("]");
        e = make_expr(Expr::Index, {}, {e, idx});
      } else if (is_op("(")) {
        next();
        auto c = make_expr(Expr::Call, {}, {e});
        call_args(*c);
        e = c;
      } else {
        return e;
      }
    }
  }
  ExprPtr primary() {
    const Token& t = peek();
    switch (t.kind) {
      case Token::Int:
      case Token::Float:
      case Token::String: {
        next();
        auto lit = make_expr(Expr::Literal);
        lit->value = t.value;
        // Adjacent string literals concatenate.
        while (lit->value.is_string() && peek().kind == Token::String)
          lit->value = lit->value.get<std::string>() + next().text;
        return lit;
      }
      case Token::Name:
        next();
        return name(t.text);
      case Token::Op:
        return bracketed(t);
      case Token::End:
        error("unexpected end of expression");
    }
    error("unexpected token");
  }
  ExprPtr name(const std::string& text) {
    auto lit = make_expr(Expr::Literal);
    if (text == "true" || text == "True") {
      lit->value = true;
      return lit;
    }
    if (text == "false" || text == "False") {
      lit->value = false;
      return lit;
    }
    if (text == "none" || text == "None" || text == "null") {
      lit->value = nullptr;
      return lit;
    }
    return make_expr(Expr::Name, text);
  }
  // ( expr ), [ list ], { dict }: a trailing comma is allowed in lists and dicts.
  ExprPtr bracketed(const Token& t) {
    if (accept_op("(")) {
      auto e = expr();
      expect_op(")");
      return e;
    }
    if (accept_op("[")) {
      auto l = make_expr(Expr::List);
      if (!accept_op("]")) {
        do {
          if (is_op("]")) break;
          l->args.push_back(expr());
        } while (accept_op(","));
        expect_op("]");
      }
      return l;
    }
    if (accept_op("{")) {
      auto d = make_expr(Expr::Dict);
      if (!accept_op("}")) {
        do {
          if (is_op("}")) break;
          auto k = expr();
          expect_op(":");
          d->args.push_back(k);
          d->args.push_back(expr());
        } while (accept_op(","));
        expect_op("}");
      }
      return d;
    }
    error(fmt::format("unexpected '{}'", t.text));
  }

  std::string_view text_;
  const Source& src_;
  int line_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

ExprPtr parse_expression(std::string_view text, const Source& src, int line) {
  return Parser(text, src, line).parse_all();
}

std::pair<std::vector<std::string>, ExprPtr> parse_for_header(std::string_view text,
                                                              const Source& src, int line) {
  return Parser(text, src, line).parse_for();
}

std::pair<std::string, ExprPtr> parse_set_header(std::string_view text, const Source& src,
                                                 int line) {
  return Parser(text, src, line).parse_set();
}

}  // namespace zdm::deploy::tmpl
