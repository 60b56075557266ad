#include "data/client/page.h"

#include <boost/asio/ip/address.hpp>

namespace zdm::data {

Page Page::decode(Bytes body, uint8_t flags, uint8_t version) {
  Page p;
  p.body_ = std::move(body);
  cql::Reader r(p.body_);
  cql::skip_response_prefix(r, flags);
  if (static_cast<cql::ResultKind>(r.read_int()) != cql::ResultKind::kRows)
    throw cql::ProtocolError("RESULT is not Rows");
  p.metadata_ = cql::RowsMetadata::decode(r, version);
  p.columns_ = static_cast<std::size_t>(p.metadata_.column_count);
  const int32_t n = r.read_int();
  if (n < 0) throw cql::ProtocolError("negative row count");
  p.rows_ = static_cast<std::size_t>(n);
  // Every cell takes at least its 4-byte length: check the count before reserving.
  if (p.columns_ > 0) r.check_count(static_cast<uint64_t>(n) * p.columns_, 4, "cells");
  p.cells_.reserve(p.rows_ * p.columns_);
  for (std::size_t i = 0; i < p.rows_ * p.columns_; ++i) {
    auto v = r.read_bytes_view();
    if (v) p.value_bytes_ += v->size();
    p.cells_.push_back(v);
  }
  return p;
}

int Page::column(const std::string& name) const {
  for (std::size_t i = 0; i < metadata_.columns.size(); ++i)
    if (metadata_.columns[i].name == name) return static_cast<int>(i);
  return -1;
}

int64_t read_bigint(BytesView v) {
  if (v.size() != 8) throw cql::ProtocolError("bigint of " + std::to_string(v.size()) + " bytes");
  uint64_t x = 0;
  for (auto b : v) x = (x << 8) | std::to_integer<uint64_t>(b);
  return static_cast<int64_t>(x);
}

int32_t read_int(BytesView v) {
  if (v.size() != 4) throw cql::ProtocolError("int of " + std::to_string(v.size()) + " bytes");
  uint32_t x = 0;
  for (auto b : v) x = (x << 8) | std::to_integer<uint32_t>(b);
  return static_cast<int32_t>(x);
}

Bytes bigint_bytes(int64_t v) {
  Bytes out(8);
  for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<std::size_t>(i)] = std::byte(v & 0xff);
  return out;
}

Bytes int_bytes(int32_t v) {
  Bytes out(4);
  auto u = static_cast<uint32_t>(v);
  for (int i = 3; i >= 0; --i, u >>= 8) out[static_cast<std::size_t>(i)] = std::byte(u & 0xff);
  return out;
}

std::vector<std::string> read_text_collection(BytesView v) {
  cql::Reader r(v);
  const int32_t n = r.read_int();
  if (n < 0) throw cql::ProtocolError("negative collection size");
  r.check_count(static_cast<uint64_t>(n), 4, "elements");
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    auto e = r.read_bytes_view();
    out.push_back(e ? cql::to_string(*e) : "");
  }
  return out;
}

std::string inet_text(BytesView v) {
  namespace ip = boost::asio::ip;
  if (v.size() == 4) {
    ip::address_v4::bytes_type a;
    for (std::size_t i = 0; i < 4; ++i) a[i] = std::to_integer<unsigned char>(v[i]);
    return ip::address_v4(a).to_string();
  }
  if (v.size() == 16) {
    ip::address_v6::bytes_type a;
    for (std::size_t i = 0; i < 16; ++i) a[i] = std::to_integer<unsigned char>(v[i]);
    return ip::address_v6(a).to_string();
  }
  return "";
}

}  // namespace zdm::data
