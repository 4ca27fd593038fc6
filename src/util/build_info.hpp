// What build this is: the version, and the commit it was made from, so that two builds can be
// told apart (--version, printerfacts_build_info, the ready line).
#pragma once

namespace printerfacts {

/// The version: debian/changelog's newest entry ("0.2.0"). cmake/version.cmake.
extern const char* const kBuildVersion;

/// The git commit the build was made from ("1a2b3c4d5e6f", with "-dirty" when the tree had
/// uncommitted changes; "unknown" when built outside a git checkout and not told).
extern const char* const kBuildCommit;

}  // namespace printerfacts
