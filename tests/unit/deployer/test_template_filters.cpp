// deployer/template/filters.h and tests.h: every filter and every Jinja test in the tables has a
// case here. A name added to a table without a case fails "every filter has a case".
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "template/filters.h"
#include "template/tests.h"

using namespace zdm::deploy;
using namespace zdm::deploy::tmpl;

namespace {

// The name a case covers, the expression, and its value (or the error it throws).
struct Case {
  std::string name;
  std::string expr;
  Json expected;
  std::string error;  // non-empty: the TemplateError's what()
};

class NoLookups : public LookupProvider {
 public:
  Json call(const std::string&, const std::vector<Json>&, const Json&, const Json&,
            const Source& src) const override {
    throw TemplateError(src.name + ": no lookups here");
  }
};

const Json kScope = {{"hosts", {"a", "b"}},
                     {"hostvars", {{"a", {{"ip", "1.1.1.1"}}}, {"b", {{"ip", "2.2.2.2"}}}}}};

const std::vector<Case> kFilterCases = {
    {"abs", "(-3) | abs", 3, ""},
    {"abs", "-2.5 | abs", -2.5, ""},  // unary minus binds looser than a filter
    {"abs", "'x' | abs", nullptr, "t:1: unknown filter 'abs'"},
    {"basename", "'/a/b.txt' | basename", "b.txt", ""},
    {"bool", "' Yes ' | bool", true, ""},
    {"bool", "'off' | bool", false, ""},
    {"combine", "{'a': 1, 'b': 2} | combine({'b': 3}, {'c': 4})",
     Json{{"a", 1}, {"b", 3}, {"c", 4}}, ""},
    {"combine", "{} | combine(1)", nullptr, "t:1: combine needs dicts, not 1"},
    {"count", "[1, 2, 3] | count", 3, ""},
    {"d", "nope | d('x')", "x", ""},
    {"default", "nope | default", "", ""},
    {"default", "'' | default('x', true)", "x", ""},
    {"default", "'' | default('x')", "", ""},
    {"dict2items", "{'a': 1} | dict2items", Json::array({{{"key", "a"}, {"value", 1}}}), ""},
    {"difference", "[1, 2, 3, 2] | difference([2])", Json::array({1, 3}), ""},
    {"dirname", "'/a/b.txt' | dirname", "/a", ""},
    {"first", "[4, 5] | first", 4, ""},
    {"first", "[] | first", nullptr, "t:1: first of an empty list"},
    {"float", "'2.5' | float", 2.5, ""},
    {"float", "'x' | float", 0.0, ""},
    {"from_json", "'{\"a\": [1]}' | from_json", Json{{"a", {1}}}, ""},
    {"from_kv", "'a=1\\nb=x=y\\nnoeq' | from_kv", Json{{"a", "1"}, {"b", "x=y"}}, ""},
    {"hash", "'abc' | hash('sha256')",
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ""},
    {"hash", "'abc' | hash", "a9993e364706816aba3e25717850c26c9cd0d89d", ""},
    {"hash", "'abc' | hash('crc')", nullptr, "t:1: unknown hash 'crc' (sha256, sha1, sha512, md5)"},
    {"int", "'42' | int", 42, ""},
    {"int", "'x' | int", 0, ""},
    {"int", "'x' | int(7)", 7, ""},
    {"intersect", "[1, 2, 3] | intersect([3, 2, 9])", Json::array({2, 3}), ""},
    {"items2dict", "[{'key': 'a', 'value': 1}] | items2dict", Json{{"a", 1}}, ""},
    {"items2dict", "[{'n': 'a', 'v': 1}] | items2dict(key_name='n', value_name='v')",
     Json{{"a", 1}}, ""},
    {"join", "[1, 'b'] | join('-')", "1-b", ""},
    {"join", "1 | join", nullptr, "t:1: join needs a list, not 1"},
    {"last", "'abc' | last", "c", ""},
    {"length", "'abcd' | length", 4, ""},
    {"length", "1 | length", nullptr, "t:1: 1 has no length"},
    {"list", "'ab' | list", Json::array({"a", "b"}), ""},
    {"list", "{'k': 1} | list", Json::array({"k"}), ""},
    {"lower", "'AbC' | lower", "abc", ""},
    {"mandatory", "1 | mandatory", 1, ""},
    {"mandatory", "nope | mandatory", nullptr, "t:1: mandatory variable 'nope' is not defined"},
    {"mandatory", "nope | mandatory('set it')", nullptr, "t:1: set it"},
    {"map", "[{'a': {'b': 1}}, {'a': {'b': 2}}] | map(attribute='a.b')", Json::array({1, 2}), ""},
    {"map", "['A', 'B'] | map('lower')", Json::array({"a", "b"}), ""},
    {"map", "hosts | map('extract', hostvars, 'ip')", Json::array({"1.1.1.1", "2.2.2.2"}), ""},
    {"map", "['c'] | map('extract', hostvars)", nullptr, "t:1: undefined variable 'hostvars['c']'"},
    {"map", "[1] | map('join')", nullptr, "t:1: unknown filter 'join'"},
    {"max", "[3, 9, 1] | max", 9, ""},
    {"min", "[3, 9, 1] | min", 1, ""},
    {"min", "[] | min", nullptr, "t:1: min needs a non-empty list"},
    {"quote", "'a b' | quote", "'a b'", ""},
    {"regex_replace", R"('host-12' | regex_replace('([a-z]+)-([0-9]+)', '\\2-\\1'))", "12-host",
     ""},
    {"regex_replace", "'a' | regex_replace('(')", nullptr, ""},  // any regex_replace: message
    {"reject", "[0, 1, 2] | reject", Json::array({0}), ""},
    {"rejectattr", "[{'x': 1}, {'x': 0}] | rejectattr('x')", Json::array({{{"x", 0}}}), ""},
    {"replace", "'a.b.c' | replace('.', '/')", "a/b/c", ""},
    {"reverse", "[1, 2, 3] | reverse", Json::array({3, 2, 1}), ""},
    {"reverse", "'ab' | reverse", "ba", ""},
    {"select", "['a', 'bb', 'c'] | select('match', 'b')", Json::array({"bb"}), ""},
    {"select", "[1, 2] | select('ne', 1)", Json::array({2}), ""},
    {"select", "[1] | select('odd')", nullptr, "t:1: select: unsupported test 'odd'"},
    {"selectattr", "[{'r': 'p'}, {'r': 'q'}] | selectattr('r', 'equalto', 'q')",
     Json::array({{{"r", "q"}}}), ""},
    {"selectattr", "[{'r': 1}, {}] | selectattr('r', 'defined')", Json::array({{{"r", 1}}}), ""},
    {"sort", "[3, 1, 2] | sort", Json::array({1, 2, 3}), ""},
    {"string", "5 | string", "5", ""},
    {"ternary", "true | ternary('y', nope)", "y", ""},  // the other value is never evaluated
    {"ternary", "0 | ternary('y', 'n')", "n", ""},
    {"to_json", "{'a': [1, true]} | to_json", "{\"a\":[1,true]}", ""},
    {"to_nice_json", "[1] | to_nice_json", "[\n    1\n]", ""},
    {"trim", "'  x \\n' | trim", "x", ""},
    {"union", "[1, 2] | union([2, 3])", Json::array({1, 2, 3}), ""},
    {"unique", "[1, 1, 2] | unique", Json::array({1, 2}), ""},
    {"upper", "'abc' | upper", "ABC", ""},
    {"zip", "[1, 2, 3] | zip(['a', 'b'])",
     Json::array({Json::array({1, "a"}), Json::array({2, "b"})}), ""},
};

const std::vector<Case> kTestCases = {
    {"boolean", "true is boolean", true, ""},
    {"boolean", "1 is boolean", false, ""},
    {"change", "{'changed': true} is change", true, ""},
    {"changed", "{} is changed", false, ""},
    {"defined", "nope is defined", false, ""},
    {"eq", "1 is eq 1", true, ""},
    {"equalto", "'a' is equalto('b')", false, ""},
    {"even", "4 is even", true, ""},
    {"failed", "{'failed': true} is failed", true, ""},
    {"failure", "{'failed': false} is failure", false, ""},
    {"in", "2 is in([1, 2])", true, ""},
    {"in", "'b' is in('abc')", true, ""},
    {"integer", "1.5 is integer", false, ""},
    {"iterable", "'x' is iterable", true, ""},
    {"mapping", "{} is mapping", true, ""},
    {"match", "'abc' is match('b')", false, ""},
    {"match", "'abc' is match('(')", nullptr, ""},  // any regex_error message
    {"ne", "1 is ne 2", true, ""},
    {"none", "none is none", true, ""},
    {"number", "1.5 is number", true, ""},
    {"odd", "3 is odd", true, ""},
    {"sameas", "1 is sameas 1", true, ""},
    {"search", "'abc' is search('b')", true, ""},
    {"sequence", "[1] is sequence", true, ""},
    {"skip", "{'skipped': true} is skip", true, ""},
    {"skipped", "{} is skipped", false, ""},
    {"string", "'a' is string", true, ""},
    {"succeeded", "{} is succeeded", true, ""},
    {"success", "{'failed': 1} is success", false, ""},
    {"undefined", "nope is undefined", true, ""},
    {"undefined", "nope is not undefined", false, ""},
};

NoLookups kNoLookups;

void run(const Case& c) {
  CAPTURE(c.expr);
  const Source src{"t", 1};
  if (c.expected.is_null() && c.error.empty()) {
    CHECK_THROWS_AS(evaluate(c.expr, kScope, src, kNoLookups), TemplateError);
  } else if (!c.error.empty()) {
    CHECK_THROWS_WITH_AS(evaluate(c.expr, kScope, src, kNoLookups), c.error.c_str(), TemplateError);
  } else {
    Json got = evaluate(c.expr, kScope, src, kNoLookups);
    CHECK(got == c.expected);
  }
}

// Every name has a case, and every case names an entry (a typo does not fake coverage).
void check_coverage(const std::vector<std::string>& names, const std::vector<Case>& cases) {
  std::set<std::string> covered;
  for (const Case& c : cases) covered.insert(c.name);
  for (const std::string& name : names) {
    CAPTURE(name);
    CHECK(covered.count(name) == 1);
  }
  for (const std::string& name : covered) {
    CAPTURE(name);
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
  }
}

}  // namespace

TEST_CASE("filters: every filter in the tables has a case") {
  check_coverage(filter_names(), kFilterCases);
}

TEST_CASE("filters: each case") {
  for (const Case& c : kFilterCases) run(c);
}

TEST_CASE("filters: the two tables") {
  // int is in both: int(default) needs the call, int alone is usable as map('int').
  for (const auto& [name, f] : filter_table()) {
    CAPTURE(name);
    CHECK((simple_filter_table().count(name) == 0 || name == "int"));
  }
  CHECK(filter_names().size() == filter_table().size() + simple_filter_table().size() - 1);
  CHECK_THROWS_WITH_AS(evaluate("1 | nofilter", kScope, Source{"t", 1}, kNoLookups),
                       "t:1: unknown filter 'nofilter'", TemplateError);
  // An undefined input is an error before the name is looked at, except for default/mandatory.
  CHECK_THROWS_WITH_AS(evaluate("nope | nofilter", kScope, Source{"t", 1}, kNoLookups),
                       "t:1: undefined variable 'nope'", TemplateError);
  CHECK_THROWS_WITH_AS(evaluate("1 | replace('a')", kScope, Source{"t", 1}, kNoLookups),
                       "t:1: filter 'replace' needs 2 argument(s)", TemplateError);
}

TEST_CASE("tests: every Jinja test in the table has a case") {
  check_coverage(test_names(), kTestCases);
}

TEST_CASE("tests: each case") {
  for (const Case& c : kTestCases) run(c);
  CHECK_THROWS_WITH_AS(evaluate("1 is nosuchtest", kScope, Source{"t", 1}, kNoLookups),
                       "t:1: unknown test 'nosuchtest'", TemplateError);
  CHECK_THROWS_WITH_AS(evaluate("nope is string", kScope, Source{"t", 1}, kNoLookups),
                       "t:1: undefined variable 'nope'", TemplateError);
  CHECK_THROWS_WITH_AS(evaluate("1 is eq", kScope, Source{"t", 1}, kNoLookups),
                       "t:1: test 'eq' needs 1 argument(s)", TemplateError);
}
