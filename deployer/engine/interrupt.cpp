#include "engine/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace zdm::deploy {
namespace {

std::atomic<int> g_count{0};

void on_signal(int) {
  int n = ++g_count;
  const char* msg =
      n == 1 ? "\n[interrupted] finishing the hosts in progress (their update completes or rolls "
               "back), then stopping; no other host is touched\n"
             : "\n[interrupted] still finishing the hosts in progress; a host stopped half-way "
               "would be left without a proxy. Wait for the recap.\n";
  (void)!::write(2, msg, std::strlen(msg));
}

}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_count() {
  return g_count.load();
}

void reset_interrupts() {
  g_count = 0;
}

bool sleep_unless_interrupted(std::chrono::duration<double> d) {
  auto end = std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  int start = g_count.load();
  while (std::chrono::steady_clock::now() < end) {
    if (g_count.load() != start) return false;
    auto left = end - std::chrono::steady_clock::now();
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
  }
  return true;
}

}  // namespace zdm::deploy
