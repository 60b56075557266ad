#include "template/evaluator.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "template/common.h"
#include "template/filters.h"
#include "template/tests.h"

namespace zdm::deploy::tmpl {
namespace {

// Depth of lazy renders in progress on this thread (a variable's value that is a template naming
// another such variable...): a bound turns "a: '{{ b }}', b: '{{ a }}'" into an error.
thread_local int g_depth = 0;

}  // namespace

void Evaluator::error(const std::string& msg) const {
  throw TemplateError(fmt::format("{}:{}: {}", src_.name, line, msg));
}

Json Evaluator::need(const Val& v) const {
  if (v.undefined) error(fmt::format("undefined variable '{}'", v.path));
  return v.j;
}

namespace {

bool has_template(const Json& j) {
  if (j.is_string()) return is_template(j.get_ref<const std::string&>());
  if (j.is_array() || j.is_object())
    for (const auto& v : j)
      if (has_template(v)) return true;
  return false;
}

}  // namespace

Json Evaluator::resolve(const Json& j, const std::string& name) {
  if (j.is_array() ? !has_template(j)
                   : !j.is_string() || !is_template(j.get_ref<const std::string&>()))
    return j;
  if (g_depth > 20) error(fmt::format("recursive loop detected in variable '{}'", name));
  ++g_depth;
  struct Guard {
    ~Guard() { --g_depth; }
  } guard;
  return render_value(j, scope_, Source{src_.name, line}, lookups_);
}

Val Evaluator::variable(const std::string& name) {
  for (auto it = locals.rbegin(); it != locals.rend(); ++it)
    if (it->first == name) return {it->second};
  if (scope_.is_object()) {
    auto it = scope_.find(name);
    if (it != scope_.end()) return {resolve(*it, name)};
  }
  return {nullptr, true, name};
}

Val Evaluator::member(const Val& obj, const Json& key, const std::string& shown) {
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
    long long size = o.is_array() ? static_cast<long long>(o.size())
                                  : static_cast<long long>(o.get_ref<const std::string&>().size());
    if (n < 0) n += size;
    if (n < 0 || n >= size)
      error(fmt::format("index {} out of range for '{}'", show(key), obj.path));
    if (o.is_array()) return {resolve(o[n], path), false, path};
    return {std::string(1, o.get_ref<const std::string&>()[n]), false, path};
  }
  return {nullptr, true, path};
}

Val Evaluator::eval(const Expr& e) {
  switch (e.kind) {
    case Expr::Literal:
      return {e.value};
    case Expr::Name: {
      Val v = variable(e.name);
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
      return member(obj, key,
                    "[" + (key.is_string() ? "'" + key.get<std::string>() + "'" : show(key)) + "]");
    }
    case Expr::Call:
      return {call(e)};
    case Expr::Filter:
      return apply_filter(*this, e);
    case Expr::Test: {
      bool r = apply_test(*this, e);
      return {e.negate ? !r : r};
    }
    case Expr::Unary:
      return unary(e);
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

Val Evaluator::unary(const Expr& e) {
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

Json Evaluator::binary(const Expr& e) {
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
  if (op == "<" || op == ">" || op == "<=" || op == ">=") return compare(op, a, b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) return a.get<std::string>() + b.get<std::string>();
    if (a.is_array() && b.is_array()) {
      Json out = a;
      for (auto& x : b) out.push_back(x);
      return out;
    }
  }
  return arithmetic(op, a, b);
}

// Numbers with numbers, strings with strings (Python's ordering); anything else is an error.
Json Evaluator::compare(const std::string& op, const Json& a, const Json& b) {
  if (!((a.is_number() && b.is_number()) || (a.is_string() && b.is_string())))
    error(fmt::format("cannot compare {} {} {}", show(a), op, show(b)));
  bool lt = a < b, gt = b < a;
  if (op == "<") return lt;
  if (op == ">") return gt;
  if (op == "<=") return !gt;
  return !lt;
}

// + - * / // % on numbers; two integers stay integers except for "/".
Json Evaluator::arithmetic(const std::string& op, const Json& a, const Json& b) {
  if (!a.is_number() || !b.is_number())
    error(fmt::format("unsupported operands for '{}': {} and {}", op, show(a), show(b)));
  if (a.is_number_integer() && b.is_number_integer())
    return integer_arithmetic(op, a.get<long long>(), b.get<long long>());
  double x = a.get<double>(), y = b.get<double>();
  if (op == "+") return x + y;
  if (op == "-") return x - y;
  if (op == "*") return x * y;
  if (y == 0) error("division by zero");
  if (op == "//") return std::floor(x / y);
  if (op == "%") return std::fmod(x, y);
  return x / y;
}

// 64-bit integers, not Python's unbounded ones: a result that does not fit is an error.
Json Evaluator::integer_arithmetic(const std::string& op, long long x, long long y) {
  long long r = 0;
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

Json Evaluator::call(const Expr& e) {
  const Expr& callee = *e.args[0];
  std::vector<Json> args;
  for (size_t i = 1; i < e.args.size(); ++i) args.push_back(value(*e.args[i]));
  if (callee.kind == Expr::Name) return call_function(e, callee.name, args);
  if (callee.kind != Expr::Attr) error("only methods and range() can be called");
  return call_method(callee, value(*callee.args[0]), args);
}

// lookup()/query()/q() (Ansible's), dict() and range() (Jinja2's global functions).
Json Evaluator::call_function(const Expr& e, const std::string& name,
                              const std::vector<Json>& args) {
  if (name == "lookup" || name == "query" || name == "q") {
    Json kw = Json::object();
    for (auto& [k, v] : e.kwargs) kw[k] = value(*v);
    return lookups_.call(name, args, kw, scope_, Source{src_.name, line});
  }
  if (name == "dict") {  // dict([[k, v], ...]) or dict(k=v, ...)
    Json out = Json::object();
    for (auto& a : args)
      for (auto& pair : a.is_array() ? a : Json::array())
        if (pair.is_array() && pair.size() == 2) out[to_text(pair[0])] = pair[1];
    for (auto& [k, v] : e.kwargs) out[k] = value(*v);
    return out;
  }
  if (name == "range") return call_range(args);
  error(fmt::format("unknown function '{}'", name));
}

Json Evaluator::call_range(const std::vector<Json>& args) {
  long long lo = 0, hi = 0, step = 1;
  if (args.size() == 1) hi = as_int(args[0]);
  if (args.size() >= 2) lo = as_int(args[0]), hi = as_int(args[1]);
  if (args.size() >= 3) step = as_int(args[2]);
  if (step == 0) error("range() step must not be zero");
  // Jinja's sandbox bound (MAX_RANGE): a template loops over hosts, not billions.
  constexpr __int128 kMaxRange = 100000;
  const __int128 span = step > 0 ? __int128{hi} - lo : __int128{lo} - hi;
  const __int128 abs_step = step > 0 ? step : -__int128{step};
  const __int128 count = span <= 0 ? 0 : (span + abs_step - 1) / abs_step;
  if (count > kMaxRange)
    error(fmt::format("range() of more than {} items", static_cast<long long>(kMaxRange)));
  Json out = Json::array();
  for (__int128 i = 0; i < count; ++i) out.push_back(static_cast<long long>(lo + i * step));
  return out;
}

const Json& Evaluator::arg(const std::string& m, const std::vector<Json>& args, size_t i) const {
  if (i >= args.size()) error(fmt::format("{}() needs {} argument(s)", m, i + 1));
  return args[i];
}

// Python's list, str and dict methods that templates use.
Json Evaluator::call_method(const Expr& callee, const Json& obj, const std::vector<Json>& args) {
  const std::string& m = callee.name;
  std::optional<Json> r;
  if (obj.is_array())
    r = list_method(callee, obj, args);
  else if (obj.is_string())
    r = string_method(m, obj, args);
  else if (obj.is_object())
    r = dict_method(m, obj, args);
  if (r) return *std::move(r);
  error(fmt::format("unknown method '{}' on {}", m,
                    obj.is_array()    ? "list"
                    : obj.is_string() ? "string"
                    : obj.is_object() ? "dict"
                                      : show(obj)));
}

std::optional<Json> Evaluator::list_method(const Expr& callee, const Json& obj,
                                           const std::vector<Json>& args) {
  const std::string& m = callee.name;
  if (m == "index") {
    auto it = std::find(obj.begin(), obj.end(), arg(m, args, 0));
    if (it == obj.end())
      error(fmt::format("{} is not in list '{}'", to_text(arg(m, args, 0)),
                        callee.args[0]->name.empty() ? show(obj) : callee.args[0]->name));
    return static_cast<long long>(it - obj.begin());
  }
  if (m == "count")
    return static_cast<long long>(std::count(obj.begin(), obj.end(), arg(m, args, 0)));
  return std::nullopt;
}

namespace {

// str.split(): on runs of whitespace without a separator, else on each separator.
Json split(const std::string& s, const std::string* sep) {
  Json out = Json::array();
  if (!sep) {
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
  size_t pos = 0;
  while (true) {
    size_t f = s.find(*sep, pos);
    if (f == std::string::npos) break;
    out.push_back(s.substr(pos, f - pos));
    pos = f + sep->size();
  }
  out.push_back(s.substr(pos));
  return out;
}

}  // namespace

std::optional<Json> Evaluator::string_method(const std::string& m, const Json& obj,
                                             const std::vector<Json>& args) {
  std::string s = obj.get<std::string>();
  if (m == "lower" || m == "upper" || m == "strip")
    return apply_simple_filter(*this, m == "strip" ? "trim" : m, obj);
  if (m == "startswith") return s.rfind(to_text(arg(m, args, 0)), 0) == 0;
  if (m == "endswith") {
    std::string t = to_text(arg(m, args, 0));
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  }
  if (m == "split") {
    if (args.empty()) return split(s, nullptr);
    std::string sep = to_text(arg(m, args, 0));
    if (sep.empty()) error("split() separator must not be empty");
    return split(s, &sep);
  }
  if (m == "replace") return replace_all(s, to_text(arg(m, args, 0)), to_text(arg(m, args, 1)));
  return std::nullopt;
}

std::optional<Json> Evaluator::dict_method(const std::string& m, const Json& obj,
                                           const std::vector<Json>& args) {
  if (m == "get") {
    std::string k = to_text(arg(m, args, 0));
    if (obj.contains(k)) return resolve(obj[k], k);
    return args.size() > 1 ? args[1] : Json(nullptr);
  }
  if (m != "keys" && m != "values" && m != "items") return std::nullopt;
  Json out = Json::array();
  for (auto& [k, v] : obj.items()) {
    if (m == "keys")
      out.push_back(k);
    else if (m == "values")
      out.push_back(v);
    else
      out.push_back(Json::array({k, v}));
  }
  return out;
}

long long Evaluator::as_int(const Json& j) const {
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
    } catch (const std::logic_error&) {
      // std::stoll/stod found no number, or one out of range: not convertible, reported below
      // like any other value.
    }
  }
  error(fmt::format("cannot convert {} to int", show(j)));
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

}  // namespace zdm::deploy::tmpl
