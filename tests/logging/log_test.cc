#include "logging/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace dagd::logging {
namespace {

// Formats one message at info level through a logger with the JSON formatter.
nlohmann::json JsonLine(const std::string& message) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("scheduler", sink);
  logger.set_formatter(NewJsonFormatter());
  logger.info(message);
  const std::string text = out.str();
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line: " << text;
  return nlohmann::json::parse(text);
}

TEST(RunTagTest, NamesTheRunNodeAndAttempt) {
  EXPECT_EQ(RunTag("diamond-x1"), "[run=diamond-x1] ");
  EXPECT_EQ(RunTag("diamond-x1", "diamond-x1.B"), "[run=diamond-x1 node=diamond-x1.B] ");
  EXPECT_EQ(RunTag("diamond-x1", "diamond-x1.B", 2),
            "[run=diamond-x1 node=diamond-x1.B attempt=2] ");
  EXPECT_EQ(RunTag("r", "r.configure(0:web one])"), "[run=r node=\"r.configure(0:web one])\"] ");
}

TEST(JsonFormatTest, LiftsTheRunTagIntoFields) {
  nlohmann::json line = JsonLine(RunTag("r1", "r1.B", 2) + "commit failed: \"disk\" full");
  EXPECT_EQ(line["run"], "r1");
  EXPECT_EQ(line["node"], "r1.B");
  EXPECT_EQ(line["attempt"], 2);
  EXPECT_EQ(line["msg"], "commit failed: \"disk\" full");
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["logger"], "scheduler");
  const std::string time = line["time"];
  ASSERT_EQ(time.size(), 24u) << time;  // 2026-11-26T18:00:00.123Z
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time.back(), 'Z');

  nlohmann::json quoted = JsonLine(RunTag("r", "r.configure(0:web one])") + "x");
  EXPECT_EQ(quoted["node"], "r.configure(0:web one])");
  EXPECT_EQ(quoted["msg"], "x");
}

TEST(JsonFormatTest, ALineWithoutAWellFormedTagKeepsItsWholeMessage) {
  for (const std::string message :
       {"dagd listening on 127.0.0.1:7233", "[run=] x", "[run=r x", "[run=r color=blue] x",
        "[run=r attempt=two] x", "multi\nline \x01 \xff text"}) {
    nlohmann::json line = JsonLine(message);
    EXPECT_FALSE(line.contains("run")) << message;
    EXPECT_EQ(line["msg"].get<std::string>().substr(0, 5),
              nlohmann::json(message)
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  .substr(1, 5))
        << message;
  }
}

TEST(ConfigureTest, RefusesUnknownFormatsAndLevels) {
  EXPECT_EQ(Configure("xml", "info").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Configure("xml", "info").message().find("\"xml\" is not one of text, json"),
            std::string::npos);
  EXPECT_EQ(Configure("text", "loud").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Configure("json", "warn").ok());
  EXPECT_EQ(Get("some.module")->level(), spdlog::level::warn);
  EXPECT_EQ(Get("some.module"), Get("some.module"));
  EXPECT_TRUE(Configure("text", "info").ok());
}

}  // namespace
}  // namespace dagd::logging
