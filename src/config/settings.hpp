// Every setting printerfacts has, declared once, in the manner of Redis's config.c table: from
// its row come the command-line flag, the config-file key, the environment fallback, --help,
// --print-config, the README's and the man page's tables (checked in CI) and whether a reload
// applies it.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/options.hpp"

namespace printerfacts {

/// Reads an environment variable; nullptr when unset. Injected so tests control the environment.
using GetEnv = std::function<const char*(const char*)>;

/// One setting. Its value lives in one field of Options, and its default is that field's value
/// in Options{}. Whether a reload applies it is not declared but follows from where that field
/// is: in Options::site (SiteOptions) or not.
struct Setting {
  /// How the value is written in a TOML file (and printed by --print-config).
  enum class Kind { text, integer, boolean };

  std::string_view name;        ///< the flag is --NAME, the config-file key NAME
  std::string_view value_name;  ///< "FILE", "MODE" in --help; empty for an on/off flag
  std::string_view help;
  Kind kind = Kind::text;
  std::string_view expected;  ///< what a value looks like, with an example: "a size such as 8k"
  bool repeatable = false;    ///< a list: the flag repeats, the key takes an array
  bool reloadable = false;    ///< lives in SiteOptions: a reload applies it
  std::string_view env_help;  ///< the environment variables it falls back to, or ""
  /// The default in words, for the docs, when it has no text form (an unset path, a list).
  std::string_view default_doc;

  /// Sets the value from `text` (appends to a list); false when `text` is not of the form
  /// `expected` says (ranges and combinations are validate()'s), with `*why` (if given) set to
  /// what is wrong with it when there is more to say than `expected`.
  bool (*set)(Options& options, std::string_view text, std::string* why) = nullptr;
  /// The value as text, as --NAME takes it back (one element per list item; none when unset).
  std::vector<std::string> (*get)(const Options& options) = nullptr;
  /// Empties a list (before a source that replaces it sets its items).
  void (*clear)(Options& options) = nullptr;
  /// Whether `a` and `b` have the same value.
  bool (*same)(const Options& a, const Options& b) = nullptr;
  /// The value the environment gives when no flag or key does (as --NAME would take it), and
  /// the variable it came from; nullopt when the environment says nothing. Null: no fallback.
  std::optional<std::pair<std::string, std::string>> (*from_environment)(const GetEnv& getenv) =
      nullptr;

  /// The default, as text: get(Options{}).
  std::string default_text() const;
  /// The default for people: default_text(), or default_doc when that is empty.
  std::string default_for_docs() const;
};

/// Every setting, in the order --help lists them.
std::span<const Setting> settings();

/// The setting called `name` (without "--"), or null.
const Setting* find_setting(std::string_view name);

/// The setting whose name is nearest to `name` (a typo's: at most a third of its letters
/// wrong, and never fewer than two), or "" when none is near. `extra` are names that are not
/// settings but are also known where `name` was written (--config, --check).
std::string_view nearest_name(std::string_view name, std::span<const std::string_view> extra = {});

/// The names of the settings a reload cannot apply whose values differ between `running` and
/// `reread`, in --help's order.
std::vector<std::string> restart_only_changes(const Options& running, const Options& reread);

/// Edit distance (insertions, deletions, substitutions, transpositions of neighbours).
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace printerfacts
