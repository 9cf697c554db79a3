// dagctl's command line: the CLI11 definition of every command and its dispatch.
#ifndef DAGD_CMD_DAGCTL_CLI_H_
#define DAGD_CMD_DAGCTL_CLI_H_

#include <ostream>

#include "cmd/dagctl/client.h"

namespace dagd::dagctl {

// Parses argv, runs the command it names against the server and returns the exit status:
// 0 success, 1 failure (RPC error, failed run, lint diagnostics), 2 usage error. Help goes to
// `out`, usage errors to `err`. `watch` sets the reconnect policy of watching commands.
int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
         const WatchOptions& watch = {});

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_CLI_H_
