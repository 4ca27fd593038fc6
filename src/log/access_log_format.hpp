// The forms an access log line can take: declared once, for the setting that chooses one
// (--access-log-format) and the log that writes it.
#pragma once

#include <cstdint>

namespace printerfacts {

/// text: our own compact line (the default); json: one object, with OpenTelemetry's HTTP
/// field names; combined: the Combined Log Format (NCSA, nginx's and Apache's "combined"), which
/// GoAccess, fail2ban and awstats read; logfmt: key=value pairs. All but text carry the
/// request's Host, User-Agent and Referer.
enum class AccessLogFormat : std::uint8_t { text, json, combined, logfmt };

}  // namespace printerfacts
