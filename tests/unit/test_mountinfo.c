/* test_mountinfo.c - parsing /proc/self/mountinfo lines: optional fields,
 * octal escapes, malformed lines; and the live table of this process. */
#include <stdlib.h>
#include <string.h>

#include "common/mountinfo.h"
#include "unit.h"

static bool parse(const char *text, struct mount_entry *m)
{
	char *line = strdup(text);
	bool ok = mountinfo_parse_line(line, m);
	free(line);
	return ok;
}

TEST(parses_fields_after_the_separator)
{
	struct mount_entry *m = calloc(1, sizeof(*m));
	CHECK(parse("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root "
		    "rw,errors=continue\n",
		    m));
	CHECK_EQ(m->major, 98);
	CHECK_EQ(m->minor, 0);
	CHECK_STR(m->mnt, "/mnt2");
	CHECK_STR(m->fstype, "ext3");
	CHECK_STR(m->source, "/dev/root");
	/* No optional fields, and several of them. */
	CHECK(parse("43 27 0:39 / /tmp/f rw,nosuid - fuse.dst dst:s rw,user_id=0", m));
	CHECK_STR(m->fstype, "fuse.dst");
	CHECK_STR(m->source, "dst:s");
	CHECK_EQ(m->minor, 39);
	CHECK(parse("1 2 7:3 / /a rw shared:5 master:2 propagate_from:1 - ext4 /dev/loop3 rw", m));
	CHECK_STR(m->mnt, "/a");
	CHECK_STR(m->source, "/dev/loop3");
	free(m);
}

TEST(unescapes_paths)
{
	struct mount_entry *m = calloc(1, sizeof(*m));
	CHECK(parse("5 1 0:50 / /tmp/a\\040b\\011c\\134d rw - tmpfs my\\040fs rw", m));
	CHECK_STR(m->mnt, "/tmp/a b\tc\\d");
	CHECK_STR(m->source, "my fs");
	char s[] = "no\\escape\\09 \\1234";
	mountinfo_unescape(s);
	CHECK_STR(s, "no\\escape\\09 S4");
	free(m);
}

TEST(rejects_malformed_lines)
{
	struct mount_entry *m = calloc(1, sizeof(*m));
	CHECK(!parse("", m));
	CHECK(!parse("36 35 98:0 /mnt1 /mnt2 rw", m));	      /* no separator */
	CHECK(!parse("36 35 98:0 /mnt1 /mnt2 rw - ext3", m)); /* no source */
	CHECK(!parse("36 35 x:y /mnt1 /mnt2 rw - ext3 /dev/root rw", m));
	free(m);
}

TEST(finds_the_root_mount)
{
	struct mount_entry *m = calloc(1, sizeof(*m));
	CHECK(mountinfo_at("/", m));
	CHECK_STR(m->mnt, "/");
	CHECK(!mountinfo_at("/no/such/mount/point", m));
	free(m);
}

UNIT_MAIN(T(parses_fields_after_the_separator), T(unescapes_paths), T(rejects_malformed_lines),
	  T(finds_the_root_mount))
