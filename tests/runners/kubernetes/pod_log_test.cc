// PodLogDemux: console output and callback events back out of a pod's merged log, whatever the
// chunking.
#include "runners/kubernetes/pod_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runners/kubernetes/ansible_pod.h"

namespace dagd::runners::kubernetes {
namespace {

struct Split {
  std::string output;
  std::vector<std::string> events;
};

Split Demux(const std::vector<std::string>& chunks) {
  Split split;
  PodLogDemux demux([&](std::string_view text) { split.output.append(text); },
                    [&](std::string_view event) { split.events.emplace_back(event); });
  for (const std::string& chunk : chunks) demux.Feed(chunk);
  demux.Finish();
  return split;
}

const std::string kPrefix = kEventLinePrefix;

TEST(PodLogDemuxTest, SeparatesEventsFromOutputAtEverySplit) {
  // What the plugin and Ansible write: output, then "\n" + prefix + event + "\n" each time.
  const std::string log = "PLAY [all] ***\n\n" + kPrefix + R"({"kind":"play_start"})" + "\n" +
                          "TASK [x] ***\nok: [h]" + "\n" + kPrefix + R"({"kind":"runner_on_ok"})" +
                          "\n\n\nPLAY RECAP\nh : ok=1";
  const std::string want_output = "PLAY [all] ***\nTASK [x] ***\nok: [h]\n\n\nPLAY RECAP\nh : ok=1";
  const std::vector<std::string> want_events = {R"({"kind":"play_start"})",
                                                R"({"kind":"runner_on_ok"})"};
  for (size_t cut = 0; cut <= log.size(); ++cut) {
    Split split = Demux({log.substr(0, cut), log.substr(cut)});
    EXPECT_EQ(split.output, want_output) << "cut at " << cut;
    EXPECT_EQ(split.events, want_events) << "cut at " << cut;
  }
  Split bytewise;
  std::vector<std::string> bytes;
  for (char c : log) bytes.emplace_back(1, c);
  bytewise = Demux(bytes);
  EXPECT_EQ(bytewise.output, want_output);
  EXPECT_EQ(bytewise.events, want_events);
}

TEST(PodLogDemuxTest, PrefixInsideALineIsOutput) {
  Split split = Demux({"echo " + kPrefix + "not an event\n"});
  EXPECT_EQ(split.output, "echo " + kPrefix + "not an event\n");
  EXPECT_TRUE(split.events.empty());
}

}  // namespace
}  // namespace dagd::runners::kubernetes
