// dagctl: the command-line client of dagd. All of it lives in dagctl_lib; see cli.h.
#include <iostream>

#include "cmd/dagctl/cli.h"

int main(int argc, char** argv) { return dagd::dagctl::Main(argc, argv, std::cout, std::cerr); }
