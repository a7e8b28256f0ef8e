/* dev.c - device helpers common to every implementation. */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/pipepool.h"
#include "dev.h"

bool dev_pipe_to_buf(struct dev_io *io)
{
	if (io->pipe->len == io->len && spipe_copy_out(io->pipe, io->buf) == 0)
		return true;
	log_err("splice: a write's payload at %llu+%llu could not be copied out of its pipe "
		"(%u bytes there): %s",
		(unsigned long long)io->off, (unsigned long long)io->len, io->pipe->len,
		strerror(errno));
	io->done(io, EIO);
	return false;
}

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
