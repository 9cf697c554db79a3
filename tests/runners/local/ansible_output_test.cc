#include "runners/local/ansible_output.h"

#include <gtest/gtest.h>

#include <string>

namespace dagd::runners::local {
namespace {

constexpr char kFailedRun[] =
    "PLAY [localhost] ***************************************************************\n"
    "\n"
    "TASK [Say hello] ***************************************************************\n"
    "ok: [localhost] => {\n"
    "    \"msg\": \"hello\"\n"
    "}\n"
    "\n"
    "TASK [Fail on purpose] *********************************************************\n"
    "fatal: [localhost]: FAILED! => {\"changed\": false, \"msg\": \"boom\"}\n"
    "\n"
    "PLAY RECAP *********************************************************************\n"
    "localhost                  : ok=1    changed=0    unreachable=0    failed=1\n";

TEST(AnsibleOutputScannerTest, NamesTheFailingTask) {
  AnsibleOutputScanner scanner;
  scanner.Feed(kFailedRun);
  EXPECT_EQ(scanner.failure(),
            "task \"Fail on purpose\": fatal: [localhost]: FAILED! => {\"changed\": false, "
            "\"msg\": \"boom\"}");
}

TEST(AnsibleOutputScannerTest, LinesMaySpanChunks) {
  AnsibleOutputScanner scanner;
  std::string text = kFailedRun;
  for (char c : text) scanner.Feed(std::string(1, c));
  EXPECT_NE(scanner.failure().find("Fail on purpose"), std::string::npos);
  EXPECT_NE(scanner.failure().find("boom"), std::string::npos);
}

TEST(AnsibleOutputScannerTest, NoFailureInASuccessfulRun) {
  AnsibleOutputScanner scanner;
  scanner.Feed("TASK [Say hello] ****\nok: [localhost]\n");
  EXPECT_EQ(scanner.failure(), "");
}

TEST(AnsibleOutputScannerTest, LongLinesAreCut) {
  AnsibleOutputScanner scanner;
  scanner.Feed("TASK [t] ***\nfatal: [h]: FAILED! => " + std::string(10000, 'x') + "\n");
  EXPECT_LT(scanner.failure().size(), 500u);
}

}  // namespace
}  // namespace dagd::runners::local
