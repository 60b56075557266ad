#include <doctest/doctest.h>

#include "inventory/zdm_vars.h"

using namespace zdm::deploy;

TEST_CASE("ZDM automation's variables") {
  SUBCASE("every one is in the catalog, honoured or not supported with a reason") {
    size_t zdm = 0;
    for (const auto& v : known_variables())
      if (!v.file.empty()) {
        ++zdm;
        CHECK_MESSAGE((v.support == VarSupport::Honoured || v.support == VarSupport::NotSupported),
                      v.name);
        if (v.support == VarSupport::NotSupported) CHECK_MESSAGE(!v.note.empty(), v.name);
      }
    CHECK(zdm == 88);
  }
  SUBCASE("a container setting is reported, with where it was set") {
    auto msgs = check_variables({{"zdm_proxy_image", "datastax/zdm-proxy:2.1", "-e"}});
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].rfind("not supported: zdm_proxy_image (-e): ", 0) == 0);
  }
  SUBCASE("a typo gets a did-you-mean; an honoured one says nothing") {
    auto msgs = check_variables(
        {{"origin_contct_points", "x", "-e"}, {"origin_contact_points", "10.0.0.1", "-e"}});
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0] ==
          "unknown variable 'origin_contct_points' (-e): did you mean 'origin_contact_points'?");
  }
  SUBCASE("edit distance counts a transposition once") {
    CHECK(edit_distance("read_mode", "raed_mode") == 1);
    CHECK(edit_distance("abc", "abc") == 0);
  }
}
