// The command line and environment, turned into Options.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "config/options.hpp"

namespace printerfacts {

/// Reads an environment variable; nullptr when unset. Injected so tests control the environment.
using GetEnv = std::function<const char*(const char*)>;

/// The outcome of parsing: Options to run with, or an exit code when parsing already finished
/// the job (--help, --version) or failed (the message is already printed).
struct CommandLine {
  std::optional<Options> options;
  int exit_code = 0;
};

/// Parses argv and the environment (SOCKPATH, PORT). Flags win over the environment. Prints
/// help, the version, or the error to stdout/stderr itself.
CommandLine parse_command_line(int argc, const char* const* argv, const GetEnv& getenv);

}  // namespace printerfacts
