/* version.h - the version both programs print for --version. */
#ifndef DST_VERSION_H
#define DST_VERSION_H

/* "0.16.0" from the VERSION file, followed by " (git DESCRIBE)" when built
 * from a git checkout, so a report names the exact commit. */
const char *dst_version(void);

#endif
