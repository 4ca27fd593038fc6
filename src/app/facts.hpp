// The printer facts: compiled in, or loaded from a file given with --facts-file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "app/random.hpp"

namespace printerfacts {

/// One fact, pre-rendered in the two forms the routes serve, so no request formats it again.
struct Fact {
  std::string text;  ///< the fact followed by "\n", the body of GET /fact
  std::string html;  ///< the fact, HTML-escaped, for the index page
};

/// An immutable, non-empty list of facts. Safe to share between threads.
class Facts {
 public:
  /// The facts compiled into the binary (assets/facts.txt).
  static Facts embedded();

  /// Reads one fact per line from `path` (UTF-8; blank lines and a trailing "\r" are ignored).
  /// Throws StartupError naming the path if it is missing, unreadable, not UTF-8 or has no fact.
  static Facts load_file(const std::string& path);

  /// Parses `text` as load_file does; `origin` names the source in error messages.
  static Facts parse(std::string_view text, std::string_view origin);

  std::size_t size() const { return facts_.size(); }
  const Fact& at(std::size_t i) const { return facts_[i]; }
  const Fact& pick(Random& rng) const { return facts_[rng.below(facts_.size())]; }

 private:
  explicit Facts(std::vector<Fact> facts) : facts_(std::move(facts)) {}

  std::vector<Fact> facts_;
};

/// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace printerfacts
