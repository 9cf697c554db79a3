#include "metrics/process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace dagd::metrics {
namespace {

struct ProcStat {
  double cpu_seconds = 0;
  double start_seconds_after_boot = 0;
  double virtual_bytes = 0;
  double resident_bytes = 0;
};

// /proc/self/stat: fields 14, 15 (utime, stime), 22 (starttime) in clock ticks, 23 (vsize) in
// bytes, 24 (rss) in pages. The command name (field 2) may hold spaces: parse after its ')'.
bool ReadProcStat(ProcStat* out) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  for (std::string token; fields >> token;) f.push_back(token);
  if (f.size() < 22) return false;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  out->cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  out->start_seconds_after_boot = std::stod(f[19]) / ticks;
  out->virtual_bytes = std::stod(f[20]);
  out->resident_bytes = std::stod(f[21]) * page;
  return true;
}

// Seconds since the epoch at boot, from /proc/stat's btime.
double BootTime() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double btime = 0;
      in >> btime;
      return btime;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // not the descriptor opendir itself holds
}

}  // namespace

void AddProcessMetrics(Registry* registry) {
  Counter* cpu =
      &registry
           ->AddCounter("process_cpu_seconds_total", "User and system CPU time spent in seconds.")
           ->Get();
  Gauge* resident =
      &registry->AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.")->Get();
  Gauge* virtual_memory =
      &registry->AddGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")->Get();
  Gauge* open_fds =
      &registry->AddGauge("process_open_fds", "Number of open file descriptors.")->Get();
  Gauge* max_fds =
      &registry->AddGauge("process_max_fds", "Maximum number of open file descriptors.")->Get();
  Gauge* start_time = &registry
                           ->AddGauge("process_start_time_seconds",
                                      "Start time of the process since unix epoch in seconds.")
                           ->Get();
  const double boot = BootTime();
  registry->OnCollect([=] {
    ProcStat stat;
    if (ReadProcStat(&stat)) {
      cpu->CatchUp(stat.cpu_seconds);
      resident->Set(stat.resident_bytes);
      virtual_memory->Set(stat.virtual_bytes);
      start_time->Set(boot + stat.start_seconds_after_boot);
    }
    if (int fds = CountOpenFds(); fds >= 0) open_fds->Set(fds);
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) max_fds->Set(static_cast<double>(limit.rlim_cur));
  });
}

void AddBuildInfo(Registry* registry, const std::string& version,
                  const std::string& sqlite_version) {
  registry
      ->AddGauge("dagd_build_info", "Always 1; the labels say which dagd this is.",
                 {"version", "sqlite_version"})
      ->Labels({version, sqlite_version})
      .Set(1);
}

}  // namespace dagd::metrics
