// printerfacts-settings-docs: the settings table (config/settings.hpp) as the README's flag table
// ("readme") or the man page's list of settings ("man"). The docs hold its output between
// markers; tests/integration/test_cli.py checks that they still do, and scripts/update-docs
// writes it there.
#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "config/settings.hpp"

namespace {

using printerfacts::Setting;
using printerfacts::settings;

std::string flag_with_value(const Setting& s) {
  return s.value_name.empty() ? fmt::format("--{}", s.name)
                              : fmt::format("--{} {}", s.name, s.value_name);
}

std::string readme_cell(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string how_it_changes(const Setting& s) {
  std::string out = s.reloadable ? "reloadable" : "restart";
  if (s.repeatable) out += "; repeatable";
  if (!s.env_help.empty()) out += fmt::format("; else `{}`", s.env_help);
  return out;
}

void readme() {
  std::puts("| flag | default | applied by | meaning |");
  std::puts("|---|---|---|---|");
  for (const Setting& s : settings()) {
    const std::string def = s.default_text().empty() ? std::string(s.default_doc)
                                                     : fmt::format("`{}`", s.default_text());
    fmt::print("| `{}` | {} | {} | {} |\n", readme_cell(flag_with_value(s)), readme_cell(def),
               how_it_changes(s), readme_cell(s.help));
  }
}

// groff: a hyphen in a flag is "\-", and a line may not begin with "." or "'".
std::string roff(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '-') {
      out += "\\-";
    } else if (c == '\\') {
      out += "\\e";
    } else {
      out += c;
    }
  }
  return out;
}

void man() {
  for (const Setting& s : settings()) {
    std::puts(".TP");
    if (s.value_name.empty()) {
      fmt::print(".B \\-\\-{}\n", roff(s.name));
    } else {
      fmt::print(".BI \\-\\-{} \" {}\"\n", roff(s.name), roff(s.value_name));
    }
    const std::string help = roff(s.help);
    fmt::print("{}. Default: {}.{} {}.\n", help, roff(s.default_for_docs()),
               s.repeatable ? " Repeatable." : "",
               s.reloadable ? "Applied by a reload" : "Applied at the next start");
  }
}

// The reloadable settings, one line: "`facts-file`, `static-dir`, ..." (`prefix` before each
// line of a wrapped paragraph: "# " in a TOML comment).
void reloadable(std::string_view prefix, std::string_view quote) {
  std::string line(prefix);
  bool first = true;
  for (const Setting& s : settings()) {
    if (!s.reloadable) continue;
    const std::string item = fmt::format("{}{}{}{}", first ? "" : ", ", quote, s.name, quote);
    if (line.size() + item.size() > 98) {
      fmt::print("{},\n", line);
      line = std::string(prefix);
      line += item.substr(first ? 0 : 2);
    } else {
      line += item;
    }
    first = false;
  }
  fmt::print("{}\n", line);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view what = argc == 2 ? argv[1] : "";
  if (what == "readme") {
    readme();
  } else if (what == "man") {
    man();
  } else if (what == "reloadable") {
    reloadable("", "`");
  } else if (what == "reloadable-toml") {
    reloadable("#   ", "");
  } else {
    std::fputs("usage: printerfacts-settings-docs readme|man|reloadable|reloadable-toml\n", stderr);
    return 64;
  }
  return 0;
}
