// The command line, the --config file and the environment, turned into Options, every setting
// by its row in the table (config/settings.hpp).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "config/options.hpp"
#include "config/settings.hpp"

namespace printerfacts {

/// Where each setting's value came from, by setting name: "default", "command line",
/// "FILE:LINE" or "environment NAME".
using Origins = std::map<std::string, std::string, std::less<>>;

/// The outcome of parsing: Options to run with (and where each value came from), or an exit
/// code when parsing already finished the job (--help, --version: printed, 0) or failed
/// (`error` says why, naming the flag, or the file and line, and the fix; nothing is printed;
/// 64 for the command line, 78 for the config file).
struct CommandLine {
  std::optional<Options> options;
  int exit_code = 0;
  std::string error;
  Origins origins;
};

/// Parses argv, the --config file if one is named, and the environment (SOCKPATH, PORT).
/// Flags win over the config file, and both over the environment. Prints help or the version
/// itself. Called again on SIGHUP, with the same arguments, to re-read the config file.
CommandLine parse_command_line(int argc, const char* const* argv, const GetEnv& getenv);

/// Every setting's effective value and where it came from, as a TOML file that gives the same
/// configuration (--print-config): one `name = value  # origin` line per setting.
std::string render_config(const Options& options, const Origins& origins);

}  // namespace printerfacts
