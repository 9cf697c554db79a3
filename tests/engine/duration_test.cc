#include "engine/duration.h"

#include <gtest/gtest.h>

namespace dagd::engine {
namespace {

TEST(DurationTest, ParsesArgoForms) {
  EXPECT_EQ(*ParseDurationMs("5s"), 5000);
  EXPECT_EQ(*ParseDurationMs("1m30s"), 90000);
  EXPECT_EQ(*ParseDurationMs("2h"), 7200000);
  EXPECT_EQ(*ParseDurationMs("500ms"), 500);
  EXPECT_EQ(*ParseDurationMs("1.5h"), 5400000);
  EXPECT_EQ(*ParseDurationMs("0"), 0);
  EXPECT_EQ(*ParseDurationMs("1500us"), 1);
}

TEST(DurationTest, PlainIntegerIsSeconds) { EXPECT_EQ(*ParseDurationMs("30"), 30000); }

TEST(DurationTest, RejectsBadInput) {
  for (const char* bad : {"", "1.5", "-5s", "5x", "s", "1..5s", "5 s", "abc"}) {
    absl::StatusOr<int64_t> parsed = ParseDurationMs(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(parsed.status().message().find(std::string("\"") + bad + "\""),
                absl::string_view::npos)
          << parsed.status();
    }
  }
}

TEST(DurationTest, Formats) {
  EXPECT_EQ(FormatDurationMs(500), "500ms");
  EXPECT_EQ(FormatDurationMs(5000), "5s");
  EXPECT_EQ(FormatDurationMs(1500), "1.5s");
  EXPECT_EQ(FormatDurationMs(90000), "1m30s");
  EXPECT_EQ(FormatDurationMs(7200000), "2h");
  EXPECT_EQ(FormatDurationMs(3605000), "1h0m5s");
}

}  // namespace
}  // namespace dagd::engine
