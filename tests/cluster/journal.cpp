#include "tests/cluster/journal.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace zdm::testcluster {

namespace {

constexpr const char* kSnapshot = "snapshot.bin";
constexpr const char* kLog = "log.bin";

void write_record(std::FILE* f, cql::BytesView record) {
  unsigned char len[4];
  uint32_t n = static_cast<uint32_t>(record.size());
  len[0] = static_cast<unsigned char>(n >> 24);
  len[1] = static_cast<unsigned char>(n >> 16);
  len[2] = static_cast<unsigned char>(n >> 8);
  len[3] = static_cast<unsigned char>(n);
  if (std::fwrite(len, 1, 4, f) != 4 || (n && std::fwrite(record.data(), 1, n, f) != n))
    throw std::runtime_error(std::string("cannot write the data log: ") + std::strerror(errno));
}

void read_file(const std::string& path, const std::function<void(cql::BytesView)>& apply) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return;
  std::vector<std::byte> buf;
  for (;;) {
    unsigned char len[4];
    if (std::fread(len, 1, 4, f) != 4) break;
    uint32_t n = (uint32_t{len[0]} << 24) | (uint32_t{len[1]} << 16) | (uint32_t{len[2]} << 8) |
                 uint32_t{len[3]};
    buf.resize(n);
    if (n && std::fread(buf.data(), 1, n, f) != n) break;  // torn write: stop here
    apply(cql::BytesView(buf.data(), buf.size()));
  }
  std::fclose(f);
}

}  // namespace

Journal::Journal(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("--data-dir " + dir_ + ": " + ec.message());
  open_log();
}

Journal::~Journal() {
  if (log_) std::fclose(log_);
}

void Journal::open_log() {
  log_ = std::fopen((dir_ + "/" + kLog).c_str(), "ab");
  if (!log_)
    throw std::runtime_error("--data-dir " + dir_ + ": cannot open " + kLog + ": " +
                             std::strerror(errno));
}

void Journal::replay(const std::function<void(cql::BytesView)>& apply) const {
  read_file(dir_ + "/" + kSnapshot, apply);
  read_file(dir_ + "/" + kLog, apply);
}

void Journal::append(cql::BytesView record) {
  write_record(log_, record);
}

void Journal::flush() {
  std::fflush(log_);
}

void Journal::snapshot(
    const std::function<void(const std::function<void(cql::BytesView)>&)>& write) {
  std::string tmp = dir_ + "/" + kSnapshot + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
  try {
    write([&](cql::BytesView record) { write_record(f, record); });
  } catch (...) {
    std::fclose(f);
    throw;
  }
  std::fflush(f);
  std::fclose(f);
  std::filesystem::rename(tmp, dir_ + "/" + kSnapshot);
  std::fclose(log_);
  log_ = std::fopen((dir_ + "/" + kLog).c_str(), "wb");  // the snapshot holds it all now
  if (!log_) open_log();
}

}  // namespace zdm::testcluster
