/* nodeconf.h - one node of a storage as its config line says it:
 *
 *   node = remote start=800 size=800 nbd://kano:1025/
 *   node = disk start=0 size=800 label=413696 id=9f0c... /srv/disk0.img
 *
 * The spec comes last so paths may contain spaces. Sizes and starts are in
 * 512-byte sectors, as DST had them. A labelled node (label.h) also has
 * its label's byte offset and its disk id; nodes of storages made before
 * labels have neither and are used unchecked. */
#ifndef DST_NODECONF_H
#define DST_NODECONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node_conf {
	bool remote;
	uint64_t start, size; /* sectors; size 0 = whatever the node has */
	char *spec;
	uint64_t label; /* bytes: where its label is; 0 = unlabelled */
	uint8_t id[16]; /* the disk id its label must carry */
};

int node_conf_parse(const char *line, struct node_conf *out, char *err, size_t errlen);
char *node_conf_format(const struct node_conf *nc); /* malloc'd */
void node_conf_free(struct node_conf *nc);
/* "n-800" */
void node_conf_name(uint64_t start, char *buf, size_t len);

#endif
