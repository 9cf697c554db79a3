// Every workflow the project ships (examples/ and the integration tests' workflows) parses and
// validates, so a typo there is caught by the unit tests, not by a user.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/parser.h"
#include "engine/validate.h"

namespace dagd::engine {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> ShippedWorkflows() {
  std::vector<fs::path> files;
  for (const char* dir : {"examples", "tests/integration/testdata"}) {
    for (const auto& entry : fs::recursive_directory_iterator(fs::path(DAGD_SOURCE_DIR) / dir)) {
      if (entry.path().extension() != ".yaml") continue;
      if (entry.path().parent_path().filename() == "playbooks") continue;
      files.push_back(entry.path());
    }
  }
  return files;
}

TEST(ShippedWorkflowsTest, ParseAndValidate) {
  std::vector<fs::path> files = ShippedWorkflows();
  ASSERT_GE(files.size(), 5u);
  for (const fs::path& file : files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    auto workflow = ParseWorkflow(text.str(), file.string());
    ASSERT_TRUE(workflow.ok()) << workflow.status();
    EXPECT_TRUE(ValidateWorkflow(*workflow).ok()) << ValidateWorkflow(*workflow);
  }
}

}  // namespace
}  // namespace dagd::engine
