// Any text given to --listen: a clear StartupError or an address that round-trips.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/listen_address.hpp"
#include "util/startup_error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto a = printerfacts::parse_listen_address(text);
    // What we accept, we can print and parse back to the same address.
    if (!(printerfacts::parse_listen_address(a.to_string()) == a)) __builtin_trap();
    if (a.kind == printerfacts::ListenAddress::Kind::unix_socket &&
        (a.path.empty() || a.path.size() > printerfacts::kMaxUnixPathLength)) {
      __builtin_trap();
    }
  } catch (const printerfacts::StartupError&) {
  }
  return 0;
}
