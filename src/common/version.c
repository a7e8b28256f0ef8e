/* version.c - the version string, set by the Makefile from the VERSION file
 * and `git describe` (see version.h). */
#include "version.h"

#ifndef DST_VERSION
#define DST_VERSION "unknown"
#endif

const char *dst_version(void)
{
	return DST_VERSION;
}
