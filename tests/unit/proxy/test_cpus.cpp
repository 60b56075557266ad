#include <doctest/doctest.h>
#include <sched.h>

#include <thread>

#include "proxy/cpus.h"

using namespace zdm::proxy;

TEST_CASE("cgroup v2 cpu.max: quota over period, rounded up") {
  CHECK(cpus_of_cgroup_v2("100000 100000\n") == 1);
  CHECK(cpus_of_cgroup_v2("150000 100000\n") == 2);
  CHECK(cpus_of_cgroup_v2("50000 100000") == 1);  // half a CPU still needs one worker
  CHECK(cpus_of_cgroup_v2("400000 100000") == 4);
  CHECK_FALSE(cpus_of_cgroup_v2("max 100000\n"));
  CHECK_FALSE(cpus_of_cgroup_v2(""));
  CHECK_FALSE(cpus_of_cgroup_v2("garbage"));
}

TEST_CASE("cgroup v1 cfs quota and period") {
  CHECK(cpus_of_cgroup_v1("200000\n", "100000\n") == 2);
  CHECK(cpus_of_cgroup_v1("250000", "100000") == 3);
  CHECK_FALSE(cpus_of_cgroup_v1("-1\n", "100000\n"));
  CHECK_FALSE(cpus_of_cgroup_v1("", ""));
}

TEST_CASE("usable_cpus follows the affinity mask") {
  const int all = usable_cpus();
  CHECK(all >= 1);
  CHECK(all <= static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  cpu_set_t saved;
  REQUIRE(sched_getaffinity(0, sizeof(saved), &saved) == 0);
  int first = -1;
  for (int i = 0; i < CPU_SETSIZE && first < 0; ++i)
    if (CPU_ISSET(i, &saved)) first = i;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  // The calling thread's mask is what sched_getaffinity(0) reads: pin it, ask, restore.
  REQUIRE(sched_setaffinity(0, sizeof(one), &one) == 0);
  const int pinned = usable_cpus();
  sched_setaffinity(0, sizeof(saved), &saved);
  CHECK(pinned == 1);
}
