#include "template.h"

#include "lookup.h"
#include "transport.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <regex>
#include <vector>

#include <fmt/format.h>

namespace zdm::deploy {
namespace {

// A value as text for messages and output. Strings from a template or a vars file need not be
// valid UTF-8; dump() would throw json's type_error past every caller.
std::string show(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Deepest nesting of expressions ("((((x))))", "[[[x]]]", "- - x") and of blocks
// ("{% if %}{% if %}..."). The parsers and the evaluator recurse once per level: a bound keeps a
// template from exhausting the stack. Real templates nest a few levels.
constexpr int kMaxNesting = 100;
// Longest expression, in tokens.
constexpr std::size_t kMaxTokens = 1000;

// Counts one level of recursion for the lifetime of the guard.
struct NestingGuard {
  explicit NestingGuard(int& depth) : depth_(depth) { ++depth_; }
  ~NestingGuard() { --depth_; }
  NestingGuard(const NestingGuard&) = delete;
  NestingGuard& operator=(const NestingGuard&) = delete;
  int& depth_;
};

// ---------------------------------------------------------------- expression lexer

struct Token {
  enum Kind { Name, Int, Float, String, Op, End } kind = End;
  std::string text;
  Json value;
};

class Lexer {
 public:
  Lexer(std::string_view s, const Source& src, int line) : s_(s), src_(src), line_(line) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    size_t i = 0;
    while (true) {
      while (i < s_.size() && std::isspace(static_cast<unsigned char>(s_[i]))) ++i;
      if (i >= s_.size()) break;
      char c = s_[i];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t b = i;
        while (i < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i])) || s_[i] == '_'))
          ++i;
        out.push_back({Token::Name, std::string(s_.substr(b, i - b)), nullptr});
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t b = i;
        while (i < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i]))) ++i;
        bool is_float = false;
        if (i + 1 < s_.size() && s_[i] == '.' &&
            std::isdigit(static_cast<unsigned char>(s_[i + 1]))) {
          is_float = true;
          ++i;
          while (i < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i]))) ++i;
        }
        std::string t(s_.substr(b, i - b));
        try {
          if (is_float)
            out.push_back({Token::Float, t, std::stod(t)});
          else
            out.push_back({Token::Int, t, std::stoll(t)});
        } catch (const std::out_of_range&) {
          throw TemplateError(fmt::format("{}:{}: number {} out of range in expression '{}'",
                                          src_.name, line_, t, s_));
        }
      } else if (c == '\'' || c == '"') {
        std::string v;
        ++i;
        while (i < s_.size() && s_[i] != c) {
          if (s_[i] == '\\' && i + 1 < s_.size()) {
            char e = s_[++i];
            v += e == 'n' ? '\n' : e == 't' ? '\t' : e;
          } else {
            v += s_[i];
          }
          ++i;
        }
        if (i >= s_.size())
          throw TemplateError(
              fmt::format("{}:{}: unterminated string in expression '{}'", src_.name, line_, s_));
        ++i;
        out.push_back({Token::String, v, v});
      } else {
        static const char* ops[] = {"==", "!=", "<=", ">=", "//", "<", ">", "+",
                                    "-",  "*",  "/",  "%",  "~",  "|", ".", ",",
                                    ":",  "(",  ")",  "[",  "]",  "{", "}", "="};
        bool matched = false;
        for (const char* op : ops) {
          size_t n = std::strlen(op);
          if (s_.substr(i, n) == op) {
            out.push_back({Token::Op, op, nullptr});
            i += n;
            matched = true;
            break;
          }
        }
        if (!matched)
          throw TemplateError(fmt::format("{}:{}: unexpected character '{}' in expression '{}'",
                                          src_.name, line_, c, s_));
      }
    }
    out.push_back({Token::End, "", nullptr});
    return out;
  }

 private:
  std::string_view s_;
  const Source& src_;
  int line_;
};

// ---------------------------------------------------------------- expression AST

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

struct Expr {
  enum Kind { Literal, Name, Attr, Index, Call, Filter, Test, Unary, Binary, List, Dict, Cond };
  Kind kind;
  Json value;        // Literal
  std::string name;  // Name, Attr, Filter, Test, Unary/Binary operator, Call (function name)
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negate = false;  // "is not"
};

ExprPtr make(Expr::Kind k, std::string name = {}, std::vector<ExprPtr> args = {}) {
  auto e = std::make_shared<Expr>();
  e->kind = k;
  e->name = std::move(name);
  e->args = std::move(args);
  return e;
}

class Parser {
 public:
  Parser(std::string_view text, const Source& src, int line)
      : text_(text), src_(src), line_(line), toks_(Lexer(text, src, line).run()) {
    // "a.b.c...", "x + x + ..." nest one level per operator without recursing in the parser;
    // evaluating and freeing them does recurse.
    if (toks_.size() > kMaxTokens) error(fmt::format("longer than {} tokens", kMaxTokens));
  }

  ExprPtr parse_all() {
    auto e = expr();
    if (peek().kind != Token::End) error(fmt::format("unexpected '{}'", peek().text));
    return e;
  }

  // For "{% for a, b in expr %}": the loop variables, then the iterable.
  std::pair<std::vector<std::string>, ExprPtr> parse_for() {
    std::vector<std::string> vars;
    do {
      if (peek().kind != Token::Name) error("expected a loop variable");
      vars.push_back(next().text);
    } while (accept_op(","));
    if (!accept_name("in")) error("expected 'in'");
    auto e = expr();
    if (peek().kind != Token::End) error(fmt::format("unexpected '{}'", peek().text));
    return {vars, e};
  }

  // For "{% set x = expr %}".
  std::pair<std::string, ExprPtr> parse_set() {
    if (peek().kind != Token::Name) error("expected a variable name");
    std::string name = next().text;
    if (!accept_op("=")) error("expected '='");
    auto e = expr();
    if (peek().kind != Token::End) error(fmt::format("unexpected '{}'", peek().text));
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
      auto c = make(Expr::Cond, {}, {e, cond});
      if (otherwise) c->args.push_back(otherwise);
      return c;
    }
    return e;
  }
  ExprPtr or_expr() {
    auto e = and_expr();
    while (accept_name("or")) e = make(Expr::Binary, "or", {e, and_expr()});
    return e;
  }
  ExprPtr and_expr() {
    auto e = not_expr();
    while (accept_name("and")) e = make(Expr::Binary, "and", {e, not_expr()});
    return e;
  }
  ExprPtr not_expr() {
    NestingGuard guard(depth_);
    nest();
    if (accept_name("not")) return make(Expr::Unary, "not", {not_expr()});
    return compare();
  }
  ExprPtr compare() {
    auto e = concat();
    while (true) {
      static const char* cmp[] = {"==", "!=", "<=", ">=", "<", ">"};
      bool done = true;
      for (const char* op : cmp) {
        if (accept_op(op)) {
          e = make(Expr::Binary, op, {e, concat()});
          done = false;
          break;
        }
      }
      if (!done) continue;
      if (accept_name("in")) {
        e = make(Expr::Binary, "in", {e, concat()});
      } else if (is_name("not") && is_name("in", 1)) {
        pos_ += 2;
        e = make(Expr::Unary, "not", {make(Expr::Binary, "in", {e, concat()})});
      } else if (accept_name("is")) {
        bool negate = accept_name("not");
        if (peek().kind != Token::Name) error("expected a test name after 'is'");
        auto t = make(Expr::Test, next().text, {e});
        t->negate = negate;
        if (accept_op("(")) {
          call_args(*t);
        } else if (peek().kind == Token::Int || peek().kind == Token::String ||
                   peek().kind == Token::Float) {
          t->args.push_back(primary());
        }
        e = t;
      } else {
        return e;
      }
    }
  }
  ExprPtr concat() {
    auto e = additive();
    while (accept_op("~")) e = make(Expr::Binary, "~", {e, additive()});
    return e;
  }
  ExprPtr additive() {
    auto e = mult();
    while (true) {
      if (accept_op("+"))
        e = make(Expr::Binary, "+", {e, mult()});
      else if (accept_op("-"))
        e = make(Expr::Binary, "-", {e, mult()});
      else
        return e;
    }
  }
  ExprPtr mult() {
    auto e = unary();
    while (true) {
      if (accept_op("*"))
        e = make(Expr::Binary, "*", {e, unary()});
      else if (accept_op("//"))
        e = make(Expr::Binary, "//", {e, unary()});
      else if (accept_op("/"))
        e = make(Expr::Binary, "/", {e, unary()});
      else if (accept_op("%"))
        e = make(Expr::Binary, "%", {e, unary()});
      else
        return e;
    }
  }
  ExprPtr unary() {
    NestingGuard guard(depth_);
    nest();
    if (accept_op("-")) return make(Expr::Unary, "-", {unary()});
    if (accept_op("+")) return unary();
    return filtered();
  }
  ExprPtr filtered() {
    auto e = postfix();
    while (accept_op("|")) {
      if (peek().kind != Token::Name) error("expected a filter name after '|'");
      auto f = make(Expr::Filter, next().text, {e});
      if (accept_op("(")) call_args(*f);
      e = f;
    }
    return e;
  }
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
        if (t.kind == Token::Int) {
          auto lit = make(Expr::Literal);
          lit->value = t.value;
          e = make(Expr::Index, {}, {e, lit});
        } else {
          e = make(Expr::Attr, t.text, {e});
        }
      } else if (accept_op("[")) {
        auto idx = expr();
        expect_op("]");
        e = make(Expr::Index, {}, {e, idx});
      } else if (is_op("(")) {
        next();
        auto c = make(Expr::Call, {}, {e});
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
        auto lit = make(Expr::Literal);
        lit->value = t.value;
        // Adjacent string literals concatenate.
        while (lit->value.is_string() && peek().kind == Token::String)
          lit->value = lit->value.get<std::string>() + next().text;
        return lit;
      }
      case Token::Name: {
        next();
        auto lit = make(Expr::Literal);
        if (t.text == "true" || t.text == "True") {
          lit->value = true;
          return lit;
        }
        if (t.text == "false" || t.text == "False") {
          lit->value = false;
          return lit;
        }
        if (t.text == "none" || t.text == "None" || t.text == "null") {
          lit->value = nullptr;
          return lit;
        }
        return make(Expr::Name, t.text);
      }
      case Token::Op:
        if (accept_op("(")) {
          auto e = expr();
          expect_op(")");
          return e;
        }
        if (accept_op("[")) {
          auto l = make(Expr::List);
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
          auto d = make(Expr::Dict);
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
      case Token::End:
        error("unexpected end of expression");
    }
    error("unexpected token");
  }

  std::string_view text_;
  const Source& src_;
  int line_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// ---------------------------------------------------------------- evaluation

struct Val {
  Val(Json value = nullptr, bool undef = false, std::string name = {})
      : j(std::move(value)), undefined(undef), path(std::move(name)) {}
  Json j;
  bool undefined;
  std::string path;  // the variable's name, e.g. "hostvars['x'].y"
};

thread_local int g_depth = 0;

class Evaluator {
 public:
  Evaluator(const Json& scope, const Source& src) : scope_(scope), src_(src) {}

  int line = 1;
  std::vector<std::pair<std::string, Json>> locals;

  [[noreturn]] void error(const std::string& msg) const {
    throw TemplateError(fmt::format("{}:{}: {}", src_.name, line, msg));
  }

  Json value(const Expr& e) { return need(eval(e)); }

  Json need(const Val& v) const {
    if (v.undefined) error(fmt::format("undefined variable '{}'", v.path));
    return v.j;
  }

  static bool has_template(const Json& j) {
    if (j.is_string()) return is_template(j.get_ref<const std::string&>());
    if (j.is_array() || j.is_object())
      for (const auto& v : j)
        if (has_template(v)) return true;
    return false;
  }

  // Lazily renders variables whose value is a template, or a list holding templates (a list
  // is used whole: joined, mapped, looped over). A mapping's values are rendered one by one
  // as they are looked up (member()), so an unused one never fails.
  Json resolve(const Json& j, const std::string& name) {
    if (j.is_array() ? !has_template(j)
                     : !j.is_string() || !is_template(j.get_ref<const std::string&>()))
      return j;
    if (g_depth > 20) error(fmt::format("recursive loop detected in variable '{}'", name));
    ++g_depth;
    struct Guard {
      ~Guard() { --g_depth; }
    } guard;
    return render_value(j, scope_, Source{src_.name, line});
  }

  Val lookup(const std::string& name) {
    for (auto it = locals.rbegin(); it != locals.rend(); ++it)
      if (it->first == name) return {it->second};
    if (scope_.is_object()) {
      auto it = scope_.find(name);
      if (it != scope_.end()) return {resolve(*it, name)};
    }
    return {nullptr, true, name};
  }

  Val member(const Val& obj, const Json& key, const std::string& shown) {
    std::string path = obj.path.empty() ? shown : obj.path + shown;
    if (obj.undefined) return {nullptr, true, path};
    const Json& o = obj.j;
    if (o.is_object() && key.is_string()) {
      auto it = o.find(key.get<std::string>());
      if (it == o.end()) return {nullptr, true, path};
      return {resolve(*it, path), false, path};
    }
    if ((o.is_array() || o.is_string()) && key.is_number_integer()) {
      long long n = key.get<long long>();
      long long size = o.is_array()
                           ? static_cast<long long>(o.size())
                           : static_cast<long long>(o.get_ref<const std::string&>().size());
      if (n < 0) n += size;
      if (n < 0 || n >= size)
        error(fmt::format("index {} out of range for '{}'", show(key), obj.path));
      if (o.is_array()) return {resolve(o[n], path), false, path};
      return {std::string(1, o.get_ref<const std::string&>()[n]), false, path};
    }
    return {nullptr, true, path};
  }

  Val eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Literal:
        return {e.value};
      case Expr::Name: {
        Val v = lookup(e.name);
        v.path = e.name;
        return v;
      }
      case Expr::Attr: {
        Val obj = eval(*e.args[0]);
        if (!obj.undefined && !obj.j.is_object())
          error(fmt::format("'{}' has no attribute '{}'", obj.path, e.name));
        return member(obj, e.name, "." + e.name);
      }
      case Expr::Index: {
        Val obj = eval(*e.args[0]);
        Json key = value(*e.args[1]);
        return member(
            obj, key,
            "[" + (key.is_string() ? "'" + key.get<std::string>() + "'" : show(key)) + "]");
      }
      case Expr::Call:
        return {call(e)};
      case Expr::Filter:
        return filter(e);
      case Expr::Test: {
        bool r = test(e);
        return {e.negate ? !r : r};
      }
      case Expr::Unary: {
        if (e.name == "not") return {!truthy(value(*e.args[0]))};
        Json v = value(*e.args[0]);
        if (v.is_number_integer()) {
          if (v.get<long long>() == std::numeric_limits<long long>::min())
            error(fmt::format("integer overflow in -({})", show(v)));
          return {-v.get<long long>()};
        }
        if (v.is_number()) return {-v.get<double>()};
        error(fmt::format("cannot negate {}", show(v)));
      }
      case Expr::Binary:
        return {binary(e)};
      case Expr::List: {
        Json out = Json::array();
        for (auto& a : e.args) out.push_back(value(*a));
        return {out};
      }
      case Expr::Dict: {
        Json out = Json::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Json k = value(*e.args[i]);
          out[k.is_string() ? k.get<std::string>() : to_text(k)] = value(*e.args[i + 1]);
        }
        return {out};
      }
      case Expr::Cond: {
        if (truthy(value(*e.args[1]))) return eval(*e.args[0]);
        if (e.args.size() > 2) return eval(*e.args[2]);
        return {""};
      }
    }
    error("bad expression");
  }

  Json binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Json a = value(*e.args[0]);
      return truthy(a) ? value(*e.args[1]) : a;
    }
    if (op == "or") {
      Json a = value(*e.args[0]);
      return truthy(a) ? a : value(*e.args[1]);
    }
    Json a = value(*e.args[0]);
    Json b = value(*e.args[1]);
    if (op == "==") return a == b;
    if (op == "!=") return a != b;
    if (op == "~") return to_text(a) + to_text(b);
    if (op == "in") {
      if (b.is_string()) return b.get<std::string>().find(to_text(a)) != std::string::npos;
      if (b.is_array()) return std::find(b.begin(), b.end(), a) != b.end();
      if (b.is_object()) return a.is_string() && b.contains(a.get<std::string>());
      error(fmt::format("'in' needs a string, list or dict on its right, not {}", show(b)));
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      if (!((a.is_number() && b.is_number()) || (a.is_string() && b.is_string())))
        error(fmt::format("cannot compare {} {} {}", show(a), op, show(b)));
      bool lt = a < b, gt = b < a;
      if (op == "<") return lt;
      if (op == ">") return gt;
      if (op == "<=") return !gt;
      return !lt;
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) return a.get<std::string>() + b.get<std::string>();
      if (a.is_array() && b.is_array()) {
        Json out = a;
        for (auto& x : b) out.push_back(x);
        return out;
      }
    }
    if (!a.is_number() || !b.is_number())
      error(fmt::format("unsupported operands for '{}': {} and {}", op, show(a), show(b)));
    bool ints = a.is_number_integer() && b.is_number_integer();
    if (ints) {
      // 64-bit integers, not Python's unbounded ones: a result that does not fit is an error.
      long long x = a.get<long long>(), y = b.get<long long>(), r = 0;
      auto overflow = [&] { error(fmt::format("integer overflow in {} {} {}", x, op, y)); };
      if (op == "+" && !__builtin_add_overflow(x, y, &r)) return r;
      if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return r;
      if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return r;
      if (op == "+" || op == "-" || op == "*") overflow();
      if ((op == "//" || op == "%" || op == "/") && y == 0) error("division by zero");
      if (y == -1 && x == std::numeric_limits<long long>::min() && op != "/") {
        if (op == "%") return 0LL;
        overflow();
      }
      // Python's floor division and modulo: the remainder takes the divisor's sign.
      const long long q = x / y, m = x % y;
      const bool adjust = m != 0 && ((m < 0) != (y < 0));
      if (op == "//") return adjust ? q - 1 : q;
      if (op == "%") return adjust ? m + y : m;
      return static_cast<double>(x) / y;
    }
    double x = a.get<double>(), y = b.get<double>();
    if (op == "+") return x + y;
    if (op == "-") return x - y;
    if (op == "*") return x * y;
    if (y == 0) error("division by zero");
    if (op == "//") return std::floor(x / y);
    if (op == "%") return std::fmod(x, y);
    return x / y;
  }

  Json call(const Expr& e) {
    const Expr& callee = *e.args[0];
    std::vector<Json> args;
    for (size_t i = 1; i < e.args.size(); ++i) args.push_back(value(*e.args[i]));
    if (callee.kind == Expr::Name) {
      if (callee.name == "lookup" || callee.name == "query" || callee.name == "q") {
        Json kw = Json::object();
        for (auto& [k, v] : e.kwargs) kw[k] = value(*v);
        return lookup_plugin(callee.name, args, kw, scope_, Source{src_.name, line});
      }
      if (callee.name == "dict") {  // dict([[k, v], ...]) or dict(k=v, ...)
        Json out = Json::object();
        for (auto& a : args)
          for (auto& pair : a.is_array() ? a : Json::array())
            if (pair.is_array() && pair.size() == 2) out[to_text(pair[0])] = pair[1];
        for (auto& [k, v] : e.kwargs) out[k] = value(*v);
        return out;
      }
      if (callee.name == "range") {
        long long lo = 0, hi = 0, step = 1;
        if (args.size() == 1) hi = as_int(args[0]);
        if (args.size() >= 2) lo = as_int(args[0]), hi = as_int(args[1]);
        if (args.size() >= 3) step = as_int(args[2]);
        if (step == 0) error("range() step must not be zero");
        // Jinja's sandbox bound (MAX_RANGE): a template loops over hosts, not billions.
        constexpr __int128 kMaxRange = 100000;
        const __int128 span = step > 0 ? __int128{hi} - lo : __int128{lo} - hi;
        const __int128 count = span <= 0 ? 0
                                         : (span + (step > 0 ? step : -__int128{step}) - 1) /
                                               (step > 0 ? step : -__int128{step});
        if (count > kMaxRange)
          error(fmt::format("range() of more than {} items", static_cast<long long>(kMaxRange)));
        Json out = Json::array();
        for (__int128 i = 0; i < count; ++i) out.push_back(static_cast<long long>(lo + i * step));
        return out;
      }
      error(fmt::format("unknown function '{}'", callee.name));
    }
    if (callee.kind != Expr::Attr) error("only methods and range() can be called");
    Json obj = value(*callee.args[0]);
    const std::string& m = callee.name;
    auto arg = [&](size_t i) -> const Json& {
      if (i >= args.size()) error(fmt::format("{}() needs {} argument(s)", m, i + 1));
      return args[i];
    };
    if (obj.is_array()) {
      if (m == "index") {
        auto it = std::find(obj.begin(), obj.end(), arg(0));
        if (it == obj.end())
          error(fmt::format("{} is not in list '{}'", to_text(arg(0)),
                            callee.args[0]->name.empty() ? show(obj) : callee.args[0]->name));
        return static_cast<long long>(it - obj.begin());
      }
      if (m == "count") return static_cast<long long>(std::count(obj.begin(), obj.end(), arg(0)));
    } else if (obj.is_string()) {
      std::string s = obj.get<std::string>();
      if (m == "lower" || m == "upper" || m == "strip")
        return apply_simple(m == "strip" ? "trim" : m, obj);
      if (m == "startswith") return s.rfind(to_text(arg(0)), 0) == 0;
      if (m == "endswith") {
        std::string t = to_text(arg(0));
        return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
      }
      if (m == "split") {
        Json out = Json::array();
        if (args.empty()) {
          std::string cur;
          for (char c : s) {
            if (std::isspace(static_cast<unsigned char>(c))) {
              if (!cur.empty()) out.push_back(cur), cur.clear();
            } else {
              cur += c;
            }
          }
          if (!cur.empty()) out.push_back(cur);
          return out;
        }
        std::string sep = to_text(arg(0));
        if (sep.empty()) error("split() separator must not be empty");
        size_t pos = 0;
        while (true) {
          size_t f = s.find(sep, pos);
          if (f == std::string::npos) break;
          out.push_back(s.substr(pos, f - pos));
          pos = f + sep.size();
        }
        out.push_back(s.substr(pos));
        return out;
      }
      if (m == "replace") return replace_all(s, to_text(arg(0)), to_text(arg(1)));
    } else if (obj.is_object()) {
      if (m == "get") {
        std::string k = to_text(arg(0));
        if (obj.contains(k)) return resolve(obj[k], k);
        return args.size() > 1 ? args[1] : Json(nullptr);
      }
      if (m == "keys") {
        Json out = Json::array();
        for (auto& [k, v] : obj.items()) out.push_back(k);
        return out;
      }
      if (m == "values") {
        Json out = Json::array();
        for (auto& [k, v] : obj.items()) out.push_back(v);
        return out;
      }
      if (m == "items") {
        Json out = Json::array();
        for (auto& [k, v] : obj.items()) out.push_back(Json::array({k, v}));
        return out;
      }
    }
    error(fmt::format("unknown method '{}' on {}", m,
                      obj.is_array()    ? "list"
                      : obj.is_string() ? "string"
                      : obj.is_object() ? "dict"
                                        : show(obj)));
  }

  static std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    if (from.empty()) return s;
    size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
      s.replace(pos, from.size(), to);
      pos += to.size();
    }
    return s;
  }

  long long as_int(const Json& j) {
    // A double converts only inside long long's range (out of it, or NaN, the cast is UB).
    auto from_double = [&](double d) -> long long {
      if (!(d >= -0x1p63 && d < 0x1p63)) error(fmt::format("cannot convert {} to int", show(j)));
      return static_cast<long long>(d);
    };
    if (j.is_number_float()) return from_double(j.get<double>());
    if (j.is_number()) return j.get<long long>();
    if (j.is_boolean()) return j.get<bool>() ? 1 : 0;
    if (j.is_string()) {
      try {
        size_t used = 0;
        std::string s = j.get<std::string>();
        long long v = std::stoll(s, &used);
        if (used == s.size()) return v;
        const double d = std::stod(s);
        return from_double(d);
      } catch (const std::logic_error&) {  // std::stoll/stod: not a number, or out of range
      }
    }
    error(fmt::format("cannot convert {} to int", show(j)));
  }

  Json apply_simple(const std::string& name, const Json& in) {
    if (name == "lower" || name == "upper") {
      std::string s = to_text(in);
      for (auto& c : s)
        c = static_cast<char>(name == "lower" ? std::tolower(static_cast<unsigned char>(c))
                                              : std::toupper(static_cast<unsigned char>(c)));
      return s;
    }
    if (name == "trim") {
      std::string s = to_text(in);
      size_t b = s.find_first_not_of(" \t\r\n");
      if (b == std::string::npos) return "";
      return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
    }
    if (name == "string") return to_text(in);
    if (name == "quote") return shell_quote(to_text(in));
    if (name == "int") {
      try {
        return as_int(in);
      } catch (const TemplateError&) {
        return 0;
      }
    }
    if (name == "float") {
      if (in.is_number()) return in.get<double>();
      try {
        return std::stod(to_text(in));
      } catch (const std::exception&) {
        return 0.0;
      }
    }
    if (name == "bool") {
      if (in.is_boolean()) return in;
      if (in.is_number()) return in.get<double>() != 0;
      std::string s = apply_simple("lower", in).get<std::string>();
      s = apply_simple("trim", s).get<std::string>();
      return s == "yes" || s == "true" || s == "1" || s == "on" || s == "y" || s == "t";
    }
    if (name == "length" || name == "count") {
      if (in.is_string()) return static_cast<long long>(in.get_ref<const std::string&>().size());
      if (in.is_array() || in.is_object()) return static_cast<long long>(in.size());
      error(fmt::format("{} has no length", show(in)));
    }
    if (name == "to_json" || name == "to_nice_json") {
      try {
        return in.dump(name == "to_json" ? -1 : 4);
      } catch (const Json::type_error& ex) {
        error(fmt::format("{}: {}", name, ex.what()));
      }
    }
    if (name == "from_json") {
      try {
        return Json::parse(to_text(in));
      } catch (const Json::exception& ex) {
        error(fmt::format("from_json: {}", ex.what()));
      }
    }
    if (name == "first" || name == "last") {
      if (in.is_array()) {
        if (in.empty()) error(fmt::format("{} of an empty list", name));
        return name == "first" ? in.front() : in.back();
      }
      std::string s = to_text(in);
      if (s.empty()) error(fmt::format("{} of an empty string", name));
      return std::string(1, name == "first" ? s.front() : s.back());
    }
    if (name == "list") {
      if (in.is_array()) return in;
      if (in.is_object()) return call_keys(in);
      Json out = Json::array();
      for (char c : to_text(in)) out.push_back(std::string(1, c));
      return out;
    }
    if (name == "unique") {
      Json out = Json::array();
      for (auto& x : in)
        if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
      return out;
    }
    if (name == "sort") {
      Json out = in;
      if (out.is_array()) std::sort(out.begin(), out.end());
      return out;
    }
    if (name == "reverse") {
      if (in.is_string()) {
        std::string s = in.get<std::string>();
        return std::string(s.rbegin(), s.rend());
      }
      Json out = in;
      if (out.is_array()) std::reverse(out.begin(), out.end());
      return out;
    }
    if (name == "basename" || name == "dirname") {
      std::string s = to_text(in);
      size_t slash = s.rfind('/');
      if (name == "basename") return slash == std::string::npos ? s : s.substr(slash + 1);
      return slash == std::string::npos ? std::string() : s.substr(0, slash);
    }
    if (name == "abs") {
      if (in.is_number_integer()) {
        if (in.get<long long>() == std::numeric_limits<long long>::min())
          error(fmt::format("integer overflow in abs({})", show(in)));
        return std::llabs(in.get<long long>());
      }
      if (in.is_number()) return std::fabs(in.get<double>());
    }
    if (name == "min" || name == "max") {
      if (!in.is_array() || in.empty()) error(fmt::format("{} needs a non-empty list", name));
      return name == "min" ? *std::min_element(in.begin(), in.end())
                           : *std::max_element(in.begin(), in.end());
    }
    error(fmt::format("unknown filter '{}'", name));
  }

  static Json call_keys(const Json& obj) {
    Json out = Json::array();
    for (auto& [k, v] : obj.items()) out.push_back(k);
    return out;
  }

  Val filter(const Expr& e) {
    const std::string& name = e.name;
    Val in = eval(*e.args[0]);
    auto arg = [&](size_t i) -> Json {
      if (i + 1 >= e.args.size())
        error(fmt::format("filter '{}' needs {} argument(s)", name, i + 1));
      return value(*e.args[i + 1]);
    };
    auto kwarg = [&](const std::string& key) -> const Expr* {
      for (auto& [k, v] : e.kwargs)
        if (k == key) return v.get();
      return nullptr;
    };
    if (name == "default" || name == "d") {
      bool boolean = e.args.size() > 2 && truthy(value(*e.args[2]));
      if (in.undefined || (boolean && !truthy(in.j)) || (in.j.is_null() && boolean))
        return {e.args.size() > 1 ? value(*e.args[1]) : Json("")};
      return in;
    }
    if (name == "mandatory") {
      if (in.undefined)
        error(e.args.size() > 1 ? to_text(arg(0))
                                : fmt::format("mandatory variable '{}' is not defined", in.path));
      return in;
    }
    Json v = need(in);
    if (name == "join") {
      std::string sep = e.args.size() > 1 ? to_text(arg(0)) : "";
      if (!v.is_array()) error(fmt::format("join needs a list, not {}", show(v)));
      std::string out;
      for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + to_text(v[i]);
      return {out};
    }
    if (name == "map") {
      if (!v.is_array()) v = v.is_object() ? call_keys(v) : Json::array();
      Json out = Json::array();
      if (const Expr* attr = kwarg("attribute")) {
        // A dotted path ("item.role") walks into nested mappings.
        std::string path = to_text(value(*attr));
        for (auto& item : v) {
          Val cur{item, false, in.path};
          size_t pos = 0;
          while (pos <= path.size()) {
            size_t dot = path.find('.', pos);
            std::string key = path.substr(pos, dot == std::string::npos ? dot : dot - pos);
            cur = member(cur, key, "." + key);
            if (dot == std::string::npos) break;
            pos = dot + 1;
          }
          out.push_back(need(cur));
        }
        return {out};
      }
      std::string f = to_text(arg(0));
      if (f == "extract") {
        Json container = arg(1);
        for (auto& item : v) {
          Val got = member(
              {container, false, e.args[2]->name}, item,
              "[" + (item.is_string() ? "'" + item.get<std::string>() + "'" : show(item)) + "]");
          if (e.args.size() > 3) {
            Json key = arg(2);
            got = member(got, key, "." + to_text(key));
          }
          out.push_back(need(got));
        }
        return {out};
      }
      for (auto& item : v) out.push_back(apply_simple(f, item));
      return {out};
    }
    if (name == "replace") return {replace_all(to_text(v), to_text(arg(0)), to_text(arg(1)))};
    if (name == "ternary") return {truthy(v) ? arg(0) : arg(1)};
    if (name == "combine") {
      Json out = v;
      for (size_t i = 1; i < e.args.size(); ++i) {
        Json more = value(*e.args[i]);
        if (!more.is_object()) error(fmt::format("combine needs dicts, not {}", show(more)));
        for (auto& [k, x] : more.items()) out[k] = x;
      }
      return {out};
    }
    if (name == "hash") {
      try {
        return {digest_hex(e.args.size() > 1 ? to_text(arg(0)) : "sha1", to_text(v))};
      } catch (const std::invalid_argument& ex) {
        error(ex.what());
      }
    }
    if (name == "select" || name == "reject") {
      // select() keeps truthy items; select('equalto'|'ne'|'match'|'search'|'in', arg) tests.
      if (!v.is_array()) error(fmt::format("{} needs a list, not {}", name, v.dump()));
      std::string t = e.args.size() > 1 ? to_text(arg(0)) : "";
      Json out = Json::array();
      for (auto& item : v) {
        bool keep;
        if (t.empty())
          keep = truthy(item);
        else if (t == "equalto" || t == "eq" || t == "==")
          keep = item == arg(1);
        else if (t == "ne" || t == "!=")
          keep = item != arg(1);
        else if (t == "in")
          keep = arg(1).is_array() && std::find(arg(1).begin(), arg(1).end(), item) != arg(1).end();
        else if (t == "match" || t == "search")
          keep = std::regex_search(to_text(item), std::regex(to_text(arg(1))),
                                   t == "match" ? std::regex_constants::match_continuous
                                                : std::regex_constants::match_default);
        else if (t == "defined" || t == "string" || t == "number")
          keep = t == "defined" || (t == "string" ? item.is_string() : item.is_number());
        else
          error(fmt::format("{}: unsupported test '{}'", name, t));
        if (keep == (name == "select")) out.push_back(item);
      }
      return {out};
    }
    if (name == "selectattr" || name == "rejectattr") {
      // selectattr('a') keeps items whose a is truthy; selectattr('a', 'equalto', x) tests it.
      if (!v.is_array()) error(fmt::format("{} needs a list, not {}", name, v.dump()));
      std::string attr = to_text(arg(0));
      std::string t = e.args.size() > 2 ? to_text(arg(1)) : "";
      Json out = Json::array();
      for (auto& item : v) {
        Val got = member({item, false, in.path}, attr, "." + attr);
        bool keep;
        if (t.empty())
          keep = !got.undefined && truthy(got.j);
        else if (t == "defined")
          keep = !got.undefined;
        else if (t == "undefined")
          keep = got.undefined;
        else if (t == "equalto" || t == "eq" || t == "==")
          keep = !got.undefined && got.j == arg(2);
        else if (t == "ne" || t == "!=")
          keep = got.undefined || got.j != arg(2);
        else
          error(fmt::format("{}: unsupported test '{}'", name, t));
        if (keep == (name == "selectattr")) out.push_back(item);
      }
      return {out};
    }
    if (name == "from_kv") {  // ours: "k=v" lines (zdmctl's output) as a mapping
      Json out = Json::object();
      std::string text = to_text(v);
      size_t pos = 0;
      while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string ln = text.substr(pos, nl == std::string::npos ? nl : nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        auto eq = ln.find('=');
        if (eq != std::string::npos && eq > 0) out[ln.substr(0, eq)] = ln.substr(eq + 1);
      }
      return {out};
    }
    if (name == "zip") {
      if (!v.is_array()) error("zip needs lists");
      Json out = Json::array();
      std::vector<Json> others;
      for (size_t i = 1; i < e.args.size(); ++i) others.push_back(value(*e.args[i]));
      for (size_t i = 0; i < v.size(); ++i) {
        Json row = Json::array({v[i]});
        bool complete = true;
        for (auto& o : others) {
          if (!o.is_array() || i >= o.size())
            complete = false;
          else
            row.push_back(o[i]);
        }
        if (!complete) break;
        out.push_back(row);
      }
      return {out};
    }
    if (name == "items2dict" || name == "dict2items") {
      std::string key_name = "key", value_name = "value";
      if (const Expr* k = kwarg("key_name")) key_name = to_text(value(*k));
      if (const Expr* k = kwarg("value_name")) value_name = to_text(value(*k));
      Json out = name == "items2dict" ? Json::object() : Json::array();
      if (name == "items2dict") {
        for (auto& item : v)
          if (item.is_object() && item.contains(key_name))
            out[to_text(item[key_name])] = item.value(value_name, Json());
      } else if (v.is_object()) {
        for (auto& [k, x] : v.items()) out.push_back({{key_name, k}, {value_name, x}});
      }
      return {out};
    }
    if (name == "difference" || name == "intersect" || name == "union") {
      Json other = arg(0);
      if (!v.is_array() || !other.is_array()) error(fmt::format("{} needs two lists", name));
      auto in_other = [&](const Json& x) {
        return std::find(other.begin(), other.end(), x) != other.end();
      };
      Json out = Json::array();
      auto add = [&](const Json& x) {
        if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
      };
      for (auto& x : v)
        if (name == "union" || in_other(x) == (name == "intersect")) add(x);
      if (name == "union")
        for (auto& x : other) add(x);
      return {out};
    }
    if (name == "regex_replace") {
      try {
        // Python's "\\1" backreferences, as Ansible writes them, in ECMAScript's "$1" form.
        std::string fmt_text = e.args.size() > 2 ? to_text(arg(1)) : "";
        std::string repl;
        for (size_t i = 0; i < fmt_text.size(); ++i) {
          if (fmt_text[i] == '\\' && i + 1 < fmt_text.size() &&
              std::isdigit(static_cast<unsigned char>(fmt_text[i + 1]))) {
            repl += '$';
          } else if (fmt_text[i] == '$') {
            repl += "$$";
          } else {
            repl += fmt_text[i];
          }
        }
        return {std::regex_replace(to_text(v), std::regex(to_text(arg(0))), repl)};
      } catch (const std::regex_error& ex) {
        error(fmt::format("regex_replace: {}", ex.what()));
      }
    }
    if (name == "int" && e.args.size() > 1) {
      try {
        return {as_int(v)};
      } catch (const TemplateError&) {
        return {arg(0)};
      }
    }
    return {apply_simple(name, v)};
  }

  bool test(const Expr& e) {
    const std::string& name = e.name;
    Val in = eval(*e.args[0]);
    if (name == "defined") return !in.undefined;
    if (name == "undefined") return in.undefined;
    Json v = need(in);
    auto arg = [&](size_t i) -> Json {
      if (i + 1 >= e.args.size()) error(fmt::format("test '{}' needs {} argument(s)", name, i + 1));
      return value(*e.args[i + 1]);
    };
    auto flag = [&](const char* key) { return v.is_object() && v.contains(key) && truthy(v[key]); };
    if (name == "none") return v.is_null();
    if (name == "number") return v.is_number();
    if (name == "integer") return v.is_number_integer();
    if (name == "string") return v.is_string();
    if (name == "mapping") return v.is_object();
    if (name == "sequence" || name == "iterable")
      return v.is_array() || v.is_string() || v.is_object();
    if (name == "boolean") return v.is_boolean();
    if (name == "even") return as_int(v) % 2 == 0;
    if (name == "odd") return as_int(v) % 2 != 0;
    if (name == "failed" || name == "failure") return flag("failed");
    if (name == "succeeded" || name == "success") return !flag("failed");
    if (name == "changed" || name == "change") return flag("changed");
    if (name == "skipped" || name == "skip") return flag("skipped");
    if (name == "eq" || name == "equalto" || name == "sameas") return v == arg(0);
    if (name == "ne") return v != arg(0);
    if (name == "in") {
      Json c = arg(0);
      return c.is_array() ? std::find(c.begin(), c.end(), v) != c.end()
                          : to_text(c).find(to_text(v)) != std::string::npos;
    }
    if (name == "match" || name == "search") {
      try {
        std::regex re(to_text(arg(0)));
        std::string s = to_text(v);
        return name == "match" ? std::regex_search(s, re, std::regex_constants::match_continuous)
                               : std::regex_search(s, re);
      } catch (const std::regex_error& ex) {
        error(fmt::format("{}: {}", name, ex.what()));
      }
    }
    error(fmt::format("unknown test '{}'", name));
  }

 private:
  const Json& scope_;
  const Source& src_;
};

// ---------------------------------------------------------------- template structure

struct Node {
  enum Kind { Text, Output, If, For, Set } kind = Text;
  int line = 1;
  std::string text;
  ExprPtr expr;
  std::vector<std::pair<ExprPtr, std::vector<Node>>> branches;  // If: (cond, body)...
  std::vector<Node> else_body;
  std::vector<std::string> vars;  // For / Set
  std::vector<Node> body;         // For
};

struct Segment {
  enum Kind { Text, Var, Block } kind;
  std::string text;
  int line;
};

std::vector<Segment> split_segments(std::string_view in, const Source& src, bool trim_blocks) {
  std::vector<Segment> out;
  size_t pos = 0;
  int line = src.line;
  bool strip_next = false;
  bool eat_newline = false;
  auto add_text = [&](std::string text, int at) {
    if (strip_next) {
      size_t b = text.find_first_not_of(" \t\r\n");
      text = b == std::string::npos ? "" : text.substr(b);
      strip_next = false;
    } else if (eat_newline && !text.empty()) {
      if (text[0] == '\n')
        text.erase(0, 1);
      else if (text.size() > 1 && text[0] == '\r' && text[1] == '\n')
        text.erase(0, 2);
    }
    eat_newline = false;
    if (!text.empty()) out.push_back({Segment::Text, std::move(text), at});
  };
  while (pos < in.size()) {
    size_t open = in.find('{', pos);
    while (open != std::string_view::npos && open + 1 < in.size() && in[open + 1] != '{' &&
           in[open + 1] != '%' && in[open + 1] != '#')
      open = in.find('{', open + 1);
    if (open == std::string_view::npos || open + 1 >= in.size()) {
      add_text(std::string(in.substr(pos)), line);
      break;
    }
    int text_line = line;
    std::string text(in.substr(pos, open - pos));
    line += static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    char kind = in[open + 1];
    const char* close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t end = in.find(close, open + 2);
    if (end == std::string_view::npos)
      throw TemplateError(fmt::format("{}:{}: unclosed '{{{}' tag", src.name, line, kind));
    std::string inner(in.substr(open + 2, end - open - 2));
    bool lstrip = !inner.empty() && inner.front() == '-';
    // "{{-}}": the one '-' strips on the left only (popping it twice was UB).
    bool rstrip = inner.size() > (lstrip ? 1u : 0u) && inner.back() == '-';
    if (lstrip) {
      inner.erase(0, 1);
      size_t e = text.find_last_not_of(" \t\r\n");
      text = e == std::string::npos ? "" : text.substr(0, e + 1);
    }
    if (rstrip) inner.pop_back();
    add_text(std::move(text), text_line);
    int tag_line = line;
    line += static_cast<int>(std::count(inner.begin(), inner.end(), '\n'));
    if (kind == '{') out.push_back({Segment::Var, inner, tag_line});
    if (kind == '%') out.push_back({Segment::Block, inner, tag_line});
    strip_next = rstrip;
    eat_newline = trim_blocks && kind != '{';
    pos = end + 2;
  }
  return out;
}

std::string trim_copy(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

class TemplateParser {
 public:
  TemplateParser(std::vector<Segment> segs, const Source& src)
      : segs_(std::move(segs)), src_(src) {}

  std::vector<Node> parse() {
    std::string end;
    auto nodes = body({}, end);
    return nodes;
  }

 private:
  [[noreturn]] void error(int line, const std::string& msg) const {
    throw TemplateError(fmt::format("{}:{}: {}", src_.name, line, msg));
  }

  static std::pair<std::string, std::string> split_stmt(const std::string& stmt) {
    std::string s = trim_copy(stmt);
    size_t sp = s.find_first_of(" \t\r\n");
    if (sp == std::string::npos) return {s, ""};
    return {s.substr(0, sp), trim_copy(s.substr(sp))};
  }

  // Parses nodes until a block statement whose keyword is in `stops`; that keyword's
  // segment index is left in pos_ and its keyword in `end`.
  std::vector<Node> body(const std::vector<std::string>& stops, std::string& end) {
    NestingGuard guard(depth_);
    if (depth_ > kMaxNesting)
      error(segs_[pos_ - 1].line, fmt::format("blocks nested deeper than {} levels", kMaxNesting));
    std::vector<Node> nodes;
    while (pos_ < segs_.size()) {
      const Segment& seg = segs_[pos_];
      if (seg.kind == Segment::Text) {
        nodes.push_back(Node{Node::Text, seg.line, seg.text, nullptr, {}, {}, {}, {}});
        ++pos_;
        continue;
      }
      if (seg.kind == Segment::Var) {
        Node n;
        n.kind = Node::Output;
        n.line = seg.line;
        n.expr = Parser(trim_copy(seg.text), src_, seg.line).parse_all();
        nodes.push_back(std::move(n));
        ++pos_;
        continue;
      }
      auto [kw, rest] = split_stmt(seg.text);
      if (std::find(stops.begin(), stops.end(), kw) != stops.end()) {
        end = kw;
        return nodes;
      }
      int line = seg.line;
      ++pos_;
      if (kw == "if") {
        Node n;
        n.kind = Node::If;
        n.line = line;
        ExprPtr cond = Parser(rest, src_, line).parse_all();
        while (true) {
          std::string stop;
          auto b = body({"elif", "else", "endif"}, stop);
          if (stop.empty()) error(line, "'if' without 'endif'");
          n.branches.emplace_back(cond, std::move(b));
          const Segment& s = segs_[pos_++];
          if (stop == "endif") break;
          if (stop == "elif") {
            cond = Parser(split_stmt(s.text).second, src_, s.line).parse_all();
            continue;
          }
          std::string stop2;
          n.else_body = body({"endif"}, stop2);
          if (stop2.empty()) error(line, "'if' without 'endif'");
          ++pos_;
          break;
        }
        nodes.push_back(std::move(n));
      } else if (kw == "for") {
        Node n;
        n.kind = Node::For;
        n.line = line;
        auto [vars, e] = Parser(rest, src_, line).parse_for();
        n.vars = vars;
        n.expr = e;
        std::string stop;
        n.body = body({"endfor", "else"}, stop);
        if (stop.empty()) error(line, "'for' without 'endfor'");
        ++pos_;
        if (stop == "else") {
          std::string stop2;
          n.else_body = body({"endfor"}, stop2);
          if (stop2.empty()) error(line, "'for' without 'endfor'");
          ++pos_;
        }
        nodes.push_back(std::move(n));
      } else if (kw == "set") {
        Node n;
        n.kind = Node::Set;
        n.line = line;
        auto [name, e] = Parser(rest, src_, line).parse_set();
        n.vars = {name};
        n.expr = e;
        nodes.push_back(std::move(n));
      } else {
        error(line, fmt::format("unknown or unexpected tag '{}'", kw));
      }
    }
    end.clear();
    return nodes;
  }

  std::vector<Segment> segs_;
  const Source& src_;
  size_t pos_ = 0;
  int depth_ = 0;
};

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
      case Node::If: {
        bool done = false;
        for (auto& [cond, body] : n.branches) {
          ev.line = n.line;
          if (truthy(ev.value(*cond))) {
            render_nodes(body, ev, out);
            done = true;
            break;
          }
        }
        if (!done) render_nodes(n.else_body, ev, out);
        break;
      }
      case Node::For: {
        Json seq = ev.value(*n.expr);
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
        if (items.empty()) {
          render_nodes(n.else_body, ev, out);
          break;
        }
        size_t mark = ev.locals.size();
        for (size_t i = 0; i < items.size(); ++i) {
          ev.locals.resize(mark);
          Json loop = {{"index", i + 1},
                       {"index0", i},
                       {"first", i == 0},
                       {"last", i + 1 == items.size()},
                       {"length", items.size()},
                       {"revindex", items.size() - i},
                       {"revindex0", items.size() - i - 1}};
          ev.locals.emplace_back("loop", loop);
          if (n.vars.size() == 1) {
            ev.locals.emplace_back(n.vars[0], items[i]);
          } else {
            if (!items[i].is_array() || items[i].size() != n.vars.size())
              ev.error(
                  fmt::format("cannot unpack {} into {} variables", show(items[i]), n.vars.size()));
            for (size_t k = 0; k < n.vars.size(); ++k)
              ev.locals.emplace_back(n.vars[k], items[i][k]);
          }
          render_nodes(n.body, ev, out);
        }
        ev.locals.resize(mark);
        break;
      }
    }
  }
}

}  // namespace

bool is_template(std::string_view text) {
  return text.find("{{") != std::string_view::npos || text.find("{%") != std::string_view::npos ||
         text.find("{#") != std::string_view::npos;
}

std::string to_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  return show(v);
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
  if (!is_template(text)) return std::string(text);
  auto nodes = TemplateParser(split_segments(text, src, trim_blocks), src).parse();
  Evaluator ev(scope, src);
  std::string out;
  render_nodes(nodes, ev, out);
  return out;
}

Json evaluate(std::string_view expr, const Json& scope, const Source& src) {
  std::string text(expr);
  // A condition written as "{{ x }}" is accepted too.
  std::string t = trim_copy(text);
  if (t.size() >= 4 && t.compare(0, 2, "{{") == 0 && t.compare(t.size() - 2, 2, "}}") == 0 &&
      t.find("{{", 2) == std::string::npos)
    t = t.substr(2, t.size() - 4);
  auto e = Parser(t, src, src.line).parse_all();
  Evaluator ev(scope, src);
  ev.line = src.line;
  return ev.value(*e);
}

bool evaluate_condition(std::string_view expr, const Json& scope, const Source& src) {
  return truthy(evaluate(expr, scope, src));
}

Json render_value(const Json& value, const Json& scope, const Source& src) {
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (!is_template(s)) return value;
    std::string t = trim_copy(s);
    if (t.size() >= 4 && t.compare(0, 2, "{{") == 0 && t.compare(t.size() - 2, 2, "}}") == 0 &&
        t.find("{{", 2) == std::string::npos && t.find("{%") == std::string::npos &&
        t.find("}}") == t.size() - 2) {
      std::string inner = t.substr(2, t.size() - 4);
      if (!inner.empty() && inner.front() == '-') inner.erase(0, 1);
      if (!inner.empty() && inner.back() == '-') inner.pop_back();
      return evaluate(inner, scope, src);
    }
    return render(s, scope, src);
  }
  if (value.is_array()) {
    Json out = Json::array();
    for (auto& v : value) out.push_back(render_value(v, scope, src));
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (auto& [k, v] : value.items()) out[k] = render_value(v, scope, src);
    return out;
  }
  return value;
}

}  // namespace zdm::deploy
