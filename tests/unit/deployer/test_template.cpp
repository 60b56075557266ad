#include <doctest/doctest.h>

#include "template.h"

using namespace zdm::deploy;

namespace {

const Json kScope = {
    {"name", "proxy2"},
    {"port", 14001},
    {"flag", true},
    {"empty", ""},
    {"hosts", {"proxy1", "proxy2", "proxy3"}},
    {"hostvars",
     {{"proxy1", {{"ansible_host", "127.0.1.1"}}},
      {"proxy2", {{"ansible_host", "127.0.1.2"}}},
      {"proxy3", {{"ansible_host", "127.0.1.3"}}}}},
    {"cfg", {{"mode", "DUAL"}, {"list", {10, 20}}}},
    {"home", "/srv/{{ name }}"},           // a variable that is itself a template
    {"dirs", {"{{ home }}/bin", "/tmp"}},  // a list holding templates
    {"by_host", {{"used", "{{ name }}"}, {"unused", "{{ nope }}"}}},
};

std::string r(const std::string& text) {
  return render(text, kScope, Source{"t.j2", 1});
}

}  // namespace

TEST_CASE("template output expressions") {
  CHECK(r("host={{ name }} port={{ port }}") == "host=proxy2 port=14001");
  CHECK(r("{{ cfg.mode }} {{ cfg['mode'] }} {{ cfg.list[1] }} {{ hosts[-1] }}") ==
        "DUAL DUAL 20 proxy3");
  CHECK(r("{{ 'a' ~ port }} {{ port + 1 }} {{ '/x/' + name }}") == "a14001 14002 /x/proxy2");
  CHECK(r("{{ flag }} {{ none }}") == "True None");
  CHECK(r("{{ home }}") == "/srv/proxy2");  // lazily rendered like Ansible
  CHECK(r("{{ dirs | join(' ') }}|{% for d in dirs %}{{ d }};{% endfor %}|{{ dirs[0] }}") ==
        "/srv/proxy2/bin /tmp|/srv/proxy2/bin;/tmp;|/srv/proxy2/bin");
  CHECK(r("{{ by_host.used }}") == "proxy2");  // the undefined 'nope' is never rendered
}

TEST_CASE("template operators and tests") {
  CHECK(r("{{ port == 14001 }} {{ name != 'proxy2' }}") == "True False");
  CHECK(r("{{ flag and not empty }} {{ empty or 'dflt' }}") == "True dflt");
  CHECK(r("{{ 'proxy1' in hosts }} {{ 'x' in name }} {{ 'mode' in cfg }}") == "True True True");
  CHECK(r("{{ nope is defined }} {{ nope is not defined }} {{ name is defined }}") ==
        "False True True");
  CHECK(r("{{ hosts.index(name) }}") == "1");
  CHECK(r("{{ 'a' if flag else 'b' }}") == "a");
}

TEST_CASE("template filters") {
  CHECK(r("{{ nope | default('d') }} {{ nope | d(5) }} {{ name | default('x') }}") == "d 5 proxy2");
  CHECK(r("{{ hosts | join(',') }} {{ hosts | length }}") == "proxy1,proxy2,proxy3 3");
  CHECK(r("{{ cfg.mode | lower }} {{ name | upper }}") == "dual PROXY2");
  CHECK(r("{{ '42' | int + 1 }} {{ port | string }} {{ 'yes' | bool }}") == "43 14001 True");
  CHECK(r("{{ hosts | map('extract', hostvars, 'ansible_host') | join(',') }}") ==
        "127.0.1.1,127.0.1.2,127.0.1.3");
  CHECK(r("{{ \"it's\" | quote }} {{ 'plain' | quote }}") == "'it'\"'\"'s' plain");
  CHECK(r("{{ cfg.list | to_json }} {{ name | to_json }}") == "[10,20] \"proxy2\"");
}

TEST_CASE("template statements") {
  CHECK(r("{% if port > 100 %}big{% elif port > 10 %}mid{% else %}small{% endif %}") == "big");
  CHECK(r("{% if nope is defined %}a{% elif flag %}b{% endif %}") == "b");
  CHECK(r("{% for h in hosts %}{{ loop.index }}:{{ h }}{% if not loop.last %},{% endif %}{% endfor "
          "%}") == "1:proxy1,2:proxy2,3:proxy3");
  CHECK(r("{% for k, v in cfg.items() %}{{ k }};{% endfor %}") == "list;mode;");
  CHECK(r("a{# comment #}b") == "ab");
}

TEST_CASE("whitespace control") {
  CHECK(r("a\n  {%- if flag -%}\n  b\n  {%- endif %}\nc") == "ab\nc");
  CHECK(render("{% if flag %}\nyes\n{% endif %}\nend\n", kScope, Source{"t.j2", 1}, true) ==
        "yes\nend\n");
  CHECK(render("{% if flag %}\nyes\n{% endif %}\n", kScope, Source{"t.j2", 1}, false) ==
        "\nyes\n\n");
}

TEST_CASE("undefined variables are errors naming file:line and the variable") {
  CHECK_THROWS_WITH_AS(render("line1\nline2 {{ missing }}\n", kScope, Source{"templates/x.j2", 1}),
                       "templates/x.j2:2: undefined variable 'missing'", TemplateError);
  CHECK_THROWS_WITH_AS(r("{{ cfg.nokey }}"), "t.j2:1: undefined variable 'cfg.nokey'",
                       TemplateError);
  CHECK_THROWS_WITH_AS(r("{% if x == 1 %}{% endif %}"), "t.j2:1: undefined variable 'x'",
                       TemplateError);
  CHECK_THROWS_WITH_AS(render("{{ a }}", kScope, Source{"play.yml", 12}),
                       "play.yml:12: undefined variable 'a'", TemplateError);
}

TEST_CASE("template syntax errors") {
  CHECK_THROWS_WITH_AS(r("{% if flag %}x"), "t.j2:1: 'if' without 'endif'", TemplateError);
  CHECK_THROWS_WITH_AS(r("{{ name | nofilter }}"), "t.j2:1: unknown filter 'nofilter'",
                       TemplateError);
  CHECK_THROWS_WITH_AS(r("{{ name"), "t.j2:1: unclosed '{{' tag", TemplateError);
  CHECK_THROWS_WITH_AS(r("{{ hosts.index('proxy9') }}"), "t.j2:1: proxy9 is not in list 'hosts'",
                       TemplateError);
}

TEST_CASE("render_value keeps the type of a lone expression") {
  Source src{"p.yml", 3};
  CHECK(render_value("{{ port }}", kScope, src) == 14001);
  CHECK(render_value("{{ hosts }}", kScope, src) == kScope["hosts"]);
  CHECK(render_value("p{{ port }}", kScope, src) == "p14001");
  CHECK(render_value(Json{{"a", "{{ flag }}"}, {"b", {"{{ name }}"}}}, kScope, src) ==
        Json{{"a", true}, {"b", {"proxy2"}}});
  CHECK(evaluate_condition("port == 14001 and name is defined", kScope, src));
}

// Inputs found by fuzz_template (tests/fuzz/corpus/template/crash-*): each ended the process
// (an exception other than TemplateError, undefined behaviour, a stack overflow) where it must
// fail one task with "file:line: message".
TEST_CASE("strings that are not UTF-8 are shown, not thrown as json errors") {
  // '\xee\xff...' made dump() throw json's type_error.316 from the error message itself.
  CHECK_THROWS_WITH_AS(r("{{ 'a\xff' - '' }}"),
                       "t.j2:1: unsupported operands for '-': \"a\xef\xbf\xbd\" and \"\"",
                       TemplateError);
  CHECK(to_text(Json::array({"\xff"})) == "[\"\xef\xbf\xbd\"]");
  CHECK_THROWS_WITH_AS(
      r("{{ ['\xff'] | to_json }}"),
      "t.j2:1: to_json: [json.exception.type_error.316] invalid UTF-8 byte at index 0: 0xFF",
      TemplateError);
  CHECK_THROWS_AS(evaluate_condition("'ru\xee\xff\xff\xff"
                                     "e'''''-''",
                                     kScope, Source{"t", 1}),
                  TemplateError);
}

TEST_CASE("numbers out of range are TemplateErrors") {
  CHECK_THROWS_WITH_AS(
      r("{{ 99999999999999999999 }}"),
      "t.j2:1: number 99999999999999999999 out of range in expression '99999999999999999999'",
      TemplateError);
  CHECK_THROWS_AS(r("{{ 1" + std::string(400, '0') + ".5 }}"), TemplateError);
  CHECK_THROWS_AS(evaluate_condition("{3333333333333333333333333%~\xe3", kScope, Source{"t", 1}),
                  TemplateError);
}

TEST_CASE("integer arithmetic is 64-bit, with Python's floor division and modulo") {
  SUBCASE("overflow is an error, not undefined behaviour") {
    CHECK_THROWS_WITH_AS(r("{{ 9223372036854775807 + 1 }}"),
                         "t.j2:1: integer overflow in 9223372036854775807 + 1", TemplateError);
    CHECK_THROWS_WITH_AS(r("{{ -9223372036854775807 - 2 }}"),
                         "t.j2:1: integer overflow in -9223372036854775807 - 2", TemplateError);
    CHECK_THROWS_WITH_AS(r("{{ 76776 * 76066 * 2676 * 6 * 6 * 6 * 76066 * 26 }}"),
                         "t.j2:1: integer overflow in 3375638419539456 * 76066", TemplateError);
    CHECK_THROWS_WITH_AS(r("{{ (-9223372036854775807 - 1) // -1 }}"),
                         "t.j2:1: integer overflow in -9223372036854775808 // -1", TemplateError);
    CHECK_THROWS_WITH_AS(r("{{ -(-9223372036854775807 - 1) }}"),
                         "t.j2:1: integer overflow in -(-9223372036854775808)", TemplateError);
    CHECK_THROWS_WITH_AS(r("{{ (-9223372036854775807 - 1) | abs }}"),
                         "t.j2:1: integer overflow in abs(-9223372036854775808)", TemplateError);
  }
  SUBCASE("floor division and modulo take the divisor's sign") {
    CHECK(r("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 // -2 }} {{ -7 % 2 }} {{ 7 % -2 }} {{ 6 % 3 }}") ==
          "3 -4 -4 1 -1 0");
    CHECK(r("{{ (-9223372036854775807 - 1) % -1 }}") == "0");
  }
  SUBCASE("doubles convert to int only inside its range") {
    CHECK(r("{{ '1e300' | int }} {{ 'nan' | int }} {{ '2.5' | int }}") == "0 0 2");
    CHECK_THROWS_WITH_AS(r("{{ range('1e300' | float) }}"), "t.j2:1: cannot convert 1e+300 to int",
                         TemplateError);
  }
  SUBCASE("range() has Jinja's sandbox bound and cannot overflow") {
    CHECK(r("{{ range(100000) | length }}") == "100000");
    CHECK_THROWS_WITH_AS(r("{{ range(100001) }}"), "t.j2:1: range() of more than 100000 items",
                         TemplateError);
    CHECK_THROWS_WITH_AS(r("{{ range(-9223372036854775807, 9223372036854775807) }}"),
                         "t.j2:1: range() of more than 100000 items", TemplateError);
    CHECK(r("{{ range(9223372036854775800, 9223372036854775807, 3) }}") ==
          "[9223372036854775800,9223372036854775803,9223372036854775806]");
    CHECK(r("{{ range(5, 0, -2) }} {{ range(0, 5, -1) }}") == "[5,3,1] []");
  }
}

TEST_CASE("a lone '-' in a tag strips on the left only") {
  // "{{-}}" popped the '-' twice from an empty string.
  CHECK_THROWS_WITH_AS(r("[{{-}}"),
                       "t.j2:1: syntax error in expression '': unexpected end of expression",
                       TemplateError);
  CHECK(r("a {{- name -}} b") == "aproxy2b");
}

TEST_CASE("nesting is bounded, so a template cannot exhaust the stack") {
  SUBCASE("expressions") {
    const std::string deep = std::string(150, '(') + "1" + std::string(150, ')');
    const std::string deep_error =
        "t.j2:1: syntax error in expression '" + deep + "': nested deeper than 100 levels";
    CHECK_THROWS_WITH_AS(r("{{ " + deep + " }}"), deep_error.c_str(), TemplateError);
    const std::string ok = std::string(30, '[') + "1" + std::string(30, ']');
    CHECK(r("{{ " + ok + " | length }}") == "1");
    CHECK_THROWS_AS(r("J*[J*{{" + std::string(400, '{') + "J[[[" + std::string(400, '{')),
                    TemplateError);
  }
  SUBCASE("blocks") {
    std::string open, close;
    for (int i = 0; i < 150; ++i) open += "{% if flag %}", close += "{% endif %}";
    CHECK_THROWS_WITH_AS(r(open + "x" + close), "t.j2:1: blocks nested deeper than 100 levels",
                         TemplateError);
    CHECK(r(open.substr(0, 13 * 50) + "x" + close.substr(0, 11 * 50)) == "x");
  }
  SUBCASE("chains") {
    std::string sum = "1";
    for (int i = 0; i < 600; ++i) sum += " + 1";
    const std::string sum_error =
        "t.j2:1: syntax error in expression '" + sum + "': longer than 1000 tokens";
    CHECK_THROWS_WITH_AS(r("{{ " + sum + " }}"), sum_error.c_str(), TemplateError);
  }
}
