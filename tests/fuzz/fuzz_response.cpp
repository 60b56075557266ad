// Harness: every response a cluster sends (common/cql/messages.h): ERROR (and the prepared id of
// UNPREPARED), READY, AUTHENTICATE, SUPPORTED, RESULT (Void, Rows, Set_keyspace, Prepared,
// Schema_change), EVENT, AUTH_CHALLENGE, AUTH_SUCCESS, for protocol versions 3, 4, 5, DSE_V1
// and DSE_V2, after skip_response_prefix (tracing id, warnings, custom payload).
//
// Input: one frame, header + body (as fuzz_request).
// Properties: decoding throws nothing but ProtocolError; encode → decode → encode is stable.
#include "tests/fuzz/message_fuzz.h"

using namespace zdm::cql;
using zdm::fuzz::decode_and_round_trip;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = zdm::fuzz::read_input(data, size);
  if (!in) return 0;
  const uint8_t v = in->header.version;
  try {
    Reader r(in->body);
    skip_response_prefix(r, in->header.flags);
    switch (in->header.opcode) {
      case Opcode::kError: {
        auto m = decode_and_round_trip<ErrorMsg>(r, v);
        if (m.code == ErrorCode::kUnprepared) (void)m.unprepared_id();
        break;
      }
      case Opcode::kReady:
        break;
      case Opcode::kAuthenticate:
        decode_and_round_trip<AuthenticateMsg>(r, v);
        break;
      case Opcode::kSupported: {
        auto m = decode_and_round_trip<SupportedMsg>(r, v);
        if (auto it = m.options.find("COMPRESSION"); it != m.options.end())
          for (const auto& name : it->second) (void)parse_compression(name);
        break;
      }
      case Opcode::kResult: {
        auto m = decode_and_round_trip<ResultMsg>(r, v);
        if (const auto* rows = std::get_if<RowsResult>(&m.body)) {
          for (const auto& c : rows->metadata.columns) (void)cql_type_name(c.type);
        }
        break;
      }
      case Opcode::kEvent:
        decode_and_round_trip<EventMsg>(r, v);
        break;
      case Opcode::kAuthChallenge:
      case Opcode::kAuthSuccess:
        (void)r.read_bytes();  // the SASL token, opaque to the codec
        break;
      default:
        break;
    }
  } catch (const ProtocolError&) {
  }
  return 0;
}
