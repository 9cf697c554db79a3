#include "metrics/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <sstream>
#include <string>

namespace dagd::metrics {
namespace {

// name -> value of the unlabelled samples of a rendering.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line.find('{') != std::string::npos) continue;
    const size_t space = line.find(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

TEST(ProcessMetricsTest, ReadsThisProcessFromProc) {
  Registry registry;
  AddProcessMetrics(&registry);
  std::map<std::string, double> before = Samples(registry.Render());
  ASSERT_EQ(before.size(), 6u) << registry.Render();
  EXPECT_GT(before["process_resident_memory_bytes"], 1 << 20);
  EXPECT_GE(before["process_virtual_memory_bytes"], before["process_resident_memory_bytes"]);
  EXPECT_GE(before["process_max_fds"], before["process_open_fds"]);
  // The process started before this test and not before the machine booted a year ago.
  EXPECT_LE(before["process_start_time_seconds"], static_cast<double>(std::time(nullptr)) + 1);
  EXPECT_GT(before["process_start_time_seconds"],
            static_cast<double>(std::time(nullptr)) - 365 * 86400.0);

  // Ten more descriptors are seen at the next scrape; CPU time is spent and counted.
  int fds[10];
  for (int& fd : fds) fd = open("/dev/null", O_RDONLY);
  volatile double sink = 0;
  for (int i = 0; i < 30000000; ++i) sink = sink + i * 0.5;
  std::map<std::string, double> after = Samples(registry.Render());
  EXPECT_EQ(after["process_open_fds"], before["process_open_fds"] + 10);
  EXPECT_GT(after["process_cpu_seconds_total"], before["process_cpu_seconds_total"]);
  for (int fd : fds) close(fd);
}

TEST(ProcessMetricsTest, BuildInfoIsOneWithItsLabels) {
  Registry registry;
  AddBuildInfo(&registry, "0.1.0", "3.40.1");
  EXPECT_NE(
      registry.Render().find("dagd_build_info{version=\"0.1.0\",sqlite_version=\"3.40.1\"} 1\n"),
      std::string::npos);
}

}  // namespace
}  // namespace dagd::metrics
