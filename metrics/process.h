// The standard process metrics every Prometheus client exports (process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds), read from /proc/self at each scrape, and
// dagd_build_info.
#ifndef DAGD_METRICS_PROCESS_H_
#define DAGD_METRICS_PROCESS_H_

#include <string>

#include "metrics/registry.h"

namespace dagd::metrics {

// Declares the process families in `registry` and a collect hook that refreshes them. Linux
// only; a figure /proc does not give stays at its last value.
void AddProcessMetrics(Registry* registry);

// Declares dagd_build_info{version, sqlite_version} = 1.
void AddBuildInfo(Registry* registry, const std::string& version,
                  const std::string& sqlite_version);

}  // namespace dagd::metrics

#endif  // DAGD_METRICS_PROCESS_H_
