// `dagctl completion bash`: a bash completion script generated from dagctl's own CLI11
// definition, so that it always knows every command and flag.
//
// Source it (`source <(dagctl completion bash)`, or install it as
// /usr/share/bash-completion/completions/dagctl). It completes command names, the flags of the
// command typed so far (global flags everywhere), the values of -o/--output, --color, --phase
// and --sort, and file names after flags that take a file and for `graph`, `lint` and
// `export argo`.
#ifndef DAGD_CMD_DAGCTL_COMPLETION_H_
#define DAGD_CMD_DAGCTL_COMPLETION_H_

#include <string>

#include "CLI/CLI.hpp"

namespace dagd::dagctl {

// The script for `app` (the root command, named e.g. "dagctl"). Defines _dagctl and registers
// it with `complete -F _dagctl dagctl`.
std::string BashCompletion(const CLI::App& app);

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_COMPLETION_H_
