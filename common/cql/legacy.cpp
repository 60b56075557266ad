#include "common/cql/legacy.h"

#include "common/cql/notation.h"

namespace zdm::cql {

Bytes encode_legacy_protocol_error(uint8_t version, int8_t stream, const std::string& message) {
  Bytes out(kLegacyHeaderSize);
  Writer w(out);
  w.write_int(0x000A);
  w.write_string(message);
  const uint32_t len = static_cast<uint32_t>(out.size() - kLegacyHeaderSize);
  out[0] = static_cast<std::byte>(version | kResponseBit);
  out[1] = std::byte{0};
  out[2] = static_cast<std::byte>(static_cast<uint8_t>(stream));
  out[3] = std::byte{0x00};  // ERROR
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<std::byte>(len >> (24 - 8 * i));
  return out;
}

}  // namespace zdm::cql
