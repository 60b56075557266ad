#include <doctest/doctest.h>

#include "proxy/control_connection.h"

using namespace zdm;
using namespace zdm::proxy;

namespace {

cql::Bytes text(const std::string& s) {
  return cql::Bytes(reinterpret_cast<const std::byte*>(s.data()),
                    reinterpret_cast<const std::byte*>(s.data()) + s.size());
}

cql::Bytes inet(const std::string& ip) {
  auto a = asio::ip::make_address_v4(ip).to_bytes();
  cql::Bytes b;
  for (auto c : a) b.push_back(std::byte{c});
  return b;
}

cql::RowsResult rows(std::vector<std::string> names, std::vector<cql::Row> r) {
  cql::RowsResult out;
  for (auto& n : names) {
    cql::ColumnSpec c;
    c.name = n;
    out.metadata.columns.push_back(c);
  }
  out.metadata.column_count = static_cast<int32_t>(names.size());
  out.rows = std::move(r);
  return out;
}

tcp::endpoint ep(const std::string& ip, unsigned short port = 9042) {
  return tcp::endpoint(asio::ip::make_address(ip), port);
}

}  // namespace

TEST_CASE("datacenter_nodes: the contacted node and its peers of one datacenter, sorted") {
  auto local = rows({"data_center"}, {{text("dc1")}});
  auto peers = rows({"data_center", "rpc_address", "peer"},
                    {{text("dc1"), inet("10.0.0.3"), inet("10.0.1.3")},
                     {text("dc2"), inet("10.0.0.9"), inet("10.0.1.9")},
                     // rpc_address 0.0.0.0 (listening on every interface): the peer address
                     {text("dc1"), inet("0.0.0.0"), inet("10.0.1.2")},
                     // unset rpc_address: the peer address
                     {text("dc1"), std::nullopt, inet("10.0.1.4")},
                     // the same node twice: once
                     {text("dc1"), inet("10.0.0.3"), inet("10.0.1.3")}});
  auto nodes = datacenter_nodes(local, peers, asio::ip::make_address("10.0.0.1"), 9043, "dc1");
  CHECK(nodes == std::vector<tcp::endpoint>{ep("10.0.0.1", 9043), ep("10.0.0.3", 9043),
                                            ep("10.0.1.2", 9043), ep("10.0.1.4", 9043)});
  SUBCASE("the contacted node in another datacenter is left out") {
    auto far = datacenter_nodes(local, peers, asio::ip::make_address("10.0.0.1"), 9042, "dc2");
    CHECK(far == std::vector<tcp::endpoint>{ep("10.0.0.9")});
  }
  SUBCASE("no node in the datacenter") {
    CHECK(datacenter_nodes(local, peers, asio::ip::make_address("10.0.0.1"), 9042, "dc9").empty());
  }
}

TEST_CASE("assigned_nodes: ZDM's host assignment") {
  const std::vector<tcp::endpoint> six{ep("10.0.0.1"), ep("10.0.0.2"), ep("10.0.0.3"),
                                       ep("10.0.0.4"), ep("10.0.0.5"), ep("10.0.0.6")};
  const auto contacted = ep("10.0.0.4");
  SUBCASE("off: only the contacted node") {
    CHECK(assigned_nodes(six, contacted, false, 3, 1) == std::vector<tcp::endpoint>{contacted});
  }
  SUBCASE("6 nodes, 3 proxies: each proxy gets positions p with p mod 3 == its index") {
    CHECK(assigned_nodes(six, contacted, true, 3, 0) ==
          std::vector<tcp::endpoint>{ep("10.0.0.1"), ep("10.0.0.4")});
    CHECK(assigned_nodes(six, contacted, true, 3, 1) ==
          std::vector<tcp::endpoint>{ep("10.0.0.2"), ep("10.0.0.5")});
    CHECK(assigned_nodes(six, contacted, true, 3, 2) ==
          std::vector<tcp::endpoint>{ep("10.0.0.3"), ep("10.0.0.6")});
  }
  SUBCASE("fewer nodes than proxies: one node each, index mod nodes") {
    const std::vector<tcp::endpoint> two{ep("10.0.0.1"), ep("10.0.0.2")};
    CHECK(assigned_nodes(two, contacted, true, 3, 2) == std::vector<tcp::endpoint>{two[0]});
    CHECK(assigned_nodes(two, contacted, true, 3, 1) == std::vector<tcp::endpoint>{two[1]});
  }
  SUBCASE("no proxy_topology_addresses (0 proxies) is one proxy: every node") {
    CHECK(assigned_nodes(six, contacted, true, 0, 0) == six);
  }
}
