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
/// the job (--help, --version, printed) or failed (`error` says why; nothing is printed).
struct CommandLine {
  std::optional<Options> options;
  int exit_code = 0;
  std::string error;
};

/// Parses argv, the --config file if one is named, and the environment (SOCKPATH, PORT).
/// Flags win over the config file, and both over the environment. Prints help or the version
/// itself. Called again on SIGHUP, with the same arguments, to re-read the config file.
CommandLine parse_command_line(int argc, const char* const* argv, const GetEnv& getenv);

}  // namespace printerfacts
