#include "data/checkpoint.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace zdm::data {

namespace {
constexpr const char* kMagic = "zdm-data checkpoint 1 ";
}

std::string checkpoint_header(const std::string& job) {
  return kMagic + job;
}

std::string checkpoint_line(const std::string& table, const TokenRange& r, uint64_t rows,
                            uint64_t bytes) {
  return "done " + table + " " + std::to_string(r.start) + " " + std::to_string(r.end) + " " +
         std::to_string(rows) + " " + std::to_string(bytes);
}

CheckpointState parse_checkpoint(const std::string& text, const std::string& path) {
  CheckpointState s;
  std::vector<std::string> lines;
  std::size_t at = 0;
  bool last_complete = true;
  while (at < text.size()) {
    auto nl = text.find('\n', at);
    if (nl == std::string::npos) {
      lines.push_back(text.substr(at));
      last_complete = false;  // cut short by a crash while writing it
      break;
    }
    lines.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  if (lines.empty()) return s;
  if (!lines[0].starts_with(kMagic))
    throw CheckpointError(path + " is not a zdm-data checkpoint (first line: '" +
                          lines[0].substr(0, 60) + "')");
  s.job = lines[0].substr(std::strlen(kMagic));
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (i + 1 == lines.size() && !last_complete) break;
    std::istringstream in(lines[i]);
    std::string word, table, start, end;
    uint64_t rows = 0, bytes = 0;
    if (!(in >> word >> table >> start >> end >> rows >> bytes) || word != "done")
      throw CheckpointError(path + ":" + std::to_string(i + 1) + ": not a checkpoint line: '" +
                            lines[i] + "'");
    try {
      s.done[table].add(TokenRange{parse_token(start), parse_token(end)});
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(path + ":" + std::to_string(i + 1) + ": " + e.what());
    }
    s.rows[table] += rows;
    s.bytes[table] += bytes;
    ++s.ranges;
  }
  return s;
}

Checkpoint::Checkpoint(const std::string& path, const std::string& job) : path_(path) {
  std::ifstream in(path, std::ios::binary);
  bool fresh = true;
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    previous_ = parse_checkpoint(text, path);
    if (!text.empty()) {
      fresh = false;
      if (previous_.job != job)
        throw CheckpointError(path + " records another job (" + previous_.job + "), not " + job +
                              ": remove it or pass another --checkpoint");
      if (text.back() != '\n') {  // drop the cut line before appending
        if (::truncate(path.c_str(), static_cast<off_t>(text.rfind('\n') + 1)) != 0)
          throw CheckpointError(path + ": " + std::strerror(errno));
      }
    }
  }
  file_ = std::fopen(path.c_str(), "ab");
  if (!file_)
    throw CheckpointError("cannot write checkpoint " + path + ": " + std::strerror(errno));
  if (fresh) {
    std::string h = checkpoint_header(job) + "\n";
    std::fwrite(h.data(), 1, h.size(), file_);
    std::fflush(file_);
    ::fsync(fileno(file_));
  }
  thread_ = std::thread([this] { writer(); });
}

Checkpoint::~Checkpoint() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (file_) std::fclose(file_);
}

void Checkpoint::record(const std::string& table, const TokenRange& r, uint64_t rows,
                        uint64_t bytes) {
  {
    std::lock_guard lock(mu_);
    pending_ += checkpoint_line(table, r, rows, bytes) + "\n";
    ++queued_;
  }
  wake_.notify_one();
}

void Checkpoint::flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = queued_;
  wake_.notify_one();
  synced_.wait(lock, [&] { return written_ >= target; });
}

void Checkpoint::writer() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !pending_.empty(); });
    if (pending_.empty() && stop_) return;
    std::string batch;
    batch.swap(pending_);
    const uint64_t upto = queued_;
    lock.unlock();
    std::fwrite(batch.data(), 1, batch.size(), file_);
    std::fflush(file_);
    ::fsync(fileno(file_));
    lock.lock();
    written_ = upto;
    synced_.notify_all();
  }
}

}  // namespace zdm::data
