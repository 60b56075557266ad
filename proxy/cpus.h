// How many CPUs this process may actually use: the CPUs of its affinity mask, bounded by the
// CPU quota of its cgroup. std::thread::hardware_concurrency() counts the machine's CPUs, so
// a proxy pinned to one core (taskset, systemd CPUAffinity) or limited to one CPU's time
// (container cpu limits, systemd CPUQuota) would start one worker per machine core and have
// them preempt one another.
#pragma once

#include <optional>
#include <string_view>

namespace zdm::proxy {

/// cgroup v2 `cpu.max` ("QUOTA PERIOD", microseconds, QUOTA "max" = unlimited) → the CPUs that
/// quota buys, rounded up (at least 1); nullopt when unlimited or unreadable.
/// E.g. "150000 100000" → 2, "max 100000" → nullopt.
std::optional<int> cpus_of_cgroup_v2(std::string_view cpu_max);
/// cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` contents → as above (quota -1 =
/// unlimited).
std::optional<int> cpus_of_cgroup_v1(std::string_view quota_us, std::string_view period_us);

/// min(CPUs in sched_getaffinity, the cgroup's quota in CPUs) for the calling process, read
/// from /proc/self/cgroup and /sys/fs/cgroup; falls back to hardware_concurrency(); at least 1.
int usable_cpus();

}  // namespace zdm::proxy
