#include "cmd/dagctl/args.h"

#include "cmd/dagctl/format.h"
#include "gtest/gtest.h"

namespace dagd::dagctl {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(ParseDurationTest, UnitsAndSums) {
  EXPECT_EQ(*ParseDuration("90s"), seconds(90));
  EXPECT_EQ(*ParseDuration("1m30s"), seconds(90));
  EXPECT_EQ(*ParseDuration("2h"), hours(2));
  EXPECT_EQ(*ParseDuration("3d"), hours(72));
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("1h5m"), hours(1) + minutes(5));
  for (const char* bad : {"", "30", "m", "1x", "1h ", "-1s", "1.5h", "99999999999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(ParseRfc3339Test, ZonesAndFractions) {
  EXPECT_EQ(ParseRfc3339("2024-05-01T10:00:00Z")->seconds(), 1714557600);
  EXPECT_EQ(ParseRfc3339("2024-05-01T12:00:00+02:00")->seconds(), 1714557600);
  EXPECT_EQ(ParseRfc3339("2024-05-01t04:30:00-05:30")->seconds(), 1714557600);
  const auto fraction = ParseRfc3339("2024-05-01T10:00:00.25Z");
  EXPECT_EQ(fraction->nanos(), 250000000);
  for (const char* bad : {"2024-05-01", "2024-05-01T10:00:00", "2024-13-01T10:00:00Z",
                          "2024-05-01T10:00:00+0200", "2024-05-01T10:00:00Zjunk", "yesterday"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
}

TEST(ParseTimeBoundTest, DurationAgoOrAbsoluteTime) {
  google::protobuf::Timestamp now;
  now.set_seconds(1714557600);
  const TimePoint now_point = FromTimestamp(now);
  EXPECT_EQ(ParseTimeBound("2h", now_point)->seconds(), 1714557600 - 7200);
  EXPECT_EQ(ParseTimeBound("2024-05-01T09:00:00Z", now_point)->seconds(), 1714557600 - 3600);
  const auto bad = ParseTimeBound("soon", now_point);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("soon"), absl::string_view::npos);
}

TEST(ParseParameterTest, KeyEqualsValue) {
  EXPECT_EQ(*ParseParameter("env=staging"),
            std::make_pair(std::string("env"), std::string("staging")));
  EXPECT_EQ(*ParseParameter("expr=a=b"), std::make_pair(std::string("expr"), std::string("a=b")));
  EXPECT_EQ(*ParseParameter("empty="), std::make_pair(std::string("empty"), std::string()));
  EXPECT_FALSE(ParseParameter("novalue").ok());
  EXPECT_FALSE(ParseParameter("=x").ok());
}

TEST(ParseParametersTest, LaterValueWins) {
  const auto parameters = ParseParameters({"a=1", "b=2", "a=3"});
  ASSERT_TRUE(parameters.ok());
  EXPECT_EQ(*parameters, (std::map<std::string, std::string>{{"a", "3"}, {"b", "2"}}));
  EXPECT_FALSE(ParseParameters({"a=1", "b"}).ok());
}

TEST(ParsePhaseTest, ArgoWordsOrEnumNames) {
  EXPECT_EQ(*ParsePhase("Succeeded"), v1::PHASE_SUCCEEDED);
  EXPECT_EQ(*ParsePhase("failed"), v1::PHASE_FAILED);
  EXPECT_EQ(*ParsePhase("PHASE_RUNNING"), v1::PHASE_RUNNING);
  EXPECT_FALSE(ParsePhase("Unknown").ok());
  EXPECT_FALSE(ParsePhase("done").ok());
}

}  // namespace
}  // namespace dagd::dagctl
