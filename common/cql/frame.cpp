#include "common/cql/frame.h"

#include <cstdio>
#include <cstring>

namespace zdm::cql {

std::string opcode_name(Opcode op) {
  switch (op) {
    case Opcode::kError:
      return "ERROR";
    case Opcode::kStartup:
      return "STARTUP";
    case Opcode::kReady:
      return "READY";
    case Opcode::kAuthenticate:
      return "AUTHENTICATE";
    case Opcode::kOptions:
      return "OPTIONS";
    case Opcode::kSupported:
      return "SUPPORTED";
    case Opcode::kQuery:
      return "QUERY";
    case Opcode::kResult:
      return "RESULT";
    case Opcode::kPrepare:
      return "PREPARE";
    case Opcode::kExecute:
      return "EXECUTE";
    case Opcode::kRegister:
      return "REGISTER";
    case Opcode::kEvent:
      return "EVENT";
    case Opcode::kBatch:
      return "BATCH";
    case Opcode::kAuthChallenge:
      return "AUTH_CHALLENGE";
    case Opcode::kAuthResponse:
      return "AUTH_RESPONSE";
    case Opcode::kAuthSuccess:
      return "AUTH_SUCCESS";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "UNKNOWN(0x%02x)", static_cast<unsigned>(op));
  return buf;
}

bool is_known_opcode(uint8_t raw) {
  return raw <= 0x10 && raw != 0x04;
}

Header decode_header(BytesView in, uint32_t max_body) {
  if (in.size() < kHeaderSize) {
    throw ProtocolError("truncated frame header: expected 9 bytes, length is " +
                        std::to_string(in.size()));
  }
  auto b = [&](std::size_t i) { return std::to_integer<uint32_t>(in[i]); };
  Header h;
  h.version = static_cast<uint8_t>(b(0) & 0x7f);
  h.response = (b(0) & kResponseBit) != 0;
  h.flags = static_cast<uint8_t>(b(1));
  h.stream = static_cast<int16_t>((b(2) << 8) | b(3));
  h.opcode = static_cast<Opcode>(b(4));
  h.length = (b(5) << 24) | (b(6) << 16) | (b(7) << 8) | b(8);
  if (h.length > max_body) {
    throw ProtocolError("frame body too large: " + std::to_string(h.length) + " bytes, limit " +
                        std::to_string(max_body));
  }
  return h;
}

void encode_header(const Header& h, std::byte* out) {
  out[0] = static_cast<std::byte>(h.version | (h.response ? kResponseBit : 0));
  out[1] = static_cast<std::byte>(h.flags);
  patch_stream(out, h.stream);
  out[4] = static_cast<std::byte>(h.opcode);
  out[5] = static_cast<std::byte>(h.length >> 24);
  out[6] = static_cast<std::byte>(h.length >> 16);
  out[7] = static_cast<std::byte>(h.length >> 8);
  out[8] = static_cast<std::byte>(h.length);
}

Bytes encode_frame(Header header, BytesView body) {
  header.length = static_cast<uint32_t>(body.size());
  Bytes out(kHeaderSize + body.size());
  encode_header(header, out.data());
  if (!body.empty()) std::memcpy(out.data() + kHeaderSize, body.data(), body.size());
  return out;
}

void FrameDecoder::feed(BytesView data) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536 && pos_ * 2 > buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

void FrameDecoder::reserve_pending() {
  // Grown by doubling, the buffer would copy half the frame at once (32 MiB of a 64 MiB
  // frame), faulting in every page of the new buffer in one go: a stall of every connection of
  // the worker (about 100 ms where page faults are slow). Reserving touches nothing: pages
  // fault in as the bytes arrive.
  auto len = pending_length();
  if (!len || *len < kMoveFrameBytes || *len > max_body_) return;
  const std::size_t need = pos_ + kHeaderSize + *len;
  if (need > buf_.capacity()) buf_.reserve(need);
}

bool FrameDecoder::next(Frame& out) {
  std::size_t avail = buf_.size() - pos_;
  if (avail < kHeaderSize) return false;
  Header h = decode_header(BytesView(buf_.data() + pos_, avail), max_body_);
  if (avail < kHeaderSize + h.length) return false;
  out.header = h;
  auto body_begin = buf_.begin() + static_cast<std::ptrdiff_t>(pos_ + kHeaderSize);
  out.body.assign(body_begin, body_begin + h.length);
  pos_ += kHeaderSize + h.length;
  return true;
}

bool FrameDecoder::next_raw(Header& header, Bytes& out) {
  std::size_t avail = buf_.size() - pos_;
  if (avail < kHeaderSize) return false;
  Header h = decode_header(BytesView(buf_.data() + pos_, avail), max_body_);
  if (avail < kHeaderSize + h.length) return false;
  header = h;
  const std::size_t size = kHeaderSize + h.length;
  if (pos_ == 0 && avail == size && size >= kMoveFrameBytes && buf_.capacity() <= 2 * size) {
    // A large frame that is all the buffer holds: handed over, not copied. A copy would keep
    // two of it until the buffer is released (a 24 MiB answer costing 48 MiB or more).
    out = std::move(buf_);
    buf_ = Bytes();
    return true;
  }
  auto begin = buf_.begin() + static_cast<std::ptrdiff_t>(pos_);
  out.assign(begin, begin + static_cast<std::ptrdiff_t>(size));
  pos_ += size;
  if (size >= kMoveFrameBytes && buf_.size() - pos_ < size / 4) {
    // The buffer grew for a large frame: what follows it moves to a buffer of its own size, so
    // the large one is not kept (until release_if_idle) next to the copy just made.
    Bytes(buf_.begin() + static_cast<std::ptrdiff_t>(pos_), buf_.end()).swap(buf_);
    pos_ = 0;
  }
  return true;
}

Bytes FrameDecoder::take_buffered() {
  Bytes out(buf_.begin() + static_cast<std::ptrdiff_t>(pos_), buf_.end());
  buf_.clear();
  pos_ = 0;
  return out;
}

}  // namespace zdm::cql
