#include "data/range_job.h"

#include "data/async.h"

namespace zdm::data {

awaitable<void> pause(asio::io_context& ioc, std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(ioc);
  timer.expires_after(d);
  net::error_code ec;
  co_await timer.async_wait(net::nothrow(ec));
}

void count_down_ttl(Call& c, std::size_t ttl_slot, int64_t expires_s) {
  c.before_attempt = [ttl_slot, expires_s](std::vector<cql::Value>& v) {
    const int64_t left = expires_s - now_s();
    if (left <= 0) return false;
    v[ttl_slot] = cql::Value::of(int_bytes(static_cast<int32_t>(left)));
    return true;
  };
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

ProgressSnapshot progress_of(const Stats& stats, const WorkQueue& work) {
  ProgressSnapshot p;
  p.rows = stats.origin_rows.value();
  p.bytes = stats.origin_bytes.value();
  p.ranges_done = stats.ranges_done.value() + stats.ranges_failed.value();
  p.ranges_total = work.size();
  p.retries = stats.total_retries();
  return p;
}

RangeJob::RangeJob(Setup& s, WorkQueue& work, Stats& stats, RateLimiter& rate)
    : s_(s), work_(work), stats_(stats), rate_(rate) {}

void RangeJob::run(metrics::Registry& registry, const std::function<ProgressSnapshot()>& snapshot) {
  run_workers(
      s_.options, registry, [this](asio::io_context& ioc, int i) { return thread_main(ioc, i); },
      snapshot, [this]() { work_.stop(); });
}

std::string RangeJob::fatal_error() {
  std::lock_guard lock(mu_);
  return fatal_;
}

void RangeJob::fatal(const std::string& why) {
  std::lock_guard lock(mu_);
  if (fatal_.empty()) fatal_ = why;
  work_.stop();
}

awaitable<bool> RangeJob::prepared(awaitable<void> prepare) {
  try {
    co_await std::move(prepare);
  } catch (const RequestError& e) {
    fatal(e.what());
    co_return false;
  }
  co_return true;
}

awaitable<void> RangeJob::run_range_workers(asio::io_context& ioc,
                                            std::function<awaitable<void>(const WorkItem&)> range) {
  WaitGroup workers(ioc);
  for (int i = 0; i < s_.options.parallel; ++i) {
    workers.add();
    asio::co_spawn(ioc, range_worker(range), [&workers](std::exception_ptr e) {
      log_exception(e, "range worker");
      workers.done();
    });
  }
  co_await workers.wait();
}

awaitable<void> RangeJob::range_worker(
    const std::function<awaitable<void>(const WorkItem&)>& range) {
  while (const WorkItem* item = work_.next()) co_await range(*item);
}

awaitable<std::optional<std::string>> RangeJob::attempt(awaitable<void> body) {
  try {
    co_await std::move(body);
  } catch (const RequestError& e) {
    if (e.code && !retryable(*e.code)) fatal(e.what());
    co_return e.what();
  } catch (const std::exception& e) {
    co_return e.what();
  }
  co_return std::nullopt;
}

awaitable<Page> RangeJob::scan_page(Session& session, Statement& scan, const Layout& layout,
                                    TokenRange range, std::optional<Bytes> paging, bool origin) {
  Call c;
  c.values = {cql::Value::of(bigint_bytes(range.start)), cql::Value::of(bigint_bytes(range.end))};
  c.routing_token = range.end;
  c.page_size = s_.options.page_size;
  c.paging_state = std::move(paging);
  Page page = co_await session.select(scan, std::move(c));
  if (page.columns() != layout.width)
    throw std::runtime_error("the scan returned " + std::to_string(page.columns()) +
                             " columns, expected " + std::to_string(layout.width));
  (origin ? stats_.origin_rows : stats_.target_rows).inc(page.rows());
  (origin ? stats_.origin_bytes : stats_.target_bytes).inc(page.value_bytes());
  co_return page;
}

awaitable<void> RangeJob::throttle(asio::io_context& ioc, const Page& page) {
  if (auto wait = rate_.take(page.rows(), page.value_bytes(), RateLimiter::Clock::now());
      wait.count() > 0)
    co_await pause(ioc, wait);
}

}  // namespace zdm::data
