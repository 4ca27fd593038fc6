// Content types of the files served under /static/.
#pragma once

#include <string_view>

namespace printerfacts {

/// The Content-Type for a file name, from its extension (case-insensitive);
/// "application/octet-stream" when unknown.
std::string_view mime_type(std::string_view file_name);

}  // namespace printerfacts
