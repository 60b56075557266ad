#include <doctest/doctest.h>

#include "data/client/page.h"

using namespace zdm::data;
namespace cql = zdm::cql;

TEST_CASE("a page of rows") {
  SUBCASE("cells are views of the body; the paging state is kept") {
    cql::RowsResult rows;
    rows.metadata.columns = {{"ks", "t", "a", cql::DataType::of(cql::TypeId::kInt)},
                             {"ks", "t", "b", cql::DataType::of(cql::TypeId::kVarchar)}};
    rows.metadata.column_count = 2;
    rows.metadata.paging_state = cql::to_bytes("next");
    rows.rows = {{int_bytes(1), cql::to_bytes("x")}, {int_bytes(2), std::nullopt}};
    cql::ResultMsg msg{rows};
    Bytes body;
    cql::Writer w(body);
    msg.encode(w, 4);
    auto p = Page::decode(body, 0, 4);
    CHECK(p.rows() == 2);
    CHECK(p.columns() == 2);
    CHECK(p.column("b") == 1);
    CHECK(p.column("zz") == -1);
    CHECK(read_int(*p.at(1, 0)) == 2);
    CHECK(!p.at(1, 1));
    CHECK(cql::to_string(*p.row(0)[1]) == "x");
    CHECK(*p.paging_state() == cql::to_bytes("next"));
    CHECK(p.value_bytes() == 4 + 1 + 4);
  }
  SUBCASE("a row count the body cannot hold is refused before anything is reserved") {
    Bytes body;
    cql::Writer w(body);
    w.write_int(2);          // Rows
    w.write_int(0x0004);     // no metadata
    w.write_int(3);          // columns
    w.write_int(100000000);  // rows
    CHECK_THROWS_AS(Page::decode(body, 0, 4), cql::ProtocolError);
  }
  SUBCASE("values zdm-data reads itself") {
    CHECK(read_bigint(bigint_bytes(-2)) == -2);
    CHECK(read_int(int_bytes(-70000)) == -70000);
    Bytes set;
    cql::Writer w(set);
    w.write_int(2);
    w.write_bytes(cql::to_bytes("-5"));
    w.write_bytes(cql::to_bytes("7"));
    CHECK(read_text_collection(set) == std::vector<std::string>{"-5", "7"});
    CHECK(inet_text(Bytes{std::byte{127}, std::byte{24}, std::byte{0}, std::byte{1}}) ==
          "127.24.0.1");
    CHECK_THROWS_AS(read_bigint(int_bytes(1)), cql::ProtocolError);
  }
}
