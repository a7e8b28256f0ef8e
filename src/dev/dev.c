/* dev.c - device helpers common to every implementation. */
#include <string.h>

#include "dev.h"

void dev_destroy(struct dev *d)
{
	if (d)
		d->ops->destroy(d);
}

struct dev *dev_open_local(struct ev_loop *loop, const char *spec, bool readonly, char *err,
			   size_t errlen)
{
	return dev_open_local_flags(loop, spec, readonly ? DEV_OPEN_READONLY : DEV_OPEN_CLAIM, err,
				    errlen);
}

struct dev *dev_open_local_flags(struct ev_loop *loop, const char *spec, unsigned flags, char *err,
				 size_t errlen)
{
	if (strncmp(spec, "mem:", 4) == 0)
		return dev_mem_open(loop, spec, err, errlen);
	return dev_file_open_flags(loop, spec, flags, err, errlen);
}
