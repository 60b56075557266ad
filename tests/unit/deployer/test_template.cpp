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
