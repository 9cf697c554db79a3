// The generated bash completion script, sourced in a real bash.
#include "cmd/dagctl/completion.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cmd/dagctl/cli.h"
#include "gtest/gtest.h"

namespace dagd::dagctl {
namespace {

// The script, as `dagctl completion bash` prints it.
std::string Script() {
  const char* argv[] = {"dagctl", "completion", "bash"};
  std::ostringstream out, err;
  EXPECT_EQ(Main(3, argv, out, err), 0) << err.str();
  return out.str();
}

// Sources the script in bash, sets COMP_WORDS to `words` (the last one being completed), calls
// the completion function and returns COMPREPLY, one word per line.
std::string Complete(const std::vector<std::string>& words) {
  const std::string dir = testing::TempDir();
  const std::string script = dir + "dagctl-completion.bash";
  const std::string driver = dir + "dagctl-completion-driver.bash";
  std::ofstream(script) << Script();
  {
    std::ofstream out(driver);
    out << "source '" << script << "'\nCOMP_WORDS=(";
    for (const std::string& word : words) out << " '" << word << "'";
    out << " )\nCOMP_CWORD=" << words.size() - 1 << "\n_dagctl\n"
        << "[ ${#COMPREPLY[@]} -gt 0 ] && printf '%s\\n' \"${COMPREPLY[@]}\" | sort\nexit 0\n";
  }
  const std::string command = "bash --norc --noprofile '" + driver + "'";
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  size_t n;
  while (pipe != nullptr && (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, n);
  }
  if (pipe != nullptr) {
    EXPECT_EQ(pclose(pipe), 0) << command;
  }
  return output;
}

TEST(CompletionTest, ScriptRegistersTheFunction) {
  const std::string script = Script();
  EXPECT_NE(script.find("complete -F _dagctl dagctl\n"), std::string::npos) << script;
  EXPECT_NE(script.find("\"runs list\") echo \""), std::string::npos) << script;
}

TEST(CompletionTest, CompletesCommandsSubcommandsFlagsAndValues) {
  EXPECT_EQ(Complete({"dagctl", "ru"}), "runs\n");
  EXPECT_EQ(Complete({"dagctl", "runs", ""}), "get\nlist\n");
  EXPECT_EQ(Complete({"dagctl", "w"}), "watch\nworkflows\n");
  const std::string list_flags = Complete({"dagctl", "runs", "list", "--s"});
  EXPECT_NE(list_flags.find("--since\n"), std::string::npos) << list_flags;
  EXPECT_NE(list_flags.find("--sort\n"), std::string::npos) << list_flags;
  EXPECT_NE(list_flags.find("--server\n"), std::string::npos) << list_flags;  // global
  EXPECT_EQ(Complete({"dagctl", "runs", "get", "-o", "w"}), "wide\n");
  EXPECT_EQ(Complete({"dagctl", "--server", "h:1", "runs", "list", "--phase", "Fa"}), "Failed\n");
  EXPECT_EQ(Complete({"dagctl", "export", ""}), "argo\n");
}

}  // namespace
}  // namespace dagd::dagctl
