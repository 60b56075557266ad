// deployer/template/evaluator.h: evaluating expressions, lookups through LookupProvider.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "template/evaluator.h"
#include "template/parser.h"

using namespace zdm::deploy;
using namespace zdm::deploy::tmpl;

namespace {

// Records each lookup and answers with its arguments.
class FakeLookups : public LookupProvider {
 public:
  mutable std::vector<Json> calls;
  Json call(const std::string& function, const std::vector<Json>& args, const Json& kwargs,
            const Json& scope, const Source& src) const override {
    Json c = {{"function", function}, {"args", args},
              {"kwargs", kwargs},     {"has_scope", scope.contains("x")},
              {"file", src.name},     {"line", src.line}};
    calls.push_back(c);
    return c;
  }
};

const Json kScope = {{"x", 1},
                     {"list", {1, 2, 3}},
                     {"tpl", "{{ x + 1 }}"},
                     {"loop_a", "{{ loop_b }}"},
                     {"loop_b", "{{ loop_a }}"},
                     {"m", {{"k", "{{ x }}"}, {"bad", "{{ nope }}"}}}};

struct Fixture {
  FakeLookups lookups;
  Source src{"e.yml", 4};
  Evaluator ev{kScope, src, lookups};

  Json eval(std::string_view text) {
    ev.line = 4;
    return ev.value(*parse_expression(text, src, 4));
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "evaluator: lookup(), query() and q() go to the LookupProvider") {
  Json r = eval("lookup('env', 'HOME', default='/root')");
  REQUIRE(lookups.calls.size() == 1);
  CHECK(r["function"] == "lookup");
  CHECK(r["args"] == Json::array({"env", "HOME"}));
  CHECK(r["kwargs"] == Json{{"default", "/root"}});
  CHECK(r["has_scope"] == true);
  CHECK(r["file"] == "e.yml");
  CHECK(r["line"] == 4);
  CHECK(eval("query('file', 'a')")["function"] == "query");
  CHECK(eval("q('file', 'a')")["function"] == "q");
  CHECK(lookups.calls.size() == 3);
}

TEST_CASE_FIXTURE(Fixture,
                  "evaluator: locals shadow the scope; templates in the scope render lazily") {
  CHECK(eval("x") == 1);
  ev.locals.emplace_back("x", 10);
  CHECK(eval("x") == 10);
  ev.locals.clear();
  CHECK(eval("tpl") == 2);  // a lone expression keeps its type
  CHECK(eval("m.k") == 1);  // a mapping's value renders when looked up...
  CHECK(eval("m['k']") == 1);
  CHECK(eval("m.get('k')") == 1);  // ...also through get()
  CHECK_THROWS_WITH_AS(eval("loop_a"), doctest::Contains("recursive loop detected in variable"),
                       TemplateError);
}

TEST_CASE_FIXTURE(Fixture, "evaluator: undefined values and member access") {
  Val v = ev.eval(*parse_expression("nope.a['b']", src, 4));
  CHECK(v.undefined);
  CHECK(v.path == "nope.a['b']");
  CHECK_THROWS_WITH_AS(eval("nope.a"), "e.yml:4: undefined variable 'nope.a'", TemplateError);
  CHECK(eval("list[-1]") == 3);
  CHECK(eval("'abc'[1]") == "b");
  CHECK_THROWS_WITH_AS(eval("list[3]"), "e.yml:4: index 3 out of range for 'list'", TemplateError);
  CHECK_THROWS_WITH_AS(eval("x.y"), "e.yml:4: 'x' has no attribute 'y'", TemplateError);
}

TEST_CASE_FIXTURE(Fixture, "evaluator: operators") {
  CHECK(eval("1 + 2 * 3") == 7);
  CHECK(eval("7 / 2") == 3.5);
  CHECK(eval("7.0 // 2") == 3.0);
  CHECK(eval("[1] + [2]") == Json::array({1, 2}));
  CHECK(eval("'a' ~ 1 ~ true ~ none") == "a1TrueNone");
  CHECK(eval("0 or 'b'") == "b");
  CHECK(eval("0 and nope") == 0);  // short-circuit: nope is never evaluated
  CHECK(eval("'b' < 'c' and 2 >= 2 and not 1 > 2") == true);
  CHECK(eval("2 in list and 'k' in m and 'y' not in 'xyz'") == false);
  CHECK_THROWS_WITH_AS(eval("1 < 'a'"), "e.yml:4: cannot compare 1 < \"a\"", TemplateError);
  CHECK_THROWS_WITH_AS(eval("1 / 0"), "e.yml:4: division by zero", TemplateError);
  CHECK_THROWS_WITH_AS(eval("1 in 2"),
                       "e.yml:4: 'in' needs a string, list or dict on its right, not 2",
                       TemplateError);
  CHECK_THROWS_WITH_AS(eval("-'a'"), "e.yml:4: cannot negate \"a\"", TemplateError);
}

TEST_CASE_FIXTURE(Fixture, "evaluator: functions and methods") {
  CHECK(eval("dict([['a', 1]], b=2)") == Json{{"a", 1}, {"b", 2}});
  CHECK(eval("range(3)") == Json::array({0, 1, 2}));
  CHECK(eval("range(1, 7, 3)") == Json::array({1, 4}));
  CHECK(eval("list.index(2)") == 1);
  CHECK(eval("[1, 1, 2].count(1)") == 2);
  CHECK(eval("' A b '.strip()") == "A b");
  CHECK(eval("'Ab'.lower() ~ 'Ab'.upper()") == "abAB");
  CHECK(eval("'abc'.startswith('ab') and 'abc'.endswith('bc')") == true);
  CHECK(eval("' a  b '.split()") == Json::array({"a", "b"}));
  CHECK(eval("'a,,b'.split(',')") == Json::array({"a", "", "b"}));
  CHECK(eval("'aXbX'.replace('X', '-')") == "a-b-");
  CHECK(eval("{'a': 1}.keys()") == Json::array({"a"}));
  CHECK(eval("{'a': 1}.values()") == Json::array({1}));
  CHECK(eval("{'a': 1}.items()") == Json::array({Json::array({"a", 1})}));
  CHECK(eval("{'a': 1}.get('b', 5)") == 5);
  CHECK_THROWS_WITH_AS(eval("nofunc()"), "e.yml:4: unknown function 'nofunc'", TemplateError);
  CHECK_THROWS_WITH_AS(eval("(1)()"), "e.yml:4: only methods and range() can be called",
                       TemplateError);
  CHECK_THROWS_WITH_AS(eval("list.pop()"), "e.yml:4: unknown method 'pop' on list", TemplateError);
  CHECK_THROWS_WITH_AS(eval("'a'.split('')"), "e.yml:4: split() separator must not be empty",
                       TemplateError);
  CHECK_THROWS_WITH_AS(eval("'a'.startswith()"), "e.yml:4: startswith() needs 1 argument(s)",
                       TemplateError);
  CHECK_THROWS_WITH_AS(eval("range(1, 2, 0)"), "e.yml:4: range() step must not be zero",
                       TemplateError);
}

TEST_CASE_FIXTURE(Fixture, "evaluator: as_int is Python's int()") {
  CHECK(ev.as_int(Json(7)) == 7);
  CHECK(ev.as_int(Json(2.9)) == 2);
  CHECK(ev.as_int(Json(true)) == 1);
  CHECK(ev.as_int(Json("-12")) == -12);
  CHECK(ev.as_int(Json("3.7")) == 3);
  CHECK_THROWS_WITH_AS(ev.as_int(Json("x")), "e.yml:1: cannot convert \"x\" to int", TemplateError);
  CHECK_THROWS_AS(ev.as_int(Json(nullptr)), TemplateError);
}

TEST_CASE("evaluator: the public API takes a LookupProvider too") {
  FakeLookups lookups;
  Source src{"p.yml", 2};
  CHECK(evaluate("lookup('x')", kScope, src, lookups)["line"] == 2);
  CHECK(render("{{ q('a') | length }}", kScope, src, false, lookups) == "6");
  CHECK(render_value(Json::array({"{{ lookup('a').function }}"}), kScope, src, lookups) ==
        Json::array({"lookup"}));
  CHECK(lookups.calls.size() == 3);
}
