// Harness: every request a client sends (common/cql/messages.h): STARTUP, OPTIONS, QUERY,
// PREPARE, EXECUTE, BATCH, REGISTER, AUTH_RESPONSE, for protocol versions 3, 4, 5, DSE_V1 and
// DSE_V2, after skip_request_prefix; and the statements they carry through the classifier
// (common/cql/classifier.h), as the proxy's routing does.
//
// Input: one frame, header + body (the header's version is mapped onto one of the five; the
// body is the rest of the input, whatever the header's length says).
// Properties: decoding throws nothing but ProtocolError; encode → decode → encode is stable.
#include "common/cql/classifier.h"
#include "tests/fuzz/message_fuzz.h"

using namespace zdm::cql;
using zdm::fuzz::decode_and_round_trip;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = zdm::fuzz::read_input(data, size);
  if (!in) return 0;
  const uint8_t v = in->header.version;
  try {
    Reader r(in->body);
    skip_request_prefix(r, in->header.flags);
    switch (in->header.opcode) {
      case Opcode::kStartup: {
        auto m = decode_and_round_trip<StartupMsg>(r, v);
        if (auto it = m.options.find("COMPRESSION"); it != m.options.end())
          (void)parse_compression(it->second);
        break;
      }
      case Opcode::kOptions:
        break;
      case Opcode::kQuery: {
        auto m = decode_and_round_trip<QueryMsg>(r, v);
        (void)classify(m.query);
        break;
      }
      case Opcode::kPrepare: {
        auto m = decode_and_round_trip<PrepareMsg>(r, v);
        (void)classify(m.query);
        break;
      }
      case Opcode::kExecute:
        decode_and_round_trip<ExecuteMsg>(r, v);
        break;
      case Opcode::kBatch: {
        auto m = decode_and_round_trip<BatchMsg>(r, v);
        for (const auto& c : m.children)
          if (!c.prepared) (void)classify(c.query);
        break;
      }
      case Opcode::kRegister:
        decode_and_round_trip<RegisterMsg>(r, v);
        break;
      case Opcode::kAuthResponse:
        (void)r.read_bytes();  // the SASL token, opaque to the codec
        break;
      default:
        break;
    }
  } catch (const ProtocolError&) {
  }
  return 0;
}
